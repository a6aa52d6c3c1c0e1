package cli

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/apply"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/probe"
	"github.com/certplan/certplan/report"
	"github.com/certplan/certplan/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// applyOptions are the flags issue and renew share: where the plan comes
// from, the CA, the challenge, the state directory, hooks and verification.
type applyOptions struct {
	inv      inventoryInput
	probe    probeInput // --ports and --ca-file: what verification probes and trusts
	planFile string
	planFlags
	// appliedPlan: without --plan or domains, apply the plan applied last
	// time in --state-dir (revoke's replacement).
	appliedPlan bool

	stateDir    string
	ca          string
	caRoots     string
	issuerRoots string
	email       string
	agreeTOS    bool
	eabKID      string
	eabHMAC     string
	profile     string
	keyType     string
	reuseKey    bool

	challenge    string
	httpListen   string
	httpPort     int
	webroot      string
	webrootMap   string
	dnsProvider  string
	dnsResolvers []string
	tlsListen    string

	hooks       []string
	preHook     string
	postHook    string
	hookTimeout time.Duration

	concurrentOrders int
	maxOrders        int

	allowReduced bool
	minDaysLeft  int
	dryRun       bool
	noVerify     bool
	verifyWait   time.Duration

	liveDir, keyGroup string

	settings store.Settings // what to keep for renew once the plan is applied (recall)
}

