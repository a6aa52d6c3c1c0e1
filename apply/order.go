package apply

// This file carries one certificate through a run: load what the state
// directory holds about it, refresh the CA's renewal window, decide
// (decide.go), and place the order the decision asks for — the ACME
// client's part — leaving what the outcome changes in the state to
// record.go.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/deploy"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/rollover"
	"github.com/certplan/certplan/store"
)

// job is one planned certificate in a run: what was loaded about it, and
// its outcome as it forms.
type job struct {
	i     int // position in plan order
	pc    model.PlannedCert
	names []string // pc's names, normalised
	now   time.Time
	out   *CertOutcome
	cur   *store.Cert // nil: none stored (or unreadable)
	rs    store.RenewalState
	as    store.DeployState
	next  *rollover.Status // a staged next key's rollover (rollover.go); nil: none
}

// order is one's work: the outcome and what to deploy (nil: nothing).
func (r *runner) order(ctx context.Context, i int, pc model.PlannedCert) (*CertOutcome, *pendingDeploy, error) {
	j, err := r.load(i, pc)
	if err != nil {
		return nil, nil, err
	}
	if err := r.refreshARIIfDue(ctx, j); err != nil {
		return nil, nil, err
	}
	f := facts{mode: r.o.Mode, force: r.o.Force, canDeploy: len(r.o.Hooks) > 0 && !r.o.DryRun,
		now: j.now, pc: pc, names: j.names, rs: j.rs, as: j.as}
	if j.cur != nil {
		f.cur = &j.cur.Meta
	}
	d := r.decideRollover(ctx, j, r.decideReplacing(f))
	out := j.out
	out.Action, out.Reason, out.Message, out.NextCheck = d.renewal.Action, d.renewal.Reason, d.renewal.Message, d.renewal.NextCheck
	out.Failures = j.rs.Failures
	out.VerifyFailures, out.RedeployAfter = j.as.VerifyFailures, j.as.RedeployAfter
	switch d.step {
	case stepNone:
		out.Status = StatusUnchanged
		if d.renewal.Action == planner.ActionWait {
			out.Status = StatusWaiting
		}
		return out, nil, nil
	case stepRedeploy:
		if err := r.due(ctx); err != nil {
			return nil, nil, err
		}
		r.log.Info("deploying the current certificate again", "id", pc.ID, "why", d.why)
		out.Status, out.Issued = StatusRedeployed, j.cur.Meta.Names
		return out, &pendingDeploy{cert: j.cur, change: deploy.ChangeRenewed, state: j.as}, nil
	}
	if err := r.dueOrder(ctx); err != nil {
		return nil, nil, err
	}
	return r.place(ctx, j, d.renewal)
}

// load reads what the state directory holds about pc; an unreadable
// certificate or state is a warning, and the run goes on as if there were
// none.
func (r *runner) load(i int, pc model.PlannedCert) (*job, error) {
	st := r.o.Store
	names := normNames(pc.Names)
	j := &job{i: i, pc: pc, names: names, now: r.o.Now(),
		out: &CertOutcome{ID: pc.ID, Names: names, IPs: pc.IPs, Default: pc.Default}}
	cur, err := st.LoadCert(pc.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case errors.Is(err, store.ErrCorrupt):
		j.warn("current certificate unreadable, issuing afresh: " + err.Error())
	case err != nil:
		return nil, fmt.Errorf("apply: %w", err)
	default:
		j.cur = cur
		j.out.Serial, j.out.NotAfter, j.out.Dir = cur.Meta.Serial, cur.Meta.NotAfter, cur.Dir
	}
	if j.rs, err = st.LoadRenewal(pc.ID); err != nil {
		j.warn("renewal state unreadable, starting afresh: " + err.Error())
		j.rs = store.RenewalState{}
	}
	if j.as, err = st.LoadDeployState(pc.ID); err != nil {
		j.warn("deploy state unreadable, starting afresh: " + err.Error())
	}
	return j, nil
}

