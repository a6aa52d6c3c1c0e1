// Package apply turns a plan into certificates that the mail servers serve:
// for each planned certificate it decides what is due (planner.DecideRenewal,
// with the CA's ARI window and the backoff kept in the state directory),
// obtains it through ACME (acme.Client.Obtain, which sends "replaces" and
// reuses the key when asked) under apply's policy on dropped names
// (must-cover names, reduced coverage), stores it atomically (store), runs the deploy
// hooks once per changed or retired certificate (deploy), and verifies by
// probing every name of the changed certificates on their IPs and ports,
// with and without SNI, that the new certificate is the one served (probe).
//
// `certplan issue` and `certplan renew` are thin commands over [Run]; they
// differ only in [Mode]: a renewal honours backoff and Retry-After (also
// for a certificate never issued, whose first orders failed), asks the CA
// for renewal information, and may sleep a random jitter before its first
// order; an issue run is an operator's explicit request and tries now.
//
// # Safety
//
//   - The store is locked for the whole run: a second run gets
//     store.ErrLocked at once and writes nothing. A dry run (Options.DryRun)
//     writes nothing and takes no lock: its store may be read-only, or
//     the view of a state directory that does not exist (store.OpenView).
//   - A failed order leaves the previous certificate in place (the store
//     only switches versions after a complete write) and no hook runs for it.
//   - What the CA issued is checked before it is stored: exactly the names
//     ordered, valid at the run's clock (Options.Now), the key of the
//     request, and a chain to Options.IssuerRoots (default: the system's
//     roots) for server authentication. A certificate that fails is a failed
//     order (IssuedCertError).
//   - Names an order leaves out are policy (coverage.go), applied to every
//     caller of Run: a must-cover name is never left out (MustCoverError),
//     and a renewal that would drop names the current certificate covers
//     for more than Options.ReducedCoverageDays keeps it (StatusKept,
//     ReducedCoverageError) unless Options.AllowReducedCoverage.
//   - A certificate whose hooks did not all succeed (or whose run was
//     interrupted between storing and deploying) is deployed again by the
//     next run: the deployed serial is recorded per certificate.
//   - A default certificate whose IPs in the plan differ from those its
//     hooks last made it the default of (the planner merged another IP's
//     identical default into it, or an IP joined or left) is deployed again
//     with CERTPLAN_CHANGE=renewed and the new CERTPLAN_DEFAULT_IPS, without
//     an order.
//   - A certificate whose hooks all succeeded but that verification did not
//     find served is deployed again at most [MaxVerifyRedeploys] times,
//     spaced like the order backoff (planner.Backoff: 1 min, 10 min,
//     100 min); then the runs stop redeploying it (each redeploy reloads the
//     servers) and leave the problem to monitoring (`certplan check`) until
//     a new certificate is issued. A redeploy run verifies again and
//     reports; the runs in between stay quiet.
//   - Certificates are ordered concurrently (Options.MaxConcurrentOrders),
//     each writing only its own files in the store; deploy hooks run after
//     every order has finished, one certificate at a time in plan order,
//     since hooks of different certificates often edit and reload the same
//     server configuration. The report lists certificates in plan order.
//   - The pre-hook (Options.PreHook) runs once, when the first certificate
//     has something to do and before any order, preflight self-check,
//     redeploy or retirement; if it fails nothing is ordered or deployed
//     (*PreHookError). The post-hook runs once when Run returns, also
//     after a failure, whenever something was due.
//   - The key the plan chose is used (PlannedCert.Key, the planner's DANE
//     gate; replace.go's planKey), whatever Options.ReuseKey says:
//     model.KeyKeep reuses the current key, model.KeyNext the staged next
//     key; when that key is missing (or the current certificate was
//     revoked) the certificate's order is refused (*DANEKeyError, a failure
//     with backoff) and the others proceed: a new key would stop mail from
//     DANE senders (RFC 7672).
//   - A certificate to replace (Options.Replace, after a revocation) is
//     ordered at once with a key other than its current one, and the
//     current key of a certificate the store records as revoked is never
//     reused (Options.ReuseKey notwithstanding).
//   - A certificate with a staged next key (`certplan rollover begin`,
//     package rollover) is ordered with it only once Options.Rollover sees
//     its TLSA records validated, on every authoritative server of the
//     zone, and two TTLs old (by Options.Now); a ready key is a reason to
//     renew by itself (ReasonKeyRollover). Until then the current key is
//     kept, Options.ReuseKey notwithstanding (rollover.go).
//   - A certificate the plan no longer has is retired: its deploy hooks run
//     once more with CERTPLAN_CHANGE=retired, so that the servers stop
//     presenting it (its SNI entries go; see package deploy), and when they
//     all succeed the store moves its files to <state-dir>/retired/
//     (store.RetireCert), where no renewal, redeploy or `certplan check`
//     looks. A hook that fails is run again by the next run. Retirements
//     run before the deploys of new and changed certificates, so that a
//     name moving from a retired certificate to another one ends up with
//     the other one even when a hook removes the retired certificate's
//     entries by name, and a retired default certificate is replaced by the
//     IP's new default in the same run. A retirement waits (status held)
//     while a name of the retired certificate is planned on a certificate
//     whose current version does not list it yet (its order failed or was
//     deferred): the retired certificate is the one that still serves it.
//     Without hooks nothing is undeployed: the retirement is reported once
//     and the files stay where a server may read them.
//
// # Where things are
//
//   - run.go: Run's outline, the concurrent ordering and the serial deploys.
//   - decide.go: what is due for one certificate, a pure function of the
//     plan, the stored certificate and its renewal and deploy state.
//   - order.go: one certificate through a run: load, decide, order.
//   - coverage.go: the policy on names an order leaves out.
//   - issued.go: the check of an issued certificate, and storing it.
//   - record.go: what a success, failure or verification changes in the
//     state (the resets are methods of store.RenewalState and
//     store.DeployState, which the store keeps).
//   - ari.go: renewal information (RFC 9773); budget.go: the order cap and
//     jitter; deploy.go: the hooks; retire.go: retirements; verify.go:
//     probing after deploy; regress.go: every served name probed before
//     and after the deploys, for names that stop verifying;
//     plancheck.go: plans Run refuses;
//     domains.go: the hosted domains whose lookups fail, across runs.
//   - runhooks.go: the run's pre and post hooks; replace.go: the key of an
//     order (the plan's DANE choice), and renewing a revoked certificate
//     at once with another key (certplan revoke).
//
// # What it leaves to others
//
// Computing the plan (planner), the inventory (dnscheck), flags, output and
// exit codes (internal/cli).
package apply

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
	"github.com/certplan/certplan/rollover"
	"github.com/certplan/certplan/store"
	"log/slog"
)