func (o *applyOptions) addFlags(fs *pflag.FlagSet) {
	o.inv.addFlags(fs, true)
	o.probe.addFlags(fs, false)
	fs.StringVar(&o.planFile, "plan", "", "apply this plan `file` (from \"certplan plan --format json\") instead of planning from the inventory")
	o.planFlags.addFlags(fs)
	fs.StringVar(&o.stateDir, "state-dir", store.DefaultDir, "state `dir`: ACME account, certificates, keys, renewal state, applied plan")
	fs.StringVar(&o.ca, "ca", "letsencrypt", "ACME CA: letsencrypt, letsencrypt-staging, zerossl, google, google-staging, or a directory `URL`")
	fs.StringVar(&o.caRoots, "ca-roots", "", "PEM `file` of roots to trust for the ACME server's own TLS certificate (a private CA such as Pebble)")
	fs.StringVar(&o.issuerRoots, "issuer-roots", "", "PEM `file` of the roots the CA issues under: every issued certificate's chain must verify to one before it is stored (default: the system's roots; a test or private CA, such as Pebble or letsencrypt-staging, issues under its own)")
	fs.StringVar(&o.email, "email", "", "account contact `address` (registration only)")
	fs.BoolVar(&o.agreeTOS, "agree-tos", false, "agree to the CA's terms of service (needed to register an account)")
	fs.StringVar(&o.eabKID, "eab-kid", "", "external account binding key `id` (ZeroSSL, Google)")
	fs.StringVar(&o.eabHMAC, "eab-hmac", "", "external account binding HMAC `key`, base64url")
	fs.StringVar(&o.profile, "profile", "", "ACME `profile` to order (Let's Encrypt: classic, tlsserver, shortlived)")
	fs.StringVar(&o.keyType, "key-type", "ec256", "certificate key `type`: ec256, ec384, rsa2048, rsa3072, rsa4096")
	fs.BoolVar(&o.reuseKey, "reuse-key", false, "keep each certificate's current key on renewal (DANE \"3 1 1\" TLSA records stay valid)")
	fs.StringVar(&o.challenge, "challenge", acme.HTTP01, "challenge `type`: http-01, dns-01 or tls-alpn-01")
	fs.StringVar(&o.httpListen, "http-listen", ":80", "http-01: `address` of the built-in challenge server (when no --webroot); several, comma-separated, bind each server IP")
	fs.IntVar(&o.httpPort, "http-port", 0, "http-01: `port` the preflight self-check connects to on each name's address (default: the --http-listen port, or 80 with a webroot)")
	fs.StringVar(&o.webroot, "webroot", "", "http-01: write challenge files under `dir`/.well-known/acme-challenge instead of listening")
	fs.StringVar(&o.webrootMap, "webroot-map", "", "http-01: `file` mapping names or domains to document roots, one \"domain docroot\" per line (or a YAML mapping); the longest matching parent wins, --webroot is the fallback")
	fs.StringVar(&o.dnsProvider, "dns-provider", "", "dns-01: DNS `provider` (exec, httpreq, dnsupdate, cpanel, cloudflare, route53), configured by its environment variables as lego documents them (exec: EXEC_PATH, EXEC_MODE, and certplan's EXEC_TIMEOUT)")
	fs.StringArrayVar(&o.dnsResolvers, "dns-resolver", nil, "dns-01: `host:port` asked for the TXT record before the CA is told to look (repeatable; default: the system's)")
	fs.StringVar(&o.tlsListen, "tls-listen", ":443", "tls-alpn-01: `address` of the built-in challenge server")
	fs.StringArrayVar(&o.hooks, "deploy-hook", nil, "shell `command` run once per changed or retired certificate, with CERTPLAN_CERT_ID, CERTPLAN_CERT_DIR, CERTPLAN_NAMES, CERTPLAN_DEFAULT_IPS, CERTPLAN_CHANGE (new, changed, renewed, retired) set (repeatable; run in order)")
	fs.StringVar(&o.preHook, "pre-hook", "", "shell `command` run once before the run's first order, redeploy or retirement (before anything binds or self-checks the challenge port), only when something is due; if it fails, nothing is ordered (exit 1)")
	fs.StringVar(&o.postHook, "post-hook", "", "shell `command` run once after the run's last deploy when something was due, also when the run failed; if it fails, the run is partial (exit 3)")
	fs.DurationVar(&o.hookTimeout, "hook-timeout", 5*time.Minute, "kill a deploy, pre or post hook (and its children) after this long")
	fs.IntVar(&o.concurrentOrders, "concurrent-orders", apply.DefaultMaxConcurrentOrders, "order at most `n` certificates at once (each order validates all its names at once); deploy hooks still run one certificate at a time, after the orders")
	fs.IntVar(&o.maxOrders, "max-orders", 300, "place at most `n` ACME orders in one run (0: no cap); due certificates beyond it are deferred to the next run, in plan order (Let's Encrypt allows 300 new orders per account per 3 hours)")
	fs.BoolVar(&o.allowReduced, "allow-reduced-coverage", false, "renew even when names the current certificate covers would be dropped")
	fs.IntVar(&o.minDaysLeft, "min-days-left", 14, "reduced-coverage guard: keep the current certificate while it has more than `days` left")
	fs.BoolVar(&o.dryRun, "dry-run", false, "run the inventory, plan and preflight (including the HTTP-01 self-check) and show what would be ordered; register no ACME account, order, write and deploy nothing")
	fs.BoolVar(&o.noVerify, "no-verify", false, "do not probe the servers after deploying")
	fs.StringVar(&o.liveDir, "live-dir", "", "stable serving paths `dir`, updated before the deploy hooks run (default <state-dir>-live; see certplan emit)")
	fs.StringVar(&o.keyGroup, "key-group", "", "serving paths: keys root:`group` 0640 and directories 0750, for a server that reads keys as its own user (Exim: Debian-exim; cPanel: mail)")
	fs.DurationVar(&o.verifyWait, "verify-wait", 10*time.Second, "keep probing this long while the servers have not reloaded yet")
}

