package apply

// This file records outcomes: what a success, a failure, or a
// verification changes in a certificate's renewal state (backoff, the
// CA's Retry-After, the reduced-coverage hold) and deploy state (the
// redeploy count), and writes them through the store. The resets
// themselves are methods of the state types (store.RenewalState,
// store.DeployState).

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/deploy"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/store"
)

// recordFailure records a failed order (or a CA that could not be
// reached): backoff, and the current certificate kept when the
// reduced-coverage guard held the renewal back.
func (r *runner) recordFailure(j *job, err error) (*CertOutcome, *pendingDeploy, error) {
	r.fail(j, err)
	var rc *ReducedCoverageError
	if errors.As(err, &rc) {
		j.out.Status = StatusKept
		if j.rs.ReducedCoverageSince.IsZero() {
			j.rs.ReducedCoverageSince = j.now
		}
	}
	return j.out, nil, r.saveRenewal(j.pc.ID, j.rs)
}

// recordKeptUnchanged records a reissue that was not ordered because the
// preflight would have brought it back to the current names: it counts as
// a failure (backed off), and the current certificate stays.
func (r *runner) recordKeptUnchanged(j *job) (*CertOutcome, *pendingDeploy, error) {
	r.fail(j, fmt.Errorf("%s: the names that changed would all be dropped; keeping the current certificate", j.pc.ID))
	j.out.Status = StatusKept
	return j.out, nil, r.saveRenewal(j.pc.ID, j.rs)
}

// recordIssued records certificate c, issued and stored: the renewal state
// starts afresh (names the CA dropped are retried with backoff), and so
// does the redeploy count. Both are saved before the hooks run, so that a
// run interrupted before them still asks for the new certificate's
// renewal window; the next run deploys.
func (r *runner) recordIssued(j *job, d planner.RenewalDecision, res *acme.Result, c *store.Cert) (*CertOutcome, *pendingDeploy, error) {
	out := j.out
	out.Status, out.Issued = StatusIssued, c.Meta.Names
	out.Serial, out.NotAfter, out.Dir = c.Meta.Serial, c.Meta.NotAfter, c.Dir
	out.Error, out.NextCheck = "", time.Time{}
	j.rs.Succeeded(j.now)
	j.as.NewCertificate()
	out.VerifyFailures, out.RedeployAfter = 0, time.Time{}
	if len(res.Dropped) > 0 {
		// Names that did not make it are retried, with backoff: the next
		// run sees the name sets differ.
		var dn []string
		for _, x := range res.Dropped {
			dn = append(dn, x.Name)
		}
		j.rs.Failed(j.now, "names dropped: "+strings.Join(dn, ", "), planner.Backoff)
		out.NextCheck = j.rs.BackoffUntil
	}
	out.Failures = j.rs.Failures
	if err := r.saveRenewal(j.pc.ID, j.rs); err != nil {
		return nil, nil, err
	}
	if err := r.saveState(j.pc.ID, j.as); err != nil {
		return nil, nil, err
	}
	change := deploy.ChangeRenewed
	switch {
	case j.cur == nil:
		change = deploy.ChangeNew
	case d.Action == planner.ActionReissue:
		change = deploy.ChangeChanged
	}
	return out, &pendingDeploy{cert: c, change: change, state: j.as}, nil
}

// failed marks out failed with err (a dry run records nothing more).
func (r *runner) failed(out *CertOutcome, err error) {
	out.Status, out.Error = StatusFailed, err.Error()
	// The report carries the error; the log only follows progress.
	r.log.Info("certificate not issued", "id", out.ID, "error", err)
}

// fail records a failed attempt in j's renewal state: backoff, and the
// CA's Retry-After when it sent one.
func (r *runner) fail(j *job, err error) {
	out, rs := j.out, &j.rs
	r.failed(out, err)
	rs.Failed(j.now, err.Error(), planner.Backoff)
	out.NextCheck = rs.BackoffUntil
	if d, ok := acme.RetryAfter(err); ok {
		rs.RetryAfter = j.now.Add(d)
		if rs.RetryAfter.After(out.NextCheck) {
			out.NextCheck = rs.RetryAfter
		}
	}
	out.Failures = rs.Failures
}

// afterVerify records what verification found for each changed
// certificate whose hooks all succeeded: served, and its redeploy count
// starts afresh; not served, and it is deployed again by a later run, at
// most MaxVerifyRedeploys times, spaced by planner.Backoff. (A certificate
// whose hooks failed is deployed again by the next run anyway.)
func (r *runner) afterVerify() error {
	bad := map[string]bool{}
	for _, v := range r.rep.Verification {
		if !v.OK() {
			bad[v.CertID] = true
		}
	}
	now := r.o.Now()
	for i := range r.rep.Certificates {
		c := &r.rep.Certificates[i]
		if !c.Changed() || !hooksOK(c.Hooks) {
			continue
		}
		as, err := r.o.Store.LoadDeployState(c.ID)
		if err != nil || as.DeployedSerial != c.Serial {
			continue
		}
		if !bad[c.ID] {
			if as.VerifyFailures == 0 && as.RedeployAfter.IsZero() {
				continue
			}
			as.ForgetVerification()
		} else {
			as.VerifyFailures++
			as.RedeployAfter = time.Time{}
			if as.VerifyFailures <= MaxVerifyRedeploys {
				as.DeployedSerial = ""
				as.RedeployAfter = now.Add(planner.Backoff(as.VerifyFailures))
			}
			r.log.Info("deployed certificate not served", "id", c.ID, "verify_failures", as.VerifyFailures, "redeploy_after", as.RedeployAfter)
		}
		c.VerifyFailures, c.RedeployAfter = as.VerifyFailures, as.RedeployAfter
		if err := r.saveState(c.ID, as); err != nil {
			return err
		}
	}
	return nil
}

func hooksOK(hs []HookOutcome) bool {
	for _, h := range hs {
		if !h.OK {
			return false
		}
	}
	return true
}

func (r *runner) saveRenewal(id string, rs store.RenewalState) error {
	if r.o.DryRun {
		return nil
	}
	if err := r.o.Store.SaveRenewal(id, rs); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}

// saveState writes certificate id's deploy state; the caller holds the
// store's lock.
func (r *runner) saveState(id string, s store.DeployState) error {
	if r.o.DryRun {
		return nil
	}
	if err := r.o.Store.SaveDeployState(id, s); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}

// removeState forgets certificate id's deploy state (it was retired).
func (r *runner) removeState(id string) error {
	if err := r.o.Store.RemoveDeployState(id); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}