// CA is what Run needs of an ACME client; *acme.Client implements it.
type CA interface {
	Obtain(ctx context.Context, req acme.Request) (*acme.Result, error)
	RenewalInfo(ctx context.Context, leaf *x509.Certificate) (*acme.RenewalInfo, error)
}

// Mode says which command runs.
type Mode string

// Modes.
const (
	// ModeIssue issues what the plan needs now: missing certificates,
	// changed name sets, and certificates already due; backoff and
	// Retry-After from earlier runs are ignored (an operator asked).
	ModeIssue Mode = "issue"
	// ModeRenew does only what is due, honouring backoff and the CA's
	// Retry-After (for first issuances too), and refreshes the CA's renewal
	// windows (ARI).
	ModeRenew Mode = "renew"
)

// Options configure Run.
type Options struct {
	Mode Mode
	// Plan is the plan to apply (its certificate IDs are stable across
	// plans). It is recorded as the applied plan unless DryRun.
	Plan *model.Plan
	// Inventory, when given, lets the ACME preflight check each name
	// (points here, CAA) before ordering.
	Inventory *model.Inventory
	// Store is the state directory; Run locks it for the whole run.
	Store *store.Store
	// Connect returns the CA client. It is called at most once, and only
	// when the CA is needed (an order, or renewal information), so that a
	// renewal run with nothing due does not contact the CA.
	Connect func(ctx context.Context) (CA, error)

	// Hooks are shell command lines run once per changed or retired
	// certificate, in order (see package deploy); HookTimeout bounds each
	// (0: none).
	Hooks       []string
	HookTimeout time.Duration
	// PreHook and PostHook are shell command lines run once per run, and
	// only when something is due (runhooks.go): the pre-hook before
	// anything needs the challenge port (a failure stops the run:
	// *PreHookError), the post-hook after the last deploy, also when the
	// run failed (a failure makes it partial). HookTimeout bounds them.
	PreHook, PostHook string

	// IssuerRoots are the CA's issuing roots: every issued certificate's
	// chain must verify to one of them before it is stored (nil: the
	// system's roots). A test or private CA (Pebble) issues under its own.
	IssuerRoots *x509.CertPool

	// ReuseKey keeps each certificate's current key (DANE 3 1 1).
	ReuseKey bool
	// Rollover, when non-nil, observes DNS for each certificate with a
	// staged next key (`certplan rollover begin`): the key is used once
	// its TLSA records are ready, and until then the current key is kept
	// (rollover.go). nil: a staged key is used only by a Replacement that
	// asks for it.
	Rollover *rollover.Observer
	// ReducedCoverageDays: when a renewal would drop names the current
	// certificate covers and it has more than this many days left, the
	// current certificate is kept (StatusKept, *ReducedCoverageError;
	// default DefaultReducedCoverageDays). AllowReducedCoverage renews
	// anyway. A planned certificate's MustCover names are never dropped
	// (*MustCoverError).
	ReducedCoverageDays  int
	AllowReducedCoverage bool
	// Force (ModeIssue) renews every planned certificate.
	Force bool
	// Replace renews these certificates (by ID) now, in any mode, and
	// never with their current key: see [Replacement].
	Replace map[string]Replacement
	// DryRun runs the preflight only: nothing is ordered, written, deployed
	// or verified.
	DryRun bool

	// MaxConcurrentOrders bounds how many certificates are ordered at once
	// (default DefaultMaxConcurrentOrders; 1 orders one after another).
	// Each order already validates all its names at once; this overlaps
	// the orders' round trips and the CA's validation of different
	// certificates.
	MaxConcurrentOrders int
	// MaxOrders caps the ACME orders one run places (0: no cap). A
	// certificate is started only while fewer orders have been placed or
	// are in flight, so the cap may be passed by the retry of an order
	// that dropped failing names (at most MaxConcurrentOrders more). Due
	// certificates beyond it are reported StatusDeferred and ordered by a
	// later run: an operator issues a large plan in batches (Let's Encrypt
	// allows 300 new orders per account per 3 hours, refilled one every
	// 36 s; the plan's budget warns when a plan needs more).
	MaxOrders int

	// Jitter (ModeRenew) is the upper bound of a random sleep before the
	// first order, so that hosts started by the same cron minute do not
	// reach the CA at once. 0: none.
	Jitter time.Duration

	// Live, when non-nil, is the live tree of stable serving paths
	// (store.UpdateLive), updated from the plan after every order and
	// before the retirements and deploy hooks, so that a hook's reload
	// finds the new files there. A failure to update it ends the run
	// before any hook runs (the next run deploys again).
	Live *store.LiveOptions

	// Verify, when non-nil, probes the changed certificates after deploy.
	Verify *Verify

	// Now is the clock (default time.Now). Tests pass a fixed one.
	Now func() time.Time
	// Logger receives progress (nil: discarded).
	Logger *slog.Logger
}