// options builds apply.Options; conn receives the CA client, or the error
// connecting to it, for hints.
func (o *applyOptions) options(ctx context.Context, g *globals, args []string, mode apply.Mode, conn *caConn) (apply.Options, error) {
	var ao apply.Options
	if err := o.checkInputs(args); err != nil {
		return ao, err
	}
	cfg, err := o.acmeConfig(g)
	if err != nil {
		return ao, err
	}
	issuerRoots, err := o.issuerPool()
	if err != nil {
		return ao, err
	}
	plan, st, inv, err := o.planAndState(ctx, g, args)
	if err != nil {
		return ao, err
	}
	cfg.Store = st
	o.preflightLookup(g, &cfg, plan, inv)
	ao = apply.Options{
		Mode: mode, Plan: plan, Inventory: inv, Store: st,
		Connect: func(ctx context.Context) (apply.CA, error) {
			c, err := acme.New(ctx, cfg)
			if err != nil {
				conn.err = err
				return nil, err
			}
			conn.client = c
			return c, nil
		},
		Hooks: o.hooks, PreHook: o.preHook, PostHook: o.postHook, HookTimeout: o.hookTimeout, ReuseKey: o.reuseKey,
		MaxConcurrentOrders: o.concurrentOrders, MaxOrders: o.maxOrders, IssuerRoots: issuerRoots,
		// --min-days-left 0: no days left to protect, never hold back.
		ReducedCoverageDays: o.minDaysLeft, AllowReducedCoverage: o.allowReduced || o.minDaysLeft == 0,
		DryRun: o.dryRun, Now: g.Now, Logger: g.Logger,
		Live: &store.LiveOptions{Dir: o.liveDir, KeyGroup: o.keyGroup},
	}
	// A certificate with a staged next key switches to it only when DNS
	// shows its TLSA records ready (certplan rollover).
	if ao.Rollover, err = rolloverObserver(g); err != nil {
		return ao, err
	}
	if !o.noVerify {
		if ao.Verify, err = o.verify(g); err != nil {
			return ao, err
		}
	}
	return ao, nil
}

// checkInputs checks, before any file or network is touched, that the
// flags name something to apply and make sense together.
func (o *applyOptions) checkInputs(args []string) error {
	if err := checkApplyFlags(o); err != nil {
		return err
	}
	if o.planFile == "" && !o.inv.given(args) && !o.appliedPlan {
		return usageError("nothing to plan: give the domains (--zones DIR, --domains FILE, --source KIND, domains as arguments, or --inventory FILE) and --server-ip, or --plan FILE")
	}
	if o.planFile != "" && (o.MaxNames != 0 || o.MaxPerDomain != 0 || o.Repack || len(o.Include) > 0 || len(o.Exclude) > 0 || o.Hostname != "") {
		return usageError("--plan: the plan is made already; --hostname, --include, --exclude, --max-names, --max-names-per-domain and --repack go to \"certplan plan\"")
	}
	if o.planFile == "" {
		if err := cpanelGuard(o.inv.Sources, o.DefaultCert, o.inv.ServerIPs); err != nil {
			return err
		}
	}
	switch {
	case o.minDaysLeft < 0:
		return usageError("--min-days-left %d: must not be negative", o.minDaysLeft)
	case o.concurrentOrders < 1:
		return usageError("--concurrent-orders %d: must be at least 1", o.concurrentOrders)
	case o.maxOrders < 0:
		return usageError("--max-orders %d: must not be negative (0: no cap)", o.maxOrders)
	}
	return nil
}

// planAndState reads --plan, opens the state directory (refusing a run that
// must register an account without --agree-tos), and only then goes to the
// network: the inventory's DNS, and planning against the applied plan.
func (o *applyOptions) planAndState(ctx context.Context, g *globals, args []string) (*model.Plan, *store.Store, *model.Inventory, error) {
	var plan *model.Plan
	if o.planFile != "" {
		plan = new(model.Plan)
		if err := readDocument("--plan", o.planFile, model.KindPlan, plan); err != nil {
			return nil, nil, nil, err
		}
	}
	st, err := o.openState()
	if err != nil {
		return nil, nil, nil, err
	}
	var inv *model.Inventory
	if o.inv.given(args) {
		if inv, err = o.inv.load(ctx, g, args); err != nil {
			return nil, nil, nil, err
		}
	}
	if plan == nil && inv == nil && o.appliedPlan {
		if plan, err = st.LoadPlan(); err != nil {
			return nil, nil, nil, appliedPlanError(err, o.stateDir)
		}
	}
	if plan == nil {
		if plan, err = o.loadPlan(g, st, inv); err != nil {
			return nil, nil, nil, err
		}
	}
	if err := cpanelGuard(o.inv.Sources, cmp.Or(plan.Policy.DefaultCert, planner.DefaultCertPerIP), plan.Policy.ServerIPs); err != nil {
		return nil, nil, nil, err
	}
	return plan, st, inv, nil
}

