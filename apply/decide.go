package apply

// This file is the decision: what is due for one planned certificate,
// from the plan, the stored certificate, its renewal state (backoff, the
// CA's Retry-After, the cached ARI window) and its deploy state. It does
// no I/O: the caller loads the state (and refreshes the ARI window) first,
// and carries the decision out in order.go.

import (
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/store"
)

// facts are what decide reads.
type facts struct {
	mode  Mode
	force bool // ModeIssue: renew what is not due
	// canDeploy: hooks are configured and this is no dry run, so the
	// current certificate can be deployed again.
	canDeploy bool
	now       time.Time
	pc        model.PlannedCert
	names     []string    // pc's names, normalised (normNames)
	cur       *store.Meta // the current certificate; nil: none
	rs        store.RenewalState
	as        store.DeployState
}

// step is what a decision asks for.
type step int

const (
	stepNone     step = iota // nothing: the current certificate (if any) stays as it is
	stepRedeploy             // deploy the current certificate again, without an order
	stepOrder                // order a certificate (on a dry run: preflight one)
)

// Why the current certificate is deployed again (decision.why).
const (
	redeployHooksFailed   = "its hooks did not all succeed"
	redeployNotServed     = "verification did not find it served"
	redeployDefaultsMoved = "the IPs it is the default certificate of changed"
)

// decision is what is due for one certificate, and why.
type decision struct {
	step step
	// renewal is the renewal decision (action, reason, message, next
	// check), reported whatever the step.
	renewal planner.RenewalDecision
	// why the current certificate is deployed again (stepRedeploy).
	why string
}

// decide is what is due for the certificate f describes.
func decide(f facts) decision {
	d := decision{step: stepOrder, renewal: renewalDue(f)}
	if a := d.renewal.Action; a != planner.ActionNone && a != planner.ActionWait {
		return d
	}
	d.step = stepNone
	if why := redeployDue(f); why != "" && f.canDeploy {
		d.step, d.why = stepRedeploy, why
	}
	return d
}

// renewalDue asks the planner's renewal rules; an issue run (an operator
// asked) ignores the backoff and the CA's Retry-After, and with Force
// renews what is not due.
func renewalDue(f facts) planner.RenewalDecision {
	cs := certState(f.cur, f.rs)
	if f.mode == ModeIssue && cs != nil {
		cs.Failures, cs.RetryAfter = 0, time.Time{}
	}
	var d planner.RenewalDecision
	switch {
	case cs != nil:
		d = planner.DecideRenewal(f.now, f.names, cs, stableJitter(f.cur.Serial))
	case f.mode == ModeIssue:
		d = planner.DecideIssue(f.now, 0, time.Time{}, time.Time{})
	default:
		// Never issued: failed first attempts back off like renewals, and
		// the CA's Retry-After (a rate limit) holds them too.
		d = planner.DecideIssue(f.now, f.rs.Failures, lastFailure(f.rs), f.rs.RetryAfter)
	}
	if f.mode == ModeIssue && f.force && d.Action == planner.ActionNone {
		d = planner.RenewalDecision{Action: planner.ActionRenew, Reason: "forced", Message: "renewal forced"}
	}
	return d
}

// redeployDue says why the current certificate, with nothing to order,
// is to be deployed again ("" when it is not):
//   - a certificate stored by an earlier run whose hooks did not all
//     succeed, at once on an issue run, once its redeploy is due on a
//     renewal (verification did not find it served);
//   - on an issue run, also one that renew stopped redeploying;
//   - a default certificate whose IPs changed while its names did not (the
//     planner merged two IP groups' identical defaults into it, or an IP
//     joined or left its group), so that the hooks make it the default of
//     the IPs it now serves.
func redeployDue(f facts) string {
	if f.cur == nil {
		return ""
	}
	deployed := f.as.DeployedSerial == f.cur.Serial
	switch {
	case !deployed && (f.mode == ModeIssue || !f.now.Before(f.as.RedeployAfter)):
		if f.as.VerifyFailures > 0 {
			return redeployNotServed
		}
		return redeployHooksFailed
	case f.mode == ModeIssue && f.as.VerifyFailures > 0:
		return redeployNotServed
	case deployed && defaultIPsMoved(f.pc, f.as):
		return redeployDefaultsMoved
	}
	return ""
}

// certState is what DecideRenewal needs of the stored certificate.
func certState(cur *store.Meta, rs store.RenewalState) *planner.CertState {
	if cur == nil {
		return nil
	}
	cs := &planner.CertState{
		Names:       normNames(cur.Names),
		NotBefore:   cur.NotBefore,
		NotAfter:    cur.NotAfter,
		Failures:    rs.Failures,
		RetryAfter:  rs.RetryAfter,
		LastFailure: lastFailure(rs),
	}
	if !rs.ARIWindowStart.IsZero() && !rs.ARIWindowEnd.Before(rs.ARIWindowStart) {
		cs.ARI = &planner.Window{Start: rs.ARIWindowStart, End: rs.ARIWindowEnd}
	}
	return cs
}

// lastFailure is when the last of rs's failed attempts in a row was made
// (zero without failures).
func lastFailure(rs store.RenewalState) time.Time {
	if rs.Failures > 0 {
		return rs.LastAttempt
	}
	return time.Time{}
}

// stableJitter maps a certificate's serial to [0, 1): the point in the ARI
// window where it renews stays the same from run to run (RFC 9773 asks for a
// random point; drawing anew every hourly run would renew early).
func stableJitter(serial string) float64 {
	h := fnv.New64a()
	h.Write([]byte(serial))
	return float64(h.Sum64()>>11) / (1 << 53)
}

// defaultIPsMoved reports whether pc is a default certificate whose IPs
// differ from those its hooks last made it the default of (when known).
func defaultIPsMoved(pc model.PlannedCert, as store.DeployState) bool {
	if !pc.Default || len(as.DefaultIPs) == 0 {
		return false
	}
	a, b := slices.Clone(pc.IPs), slices.Clone(as.DefaultIPs)
	slices.Sort(a)
	slices.Sort(b)
	return !slices.Equal(a, b)
}

func normNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), "."))
	}
	sort.Strings(out)
	return slices.Compact(out)
}