// Verify configures the verification after deploy.
type Verify struct {
	// Prober makes the handshakes (its Now should be Options.Now).
	Prober *probe.Prober
	// Ports are probed on every IP of a changed certificate.
	Ports []probe.Port
	// Wait is how long to keep probing while the servers have not reloaded
	// yet (default 10 s); each retry probes everything again.
	Wait time.Duration
}

// Certificate statuses in a [CertOutcome].
const (
	StatusUnchanged  = "unchanged"   // nothing due
	StatusWaiting    = "waiting"     // due, held by backoff or the CA's Retry-After
	StatusIssued     = "issued"      // a new certificate was stored
	StatusRedeployed = "redeployed"  // an earlier certificate's hooks had not succeeded; they ran again
	StatusKept       = "kept"        // the current certificate stays: a renewal would have dropped names it covers
	StatusFailed     = "failed"      // nothing issued; the previous certificate (if any) stays
	StatusDeferred   = "deferred"    // due, not ordered: the run's order cap (Options.MaxOrders) was reached
	StatusWouldIssue = "would-issue" // dry run: preflight passed for Issued
)

// CertOutcome is what happened to one planned certificate.
type CertOutcome struct {
	ID string `json:"id"`
	// Names are the planned names; Default and IPs as in the plan.
	Names   []string `json:"names"`
	IPs     []string `json:"ips"`
	Default bool     `json:"default"`
	// Action, Reason and Message are the renewal decision
	// (planner.Action*, planner.Reason*).
	Action  string `json:"action"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Status  string `json:"status"`
	// Issued are the names on the new certificate; Dropped the planned
	// names left out, with the stage and reason.
	Issued   []string       `json:"issued,omitempty"`
	Dropped  []acme.Dropped `json:"dropped,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
	// Replaced is the ARI id sent as "replaces".
	Replaced string `json:"replaced,omitempty"`
	// Serial and NotAfter of the certificate now current ("" when none).
	Serial   string    `json:"serial,omitempty"`
	NotAfter time.Time `json:"not_after,omitzero"`
	// Dir is where its files are (through the "current" link).
	Dir string `json:"dir,omitempty"`
	// Error is why the attempt failed (StatusFailed, StatusKept).
	Error string `json:"error,omitempty"`
	// NextCheck is when a later run should look again.
	NextCheck time.Time `json:"next_check,omitzero"`
	// Failures is the count of consecutive failed attempts after this run.
	Failures int           `json:"failures,omitempty"`
	Hooks    []HookOutcome `json:"hooks,omitempty"`
	// VerifyFailures counts the deploys of the current certificate whose
	// hooks succeeded but that verification did not find served;
	// RedeployAfter is when a later run deploys it again (zero: no more
	// redeploys, after MaxVerifyRedeploys, or none needed).
	VerifyFailures int       `json:"verify_failures,omitempty"`
	RedeployAfter  time.Time `json:"redeploy_after,omitzero"`
}