// cpanelGuard refuses a per-ip plan for more than one server IP with
// --source cpanel: cPanel's Exim and Dovecot have one service certificate
// for all IPs, so a default certificate per IP would leave every IP but
// one with another IP's names. It runs on the flags before the inventory
// (with --server-ip) and again on the plan, before anything is ordered.
func cpanelGuard(srcs []string, mode string, ips []string) error {
	if mode != planner.DefaultCertPerIP || len(ips) < 2 ||
		!slices.ContainsFunc(srcs, func(k string) bool { return strings.EqualFold(k, "cpanel") }) {
		return nil
	}
	return withCode(ExitUsage, fmt.Errorf("--source cpanel: a per-ip plan for %d server IPs (%s): cPanel serves one service certificate on all of them",
		len(ips), strings.Join(ips, ", ")),
		"give --default-cert shared (or default-cert: shared in the config file): cPanel has one Exim and one Dovecot service certificate for all IPs; certplan plans that one, and AutoSSL keeps the per-domain Mail SNI certificates")
}

// acmeConfig is the ACME client's configuration from the flags (the
// caller sets its Store).
func (o *applyOptions) acmeConfig(g *globals) (acme.Config, error) {
	kt, err := acme.ParseKeyType(o.keyType)
	if err != nil {
		return acme.Config{}, usageError("--key-type: %v", err)
	}
	if _, err := acme.DirectoryURL(o.ca); err != nil {
		return acme.Config{}, usageError("--ca: %v", err)
	}
	var roots []byte
	if o.caRoots != "" {
		if roots, err = os.ReadFile(o.caRoots); err != nil {
			return acme.Config{}, fmt.Errorf("--ca-roots: %w", err)
		}
	}
	cc, err := o.challengeConfig(g)
	if err != nil {
		return acme.Config{}, err
	}
	return acme.Config{
		CA: o.ca, CARootsPEM: roots, Email: o.email, AgreeTOS: o.agreeTOS, EABKeyID: o.eabKID, EABHMAC: o.eabHMAC,
		KeyType: kt, Profile: o.profile, Challenge: cc, CAAIdentifier: acme.CAAIdentifier(o.ca),
		Now: g.Now, Logger: g.Logger,
	}, nil
}

// verify is the verification after deploy: --ports, trusting --ca-file.
func (o *applyOptions) verify(g *globals) (*apply.Verify, error) {
	ports, err := probe.ParsePorts(o.probe.Ports)
	if err != nil {
		return nil, usageError("--ports: %v", err)
	}
	var files []string
	if o.probe.CAFile != "" {
		files = append(files, o.probe.CAFile)
	}
	pool, err := probe.Roots(files...)
	if err != nil {
		return nil, withHint(err, "--ca-file takes a PEM file of CA certificates")
	}
	return &apply.Verify{
		Prober: probe.New(probe.Config{Roots: pool, Timeout: g.Timeout, Concurrency: g.Concurrency, Now: g.Now}),
		Ports:  ports, Wait: o.verifyWait,
	}, nil
}

