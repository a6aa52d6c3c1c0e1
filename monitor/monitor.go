// Package monitor judges the state of issued certificates for monitoring
// systems: days to expiry, renewals that fail or are overdue, names that
// clients fail to verify with or without SNI, and MX hosts that senders
// validating DANE or MTA-STS refuse (senders.go). Its verdicts follow the Nagios
// plugin convention (OK, WARNING, CRITICAL, UNKNOWN), and it renders
// Prometheus text-format metrics for node_exporter's textfile collector.
//
// Evaluate is pure: the caller reads the state directory, probes the servers
// and passes the clock.
package monitor

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
	"github.com/certplan/certplan/planner"
)

// Status is a Nagios plugin status; its value is the plugin's exit code.
type Status int

const (
	OK       Status = 0
	Warning  Status = 1
	Critical Status = 2
	Unknown  Status = 3
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Warning:
		return "WARNING"
	case Critical:
		return "CRITICAL"
	default:
		return "UNKNOWN"
	}
}

// MarshalText makes a Status a string in JSON.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Thresholds say when days to expiry become a problem.
type Thresholds struct {
	WarningDays  float64
	CriticalDays float64
	// OverdueGrace is how long past its due time a renewal may lag before it
	// is a warning (cron runs hourly; a day is generous).
	OverdueGrace time.Duration
}

// DefaultThresholds: warn at 14 days left, critical at 7, overdue after a day.
var DefaultThresholds = Thresholds{WarningDays: 14, CriticalDays: 7, OverdueGrace: 24 * time.Hour}

// Cert is one planned certificate and what is known of it.
type Cert struct {
	ID      string
	Names   []string
	IPs     []string
	Default bool
	// Issued is false when the plan has it but nothing was issued yet.
	Issued    bool
	Serial    string
	NotBefore time.Time
	NotAfter  time.Time
	// ARI is the CA's last suggested window, nil without one.
	ARI *planner.Window
	// Failures and LastError describe failed attempts in a row: to renew
	// it, or, when it was never issued, to issue it.
	Failures  int
	LastError string
	// LastAttempt and LastSuccess are the times of the last order placed
	// and of the last one that succeeded (zero when none).
	LastAttempt, LastSuccess time.Time
}

// Finding is one problem.
type Finding struct {
	Status  Status `json:"status"`
	CertID  string `json:"cert_id,omitempty"`
	Name    string `json:"name,omitempty"`
	Message string `json:"message"`
}