// Changed reports whether a new certificate was stored or deployed.
func (c *CertOutcome) Changed() bool {
	return c.Status == StatusIssued || c.Status == StatusRedeployed
}

// HookOutcome is one deploy hook run.
type HookOutcome struct {
	Hook     string `json:"hook"`
	OK       bool   `json:"ok"`
	ExitCode int    `json:"exit_code"`
	TimedOut bool   `json:"timed_out,omitempty"`
	// Output is the end of what the hook printed.
	Output string `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Verification statuses, per (name, IP, port) and with or without SNI.
const (
	VerifyNew     = "new"      // the newly issued certificate is served
	VerifyCurrent = "current"  // another current certificate of the plan that lists the name is served (such as the IP's default for an SNI certificate's name)
	VerifySNIOnly = "sni-only" // without SNI: the IP's planned default certificate does not list the name (the plan says so)
	VerifyOld     = "old"      // a certificate that lists the name, but not the current one: the deploy did not take
	VerifyBad     = "bad"      // no certificate, or one that does not verify for the name
)

// VerifyRow is what one (name, IP, port) serves after deploy.
type VerifyRow struct {
	CertID     string `json:"cert_id"`
	Name       string `json:"name"`
	IP         string `json:"ip"`
	Port       int    `json:"port"`
	Protocol   string `json:"protocol"`
	WithSNI    string `json:"with_sni"`
	WithoutSNI string `json:"without_sni"`
	// Details name the certificate seen (serial) and the probe's verdict.
	WithSNIDetail    string `json:"with_sni_detail,omitempty"`
	WithoutSNIDetail string `json:"without_sni_detail,omitempty"`
}

// OK reports whether the row is as planned both ways.
func (r *VerifyRow) OK() bool { return verifyOK(r.WithSNI) && verifyOK(r.WithoutSNI) }

func verifyOK(s string) bool { return s == VerifyNew || s == VerifyCurrent || s == VerifySNIOnly }

// MaxVerifyRedeploys is how many times a certificate whose hooks succeeded
// but that verification did not find served is deployed again.
const MaxVerifyRedeploys = 3

// Retirement statuses in a [Retired].
const (
	RetireUndeployed = "undeployed"   // its hooks ran with CERTPLAN_CHANGE=retired and succeeded (or it was never issued); the store moved its files to Retired.Dir
	RetireFailed     = "failed"       // a hook failed (or its state is unreadable); the next run tries again
	RetireHeld       = "held"         // not undeployed yet: a name of it is planned on a certificate that does not list it yet (Message says which)
	RetireKept       = "kept"         // no deploy hooks: nothing undeploys it; its files stay
	RetireWould      = "would-retire" // dry run
)

// Retired is a certificate that the plan no longer has: it is no longer
// renewed, and its deploy hooks run once more to undeploy it.
type Retired struct {
	ID    string   `json:"id"`
	Names []string `json:"names"`
	// DefaultIPs are the IPs it was the default certificate of.
	DefaultIPs []string  `json:"default_ips,omitempty"`
	Serial     string    `json:"serial,omitempty"`
	NotAfter   time.Time `json:"not_after,omitzero"`
	Status     string    `json:"status"`
	Message    string    `json:"message,omitempty"`
	Error      string    `json:"error,omitempty"`
	// Dir is where its files are now (RetireUndeployed).
	Dir   string        `json:"dir,omitempty"`
	Hooks []HookOutcome `json:"hooks,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Mode   Mode   `json:"mode"`
	PlanID string `json:"plan_id"`
	DryRun bool   `json:"dry_run,omitempty"`
	// Certificates, sorted by ID.
	Certificates []CertOutcome `json:"certificates"`
	// Retired certificates, sorted by ID.
	Retired []Retired `json:"retired,omitempty"`
	// Verification rows, sorted by name, IP, port; empty when nothing
	// changed or verification is off.
	Verification []VerifyRow `json:"verification,omitempty"`
	// Verified is true when verification ran.
	Verified bool `json:"verified"`
	// Domains are the hosted domains whose lookups started failing, or
	// recovered, in this run (domains.go); empty without an inventory.
	Domains []DomainLookup `json:"domains,omitempty"`
	// PreHook and PostHook are the run's pre and post hooks, when they ran.
	PreHook  *HookOutcome `json:"pre_hook,omitempty"`
	PostHook *HookOutcome `json:"post_hook,omitempty"`
	// Regressed are the (name, IP, port) pairs that clients verified
	// before this run's deploys and do not after (regress.go), sorted by
	// name, IP, port; every name on a server IP is probed, managed or not.
	Regressed []Regression `json:"regressed,omitempty"`
}