func (j *job) warn(msg string) { j.out.Warnings = append(j.out.Warnings, msg) }

// place orders what d says is due (a dry run: preflights it) and records
// the outcome.
func (r *runner) place(ctx context.Context, j *job, d planner.RenewalDecision) (*CertOutcome, *pendingDeploy, error) {
	ca, err := r.client(ctx)
	if err != nil {
		return r.recordFailure(j, err)
	}
	cov := coverageFor(r.o, j)
	req := acme.Request{
		CertID:    j.pc.ID,
		Names:     normNames(append(slices.Clone(j.names), j.pc.MustCover...)),
		PlanID:    r.o.Plan.ID,
		Inventory: r.o.Inventory,
		ReuseKey:  r.o.ReuseKey,
		Check:     cov.check,
	}
	r.replaceKey(&req, j)
	r.rolloverKey(&req, j)
	if err := r.planKey(&req, j); err != nil {
		if r.o.DryRun {
			r.failed(j.out, err)
			return j.out, nil, nil
		}
		return r.recordFailure(j, err)
	}
	if r.o.DryRun {
		return r.preflightOnly(ctx, ca, j, req, cov)
	}
	if d.Action == planner.ActionReissue && j.cur != nil && r.reissueGainsNothing(ctx, ca, j, req) {
		return r.recordKeptUnchanged(j)
	}
	// Certificates take from the order cap in plan order, so that which
	// ones are deferred does not depend on timing.
	ok, err := r.takeOrder(ctx, j.i)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		j.out.Status = StatusDeferred
		j.out.Message = fmt.Sprintf("due, not ordered: this run reached its cap of %d orders; a later run orders it", r.o.MaxOrders)
		return j.out, nil, nil
	}
	r.log.Info("obtaining certificate", "id", j.pc.ID, "action", d.Action, "reason", d.Reason, "names", len(j.names))
	res, err := ca.Obtain(ctx, req)
	r.settleOrders(res)
	j.noteObtained(res)
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	if err != nil {
		return r.recordFailure(j, cov.explain(err, res))
	}
	c, err := r.storeIssued(j, res)
	if err != nil {
		return r.recordFailure(j, err)
	}
	return r.recordIssued(j, d, res, c)
}

// reissueGainsNothing reports whether the preflight would bring a reissue
// back to the current name set: an order would gain nothing. Its drops
// and warnings go to the outcome then.
func (r *runner) reissueGainsNothing(ctx context.Context, ca CA, j *job, req acme.Request) bool {
	req.DryRun = true
	res, err := ca.Obtain(ctx, req)
	if err != nil || !slices.Equal(res.Issued, j.cur.Meta.Names) {
		return false
	}
	j.out.Dropped = res.Dropped
	j.out.Warnings = append(j.out.Warnings, res.Warnings...)
	return true
}

// preflightOnly is a dry run's order: the preflight says what would be
// issued; nothing is recorded.
func (r *runner) preflightOnly(ctx context.Context, ca CA, j *job, req acme.Request, cov coverage) (*CertOutcome, *pendingDeploy, error) {
	req.DryRun = true
	res, err := ca.Obtain(ctx, req)
	err = cov.explain(err, res)
	j.noteObtained(res)
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	out := j.out
	if err != nil {
		r.failed(out, err)
		var rc *ReducedCoverageError
		if errors.As(err, &rc) {
			out.Status = StatusKept
		}
		return out, nil, nil
	}
	out.Status, out.Issued = StatusWouldIssue, res.Issued
	return out, nil, nil
}

// noteObtained copies what an Obtain reports beside the certificate into
// the outcome.
func (j *job) noteObtained(res *acme.Result) {
	if res != nil {
		j.out.Dropped = res.Dropped
		j.out.Warnings = append(j.out.Warnings, res.Warnings...)
		j.out.Replaced = res.Replaced
	}
}