// issuerPool reads --issuer-roots (nil without it: the system's roots).
func (o *applyOptions) issuerPool() (*x509.CertPool, error) {
	if o.issuerRoots == "" {
		return nil, nil
	}
	b, err := os.ReadFile(o.issuerRoots)
	if err != nil {
		return nil, fmt.Errorf("--issuer-roots: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, usageError("--issuer-roots %s: no PEM certificate in it", o.issuerRoots)
	}
	return pool, nil
}

// openState opens the state directory for writing, refusing one that
// other users could change, and checks, without the network, that a run
// that must register an ACME account was given --agree-tos. A dry run
// writes nothing of its own: it reads the directory if there is one
// (store.OpenView), and creates none.
func (o *applyOptions) openState() (*store.Store, error) {
	st, err := o.openStore()
	if err != nil {
		return nil, err
	}
	if err := o.requireAgreement(st); err != nil {
		return nil, err
	}
	return st, nil
}

// openStore opens the state directory for writing, refusing one that
// other users could change.
func (o *applyOptions) openStore() (*store.Store, error) {
	if abs, err := filepath.Abs(o.stateDir); err == nil {
		o.stateDir = abs // hooks get paths inside it, and run elsewhere
	}
	if o.dryRun {
		st, err := store.OpenView(o.stateDir)
		if err != nil {
			return nil, withHint(err, "--state-dir must be readable")
		}
		return st, nil
	}
	st, err := store.Open(o.stateDir)
	var ue *store.UnsafeDirError
	switch {
	case errors.As(err, &ue):
		return nil, withHint(err, ue.Fix(), "or give --state-dir a directory that only root can change")
	case err != nil:
		return nil, withHint(err, "--state-dir must be writable (run as root, or point it elsewhere)")
	}
	return st, nil
}

// requireAgreement makes a missing --agree-tos a usage error when the run
// would have to register an account, that is when the store has none for
// the CA's directory URL: before any DNS or CA traffic, so that nothing
// fails and no backoff is recorded. A dry run registers no account.
func (o *applyOptions) requireAgreement(st *store.Store) error {
	if o.agreeTOS || o.dryRun {
		return nil
	}
	dirURL, err := acme.DirectoryURL(o.ca)
	if err != nil {
		return usageError("--ca: %v", err)
	}
	if ok, err := st.HasAccount(dirURL); ok || err != nil {
		return err
	}
	return withCode(ExitUsage, fmt.Errorf("no ACME account for %s in %s yet, and registering one needs --agree-tos", dirURL, o.stateDir),
		"read the CA's terms of service (the directory "+dirURL+" links them as meta.termsOfService), then add --agree-tos (and --email for expiry notices); --dry-run needs neither")
}

// loadPlan plans from the inventory against the applied plan in the state
// directory, so that certificates keep their IDs and name
// sets. The servers are not probed for it: the plan's certificates do not
// depend on what is served today, and verification probes afterwards.
func (o *applyOptions) loadPlan(g *globals, st *store.Store, inv *model.Inventory) (*model.Plan, error) {
	o.dns01 = o.dnsProvider != ""
	pol, err := o.policy(&o.inv, o.profile, false)
	if err != nil {
		return nil, err
	}
	// CAA is judged for the CA that will issue.
	pol.CAIdentifier = cmp.Or(acme.CAAIdentifier(o.ca), inv.CAIdentifier)
	prev, err := st.LoadPlan()
	if errors.Is(err, store.ErrNotFound) {
		prev = nil
	} else if err != nil {
		return nil, appliedPlanError(err, o.stateDir)
	}
	if err := inventoryGuard(g, inv); err != nil {
		return nil, err
	}
	pol.Keys = daneKeys(st, prev, pol.CAIdentifier)
	plan, err := planner.Plan(inv, nil, pol, prev, g.Now())
	if err != nil {
		return nil, planError(err)
	}
	inputWarnings(plan, inv)
	if err := coverageGuard(o, prev, plan); err != nil {
		return nil, err
	}
	warnDroppedWhileFailing(g, inv, prev, plan)
	for _, n := range append([]string{o.Hostname}, o.Include...) {
		for _, e := range plan.Excluded {
			if e.Name == n {
				return nil, fmt.Errorf("must-cover name %s cannot be planned: %s", n, e.Reason)
			}
		}
	}
	return plan, nil
}

func (o *applyOptions) challengeConfig(g *globals) (acme.ChallengeConfig, error) {
	cc := acme.ChallengeConfig{Type: strings.ToLower(o.challenge), HTTPListen: o.httpListen, Webroot: o.webroot,
		SelfCheckPort: o.httpPort, DNSProvider: o.dnsProvider, Resolvers: o.dnsResolvers, TLSListen: o.tlsListen}
	switch cc.Type {
	case acme.HTTP01:
		if o.webrootMap != "" {
			m, owners, err := loadWebrootMap(o.webrootMap)
			if err != nil {
				return cc, withHint(fmt.Errorf("--webroot-map: %w", err), `one "domain docroot [account]" entry per line, such as "domain2.test /home/user2/public_html user2"`)
			}
			cc.WebrootMap, cc.WebrootOwners = m, owners
		} else if err := o.sourceWebroots(g, &cc); err != nil {
			return cc, err
		}
		if cc.SelfCheckPort == 0 && cc.Webroot == "" && cc.WebrootMap == nil {
			for _, addr := range strings.Split(o.httpListen, ",") {
				_, p, err := net.SplitHostPort(strings.TrimSpace(addr))
				if err != nil {
					return cc, usageError("--http-listen %q: want [host]:port, such as :80, or several separated by commas", o.httpListen)
				}
				port, _ := strconv.Atoi(p)
				if cc.SelfCheckPort != 0 && port != cc.SelfCheckPort {
					return cc, usageError("--http-listen %q: every address must use the same port (the CA connects to port 80, or the port a proxy forwards)", o.httpListen)
				}
				cc.SelfCheckPort = port
			}
		}
	case acme.DNS01:
		if o.dnsProvider == "" {
			return cc, usageError("--challenge dns-01 needs --dns-provider: one of %s", strings.Join(acme.DNSProviderNames(), ", "))
		}
	case acme.TLSALPN01:
	default:
		return cc, usageError("--challenge %q: want http-01, dns-01 or tls-alpn-01", o.challenge)
	}
	return cc, nil
}

// caConn is what a run's Connect made: the CA client, or why not. apply
// calls Connect at most once, and reads the fields only after Run.
type caConn struct {
	client *acme.Client
	err    error
}

// caErr is the error that explains the run's failed certificates as a
// whole: connecting to the CA, or registering the account.
func (c *caConn) caErr() error {
	if c.err == nil && c.client != nil {
		return c.client.AccountErr()
	}
	return c.err
}

// runApply runs the orchestration and maps its outcome to an exit code.
func runApply(ctx context.Context, g *globals, o *applyOptions, args []string, mode apply.Mode, tune func(*apply.Options)) (*apply.Report, error) {
	var conn caConn
	ao, err := o.options(ctx, g, args, mode, &conn)
	if err != nil {
		return nil, err
	}
	if tune != nil {
		tune(&ao)
	}
	return runOptions(ctx, g, o, ao, mode, &conn)
}

// runOptions runs apply with ao (from o.options, which set conn's
// Connect) and maps its outcome to an exit code.
func runOptions(ctx context.Context, g *globals, o *applyOptions, ao apply.Options, mode apply.Mode, conn *caConn) (*apply.Report, error) {
	rep, err := apply.Run(ctx, ao)
	if rep != nil {
		o.keepSettings(g, ao.Store)
	}
	var pe *apply.PlanError
	if errors.As(err, &pe) {
		return nil, withHint(err, "nothing was ordered or deployed; this certplan never plans a certificate without names: plan again (certplan plan --previous with the plan in use) and apply the new plan")
	}
	var ph *apply.PreHookError
	if errors.As(err, &ph) {
		return nil, withHint(err, "the pre-hook must exit 0 before anything is ordered; run it by hand to see why it failed (its output ends the error above)")
	}
	if errors.Is(err, store.ErrLocked) {
		return nil, withCode(ExitLocked, err, "another certplan run is working on "+o.stateDir+"; this one did nothing (the lock goes with that process, so no cleanup is needed)")
	}
	if err != nil {
		return nil, err
	}
	reportDomains(g, rep)
	if o.dryRun && conn.client != nil && !conn.client.HasAccount() {
		// A dry run registers nothing: say what the real run will do.
		fmt.Fprintf(g.Stderr, "certplan: note: no ACME account for %s in %s yet: the first real run registers one (it needs --agree-tos); CAA accounturi checks were skipped\n",
			conn.client.DirectoryURL(), o.stateDir)
	}
	return rep, runError(rep, mode, conn.caErr(), o)
}

// reportDomains says on stderr, once each, which hosted domains' lookups
// started failing in this run and which answer again (apply keeps the
// set in the state directory): renew is otherwise silent when nothing
// changed, and "certplan check" warns about them meanwhile.
func reportDomains(g *globals, rep *apply.Report) {
	for _, d := range rep.Domains {
		switch d.Status {
		case apply.LookupFailing:
			fmt.Fprintf(g.Stderr, "certplan: warning: lookups failing for %s: %s; its names stay planned, and this is said again only when it answers (certplan check warns meanwhile)\n", d.Domain, d.Error)
		case apply.LookupRecovered:
			fmt.Fprintf(g.Stderr, "certplan: note: lookups for %s answer again (they failed since %s)\n", d.Domain, d.Since.Format(time.RFC3339))
		}
	}
}

type issueOptions struct {
	applyOptions
	force bool
}

// newIssueCmd is long for its help text (what issue does, the state
// directory, the exit codes, examples); the work is in apply.
func newIssueCmd(g *globals) *cobra.Command {
	o := &issueOptions{}
	cmd := &cobra.Command{
		Use:   "issue [DOMAIN...]",
		Short: "Issue the plan's certificates through ACME, deploy them and verify they are served",
		Long: `issue turns a plan into certificates. The plan is --plan FILE (from "certplan
plan"), or is made here from the inventory (the domain sources and --server-ip,
or --inventory FILE) against the plan applied last time in --state-dir, with
plan's --hostname, --include, --exclude, --max-names, --max-names-per-domain
and --repack (without it, names stay where the plan applied last put them).

For each planned certificate that is missing, whose names changed, or that is
due for renewal, it runs a preflight per name (points here, CAA allows the CA
and challenge, the HTTP-01 path answers), orders it (with ARI's "replaces" when it replaces one), leaves out
names the CA rejects and orders once more without them (never a must-cover
name), checks what the CA issued (exactly the names ordered, valid now, the
key sent, a chain to --issuer-roots or the system's roots; anything else
fails the order and keeps the current certificate), and stores it atomically
in --state-dir. Each changed certificate's
deploy hooks then run once, and every name of the changed certificates is
probed on its IPs and --ports, with and without SNI, to check that the new
certificate is what clients get. Around the deploys, every name of the
inventory (or of the plan) on a server IP is probed before and after, managed
by certplan or not: one that clients verified before and do not after is
reported ("BROKEN BY THIS RUN") and the run exits 3. A name certplan does not
manage (excluded, or not in the inventory) is left as served today: the
example hooks touch only the entries of the certificates they install.

Names the inventory does not cover (--include, a --plan's names) are looked
up through --resolver when their certificate is due and preflighted like
the inventory's: none reaches the CA unchecked.

--dry-run stops before ordering: it takes the inventory, plans, runs the
preflight and says what would be ordered, but registers no ACME account (so it
needs no --agree-tos; CAA accounturi is checked only against an account
already in --state-dir), orders nothing and writes nothing of its own: it
reads --state-dir if it exists, creates none and takes no lock; the one file
it writes is the HTTP-01 self-check's token under a --webroot, removed
after. Names that would fail are reported, and the exit code is 3.

Unlike "certplan renew", issue ignores the backoff of earlier failures: it is
an operator's request to try now. A failed order leaves the previous
certificate in place and runs no hook for it. A certificate whose hooks
succeeded but that verification did not find served is deployed again (renew
does that at most 3 times, spaced 1, 10 and 100 minutes).

A certificate the plan no longer has is retired: its deploy hooks run with
CERTPLAN_CHANGE=retired (before the deploys of the run) to take it out of the
servers, and then its files move to --state-dir's retired/. It waits while
one of its names is planned on a certificate that does not list it yet.

Certificates are ordered --concurrent-orders at a time; the hooks run after
all orders, one certificate at a time in plan order.

--pre-hook and --post-hook run once per run, and only when something is due
(an order, a redeploy or a retirement): the pre-hook before anything binds or
self-checks the challenge port (stop a web server that holds port 80 there),
the post-hook after the last deploy hook and the verification, also when the
run failed. A failing pre-hook stops the run before any order (exit 1); a
failing post-hook makes it partial (exit 3). --hook-timeout bounds them. They
run on a --dry-run too (its HTTP-01 self-check needs the port); deploy hooks
do not. A run places at most
--max-orders orders: a large plan is issued in batches, run after run.

State directory (--state-dir): certs/<id>/current/ holds cert.pem, chain.pem,
fullchain.pem, privkey.pem (0600) and combined.pem (key then chain, for
Postfix smtpd_tls_chain_files); the previous version is kept beside it.

--webroot-map file, one entry per line ("#" comments):
  domain2.test    /home/user2/public_html  user2
  mail.shop.test  /home/user3/shop
The longest matching parent wins; a YAML mapping of domains to docroots works
too. The optional account (user name or uid) owns the domain: its docroot
must belong to it or to root. certplan never writes through a link the
customer could have made (see the README's "Security").

Exit codes:
  0  every certificate due was issued, deployed and verified (or none was due)
  1  failure: nothing could be issued (CA, network, bad input)
  2  bad flags or arguments, or no --agree-tos when an ACME account must be
     registered (none in --state-dir for the CA): nothing was sent
  3  partial: some names dropped, some certificates failed, kept or deferred
     (--max-orders), a deploy or post hook failed (also a retired
     certificate's), verification found the new certificate not served, or a
     name that verified before the deploy does not after; with --dry-run, the
     preflight found names or certificates that would fail
  4  another certplan run holds the state directory's lock`,
		Example: `  # Plan from the zones and issue, deploying to Postfix:
  certplan issue --zones /var/named --server-ip 192.0.2.10 --hostname mail.example.com \
    --agree-tos --email hostmaster@example.com --deploy-hook /etc/certplan/hooks/postfix.sh

  # Preview: preflight only; no account registered (no --agree-tos needed), nothing ordered
  certplan issue --plan plan.json --inventory inv.json --dry-run

  # Issue with the built-in HTTP-01 server, deploy to Postfix, verify
  certplan issue --plan plan.json --inventory inv.json --agree-tos --email hostmaster@example.com \
    --deploy-hook /etc/certplan/hooks/postfix.sh --ports 25,587,465,993

  # cPanel: each domain's challenge files in its own document root
  certplan issue --plan plan.json --webroot-map /etc/certplan/webroots --webroot /var/www/html

  # cPanel, from its own files: the domains from /etc/userdomains and friends, the
  # document roots and their owners from /var/cpanel/userdata
  certplan issue --source cpanel --server-ip 192.0.2.10 --hostname mail.example.com \
    --agree-tos --email hostmaster@example.com --deploy-hook /etc/certplan/hooks/cpanel.sh

  # DNS-01 through RFC 2136 (lego's dnsupdate provider reads DNSUPDATE_* variables)
  DNSUPDATE_NAMESERVER=192.0.2.53:53 certplan issue --plan plan.json --challenge dns-01 --dns-provider dnsupdate

  # DNS-01 through your own script: run as "SCRIPT present|cleanup FQDN VALUE" (lego's
  # exec interface); if it fails, the end of its output is in the error. EXEC_TIMEOUT: 2m
  EXEC_PATH=/etc/certplan/dns-hook.sh certplan issue --plan plan.json --challenge dns-01 --dns-provider exec

  # A private ACME server (Pebble)
  certplan issue --plan plan.json --ca https://localhost:14000/dir --ca-roots pebble.minica.pem \
    --issuer-roots pebble-root.pem --agree-tos`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkFormat("text", "json"); err != nil {
				return err
			}
			args, err := o.recall(cmd, g, args)
			if err != nil {
				return err
			}
			rep, err := runApply(cmd.Context(), g, &o.applyOptions, args, apply.ModeIssue, func(ao *apply.Options) { ao.Force = o.force })
			if rep == nil {
				return err
			}
			if werr := writeReport(g, rep, false); werr != nil {
				return werr
			}
			return err
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.force, "force", false, "renew every planned certificate, due or not")
	return cmd
}

// writeReport writes the report as JSON, or as text: per certificate in
// full (issue), or one line per change (renew, summary).
func writeReport(g *globals, rep *apply.Report, summary bool) error {
	w, commit := g.output()
	if g.Format == "json" {
		b, err := model.Marshal(rep)
		if err != nil {
			return err
		}
		w.Write(b)
		return commit()
	}
	if summary {
		report.ApplyChanges(w, rep)
	} else {
		report.ApplyText(w, rep)
	}
	return commit()
}