// Result is the overall outcome of a run, for exit codes.
type Result int

// Results, from best to worst.
const (
	ResultOK      Result = iota // nothing due, or everything done, deployed and verified
	ResultPartial               // some names dropped, a certificate kept or failed while others succeeded, a hook failed (also a retirement's), verification found the new certificate not served, a name that verified before the deploy does not after (Regressed), or due certificates were deferred (Options.MaxOrders)
	ResultFailed                // every attempted certificate failed
)

// Result sums up the report.
func (r *Report) Result() Result {
	attempted, failed, partial := 0, 0, false
	for _, c := range r.Certificates {
		switch c.Status {
		case StatusIssued, StatusRedeployed, StatusWouldIssue:
			attempted++
			if len(c.Dropped) > 0 {
				partial = true
			}
			for _, h := range c.Hooks {
				if !h.OK {
					partial = true
				}
			}
		case StatusKept:
			attempted++
			partial = true
		case StatusFailed:
			attempted++
			failed++
		case StatusDeferred:
			partial = true
		}
	}
	for _, v := range r.Verification {
		if !v.OK() {
			partial = true
		}
	}
	for _, rt := range r.Retired {
		if rt.Status == RetireFailed {
			partial = true
		}
	}
	if r.PostHook != nil && !r.PostHook.OK {
		partial = true
	}
	if len(r.Regressed) > 0 {
		partial = true
	}
	switch {
	case failed > 0 && failed == attempted:
		return ResultFailed
	case failed > 0 || partial:
		return ResultPartial
	}
	return ResultOK
}

// Changed lists the certificates that changed (issued or redeployed).
func (r *Report) Changed() []*CertOutcome {
	var out []*CertOutcome
	for i := range r.Certificates {
		if r.Certificates[i].Changed() {
			out = append(out, &r.Certificates[i])
		}
	}
	return out
}

// Quiet reports whether nothing happened worth a line: no certificate was
// issued, redeployed, kept or failed, none was retired, and nothing would
// be issued. A retirement still held is not worth a line by itself: the
// certificate that holds it failed, or waits, and says so.
func (r *Report) Quiet() bool {
	for _, rt := range r.Retired {
		if rt.Status != RetireHeld {
			return false
		}
	}
	for _, c := range r.Certificates {
		switch c.Status {
		case StatusUnchanged, StatusWaiting:
		default:
			return false
		}
	}
	return true
}