// CertReport is a certificate's line in the result.
type CertReport struct {
	ID          string    `json:"id"`
	Names       int       `json:"names"`
	Issued      bool      `json:"issued"`
	Serial      string    `json:"serial,omitempty"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	DaysLeft    float64   `json:"days_left"`
	NextRenewal time.Time `json:"next_renewal,omitzero"`
	Failures    int       `json:"renewal_failures"`
}

// Result is the verdict.
type Result struct {
	Status   Status       `json:"status"`
	Summary  string       `json:"summary"`
	Findings []Finding    `json:"findings"`
	Certs    []CertReport `json:"certificates"`
	// Coverage is the probe's rows, when the servers were probed.
	Coverage []model.Coverage `json:"coverage,omitempty"`
	// BrokenNames counts distinct names failing with or without SNI (an
	// sni-only name without SNI does not count).
	BrokenNames int `json:"broken_names"`
	// RefusedMX counts the MX endpoints (coverage rows) that a validating
	// sender refuses: DANE "fail", or MTA-STS "fail" under "enforce".
	RefusedMX int `json:"refused_mx,omitempty"`
	// FailingDomains are the hosted domains whose lookups fail (a WARNING
	// each; see AddFailingDomains).
	FailingDomains []FailingDomain `json:"failing_domains,omitempty"`
}

// Evaluate judges certs and, when cov is non-nil, the probe's coverage.
// sniOnly are names the plan says only SNI clients verify.
func Evaluate(now time.Time, certs []Cert, cov []model.Coverage, sniOnly []string, th Thresholds) Result {
	r := Result{Status: OK, Findings: []Finding{}, Certs: []CertReport{}, Coverage: cov}
	add := func(f Finding) {
		r.Findings = append(r.Findings, f)
		r.Status = max(r.Status, f.Status)
	}
	if len(certs) == 0 {
		add(Finding{Status: Unknown, Message: "no certificates planned or issued: run \"certplan issue\" first"})
	}
	for _, c := range certs {
		cr := CertReport{ID: c.ID, Names: len(c.Names), Issued: c.Issued, Serial: c.Serial, Failures: c.Failures}
		if !c.Issued {
			// A first issuance that keeps failing is reported like a
			// failing renewal, inside the critical finding.
			msg := fmt.Sprintf("%s: planned but not issued", c.ID)
			if c.Failures > 0 {
				msg += "; " + failedAttempts(c.Failures, "attempts to issue it", "attempt to issue it", c.LastError)
			}
			add(Finding{Status: Critical, CertID: c.ID, Message: msg})
			r.Certs = append(r.Certs, cr)
			continue
		}
		cr.NotAfter = c.NotAfter
		cr.DaysLeft = c.NotAfter.Sub(now).Hours() / 24
		st := &planner.CertState{NotBefore: c.NotBefore, NotAfter: c.NotAfter, ARI: c.ARI}
		due, _ := planner.RenewAt(st, 0)
		latest, _ := planner.RenewAt(st, 1)
		cr.NextRenewal = due
		switch {
		case !now.Before(c.NotAfter):
			add(Finding{Status: Critical, CertID: c.ID, Message: fmt.Sprintf("%s: expired %s", c.ID, day(c.NotAfter))})
		case cr.DaysLeft < th.CriticalDays:
			add(Finding{Status: Critical, CertID: c.ID, Message: fmt.Sprintf("%s: expires in %.1f days (%s)", c.ID, cr.DaysLeft, day(c.NotAfter))})
		case cr.DaysLeft < th.WarningDays:
			add(Finding{Status: Warning, CertID: c.ID, Message: fmt.Sprintf("%s: expires in %.1f days (%s)", c.ID, cr.DaysLeft, day(c.NotAfter))})
		case now.After(latest.Add(th.OverdueGrace)):
			add(Finding{Status: Warning, CertID: c.ID, Message: fmt.Sprintf("%s: renewal overdue since %s", c.ID, day(latest))})
		}
		if c.Failures > 0 {
			add(Finding{Status: Warning, CertID: c.ID, Message: c.ID + ": " + failedAttempts(c.Failures, "renewal attempts", "renewal attempt", c.LastError)})
		}
		r.Certs = append(r.Certs, cr)
	}
	broken := map[string]bool{}
	for _, row := range cov {
		if row.WithSNI != model.VerdictOK {
			broken[row.Name] = true
			add(Finding{Status: Critical, Name: row.Name, Message: fmt.Sprintf("%s on %s:%d with SNI: %s%s", row.Name, row.IP, row.Port, row.WithSNI, detail(row.WithSNIDetail))})
		}
		if row.WithoutSNI != model.VerdictOK && !slices.ContainsFunc(sniOnly, func(n string) bool { return n == row.Name || names.Covers(n, row.Name) }) {
			broken[row.Name] = true
			add(Finding{Status: Critical, Name: row.Name, Message: fmt.Sprintf("%s on %s:%d without SNI: %s%s", row.Name, row.IP, row.Port, row.WithoutSNI, detail(row.WithoutSNIDetail))})
		}
	}
	for _, row := range cov {
		for _, f := range senderFindings(row) {
			add(f)
		}
		if row.Refused() {
			r.RefusedMX++
		}
	}
	r.BrokenNames = len(broken)
	sort.SliceStable(r.Findings, func(i, j int) bool { return r.Findings[i].Status > r.Findings[j].Status })
	r.Summary = summary(r)
	return r
}

// failedAttempts says "the last 2 renewal attempts failed: why" (plural,
// singular: the attempts named in the plural and the singular).
func failedAttempts(n int, plural, singular, lastError string) string {
	msg := fmt.Sprintf("the last %d %s failed", n, plural)
	if n == 1 {
		msg = fmt.Sprintf("the last %s failed", singular)
	}
	if lastError != "" {
		msg += ": " + lastError
	}
	return msg
}

func detail(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func summary(r Result) string {
	if r.Status == OK {
		parts := []string{fmt.Sprintf("%d certificates", len(r.Certs))}
		if c, ok := soonest(r.Certs); ok {
			parts = append(parts, fmt.Sprintf("next expiry in %.0f days (%s)", c.DaysLeft, c.ID))
			if n := nextRenewal(r.Certs); !n.IsZero() {
				parts = append(parts, "next renewal "+day(n))
			}
		}
		if r.Coverage != nil {
			parts = append(parts, "every name verifies with and without SNI")
		}
		if hasSenderVerdicts(r.Coverage) {
			parts = append(parts, "DANE and MTA-STS senders accept every MX")
		}
		return strings.Join(parts, ", ")
	}
	first := r.Findings[0].Message
	if n := len(r.Findings); n > 1 {
		return fmt.Sprintf("%d problems: %s; ...", n, first)
	}
	return first
}

func soonest(cs []CertReport) (CertReport, bool) {
	var best CertReport
	found := false
	for _, c := range cs {
		if c.Issued && (!found || c.NotAfter.Before(best.NotAfter)) {
			best, found = c, true
		}
	}
	return best, found
}

func nextRenewal(cs []CertReport) time.Time {
	var t time.Time
	for _, c := range cs {
		if c.Issued && (t.IsZero() || c.NextRenewal.Before(t)) {
			t = c.NextRenewal
		}
	}
	return t
}

// AddInputErrors adds a WARNING finding for each input error the applied
// plan recorded ([model.WarnInputError]: a domain list line, a zone file
// or a source file that could not be read when the plan was made; the
// domains it would have named are not planned), and updates the status
// and summary.
func (r *Result) AddInputErrors(plan *model.Plan) {
	if plan == nil {
		return
	}
	added := false
	for _, w := range plan.Warnings {
		if w.Code == model.WarnInputError {
			r.Findings = append(r.Findings, Finding{Status: Warning, Message: "input error: " + w.Message})
			r.Status = max(r.Status, Warning)
			added = true
		}
	}
	if added {
		sort.SliceStable(r.Findings, func(i, j int) bool { return r.Findings[i].Status > r.Findings[j].Status })
		r.Summary = summary(*r)
	}
}
