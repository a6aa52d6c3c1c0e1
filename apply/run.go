package apply

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/deploy"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/store"
)

// Run applies o.Plan: see the package documentation. It returns the report
// and an error only when the run could not proceed at all (the lock is held
// elsewhere: store.ErrLocked; the state directory is unreadable; the
// context ended; the plan has a certificate without names: *PlanError).
// Failures of single certificates are in the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Plan == nil {
		return nil, errors.New("apply: no plan")
	}
	if o.Store == nil {
		return nil, errors.New("apply: no store")
	}
	if err := checkPlan(o.Plan); err != nil {
		return nil, err
	}
	if o.Mode == "" {
		o.Mode = ModeIssue
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := o.Store.Lock(); err != nil {
		return nil, err
	}
	defer o.Store.Unlock()
	if o.MaxConcurrentOrders <= 0 {
		o.MaxConcurrentOrders = DefaultMaxConcurrentOrders
	}
	r := &runner{o: o, log: o.Logger, rep: &Report{Mode: o.Mode, PlanID: o.Plan.ID, DryRun: o.DryRun}}
	defer func() {
		if c, ok := r.ca.(io.Closer); ok {
			c.Close()
		}
	}()
	certs := slices.Clone(o.Plan.Certificates)
	sort.Slice(certs, func(i, j int) bool { return certs[i].ID < certs[j].ID })

	// Decide and order concurrently, at most MaxConcurrentOrders
	// certificates at a time; then deploy serially, in plan order.
	results := make([]*result, len(certs))
	if o.MaxOrders > 0 {
		r.turns = newTurns(len(certs))
	}
	sem := make(chan struct{}, o.MaxConcurrentOrders)
	var wg sync.WaitGroup
	for i, pc := range certs {
		sem <- struct{}{}
		if ctx.Err() != nil || r.fatal() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := r.one(ctx, i, pc)
			if err != nil {
				r.setFatal(i, err)
				return
			}
			results[i] = res
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		r.collect(results)
		return r.rep, err
	}
	if err := r.fatal(); err != nil {
		r.collect(results)
		return r.rep, err
	}
	// Retirements first, then the deploys (see the package documentation),
	// all one certificate at a time: hooks of different certificates often
	// edit one server's configuration (a Postfix SNI map, an Exim include)
	// and reload it.
	if o.Live != nil && !o.DryRun {
		if _, err := o.Store.UpdateLive(o.Plan, *o.Live); err != nil {
			r.collect(results)
			return r.rep, fmt.Errorf("apply: serving paths: %w", err)
		}
	}
	if err := r.retire(ctx, certs); err != nil {
		r.collect(results)
		return r.rep, err
	}
	for i, res := range results {
		if res.deploy == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			r.collect(results)
			return r.rep, err
		}
		d := res.deploy
		r.deploy(ctx, certs[i], d.cert, d.change, res.out, &d.state)
		if err := r.saveState(certs[i].ID, d.state); err != nil {
			r.collect(results)
			return r.rep, err
		}
	}
	r.collect(results)
	if !o.DryRun {
		if err := o.Store.SavePlan(o.Plan); err != nil {
			return r.rep, fmt.Errorf("apply: save plan: %w", err)
		}
	}
	if o.Verify != nil && !o.DryRun && len(r.rep.Changed()) > 0 {
		rows, err := r.verify(ctx, certs)
		if err != nil {
			return r.rep, err
		}
		r.rep.Verification, r.rep.Verified = rows, true
		if err := r.afterVerify(); err != nil {
			return r.rep, err
		}
	}
	return r.rep, nil
}

// DefaultMaxConcurrentOrders is Options.MaxConcurrentOrders when unset.
const DefaultMaxConcurrentOrders = 4

type runner struct {
	o   Options
	log *slog.Logger
	rep *Report

	mu       sync.Mutex // guards what follows
	ca       CA
	caErr    error
	connOnce sync.Once
	jitterMu sync.Mutex
	jittered bool
	orders   int // placed, or reserved by an Obtain in flight
	turns    *turns
	fatalAt  int
	fatalErr error
}

// turns orders the certificates' reservations against the order cap: the
// i-th certificate reserves after the (i-1)-th has reserved or passed by.
// A nil *turns orders nothing.
type turns struct {
	ch   []chan struct{}
	once []sync.Once
}

func newTurns(n int) *turns {
	t := &turns{ch: make([]chan struct{}, n), once: make([]sync.Once, n)}
	for i := range t.ch {
		t.ch[i] = make(chan struct{})
	}
	return t
}

// wait returns when certificate i-1 is done with its turn.
func (t *turns) wait(ctx context.Context, i int) error {
	if t == nil || i == 0 {
		return nil
	}
	select {
	case <-t.ch[i-1]:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// done ends certificate i's turn; later calls do nothing.
func (t *turns) done(i int) {
	if t != nil {
		t.once[i].Do(func() { close(t.ch[i]) })
	}
}

// result is one certificate's outcome and, when its hooks are to run, what
// to deploy.
type result struct {
	out    *CertOutcome
	deploy *pendingDeploy
}

type pendingDeploy struct {
	cert   *store.Cert
	change string
	state  state
}

// collect puts the outcomes of the certificates that finished into the
// report, in plan order.
func (r *runner) collect(results []*result) {
	for _, res := range results {
		if res != nil {
			r.rep.Certificates = append(r.rep.Certificates, *res.out)
		}
	}
}

// setFatal records an error that stops the run; of several, the one of the
// first certificate in plan order wins, so that the error does not depend
// on timing.
func (r *runner) setFatal(i int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fatalErr == nil || i < r.fatalAt {
		r.fatalAt, r.fatalErr = i, err
	}
}

func (r *runner) fatal() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatalErr
}

// client connects to the CA once.
func (r *runner) client(ctx context.Context) (CA, error) {
	r.connOnce.Do(func() {
		var ca CA
		err := errors.New("apply: no CA configured")
		if r.o.Connect != nil {
			ca, err = r.o.Connect(ctx)
		}
		r.mu.Lock()
		r.ca, r.caErr = ca, err
		r.mu.Unlock()
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ca, r.caErr
}

// reserveOrder takes one order from the run's budget (Options.MaxOrders);
// false when it is used up.
func (r *runner) reserveOrder() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.o.MaxOrders > 0 && r.orders >= r.o.MaxOrders {
		return false
	}
	r.orders++
	return true
}

// settleOrders replaces a reservation with the orders an Obtain placed
// (0, 1, or 2 when it retried without failed names).
func (r *runner) settleOrders(placed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.orders += placed - 1
}

// one decides and orders for one planned certificate; it may run
// concurrently with others. The deploy is left to the caller.
func (r *runner) one(ctx context.Context, i int, pc model.PlannedCert) (*result, error) {
	defer r.turns.done(i)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, dep, err := r.order(ctx, i, pc)
	if err != nil {
		return nil, err
	}
	return &result{out: out, deploy: dep}, nil
}

// order is one's work: the outcome and what to deploy (nil: nothing).
func (r *runner) order(ctx context.Context, i int, pc model.PlannedCert) (*CertOutcome, *pendingDeploy, error) {
	o, st := r.o, r.o.Store
	now := o.Now()
	names := normNames(pc.Names)
	out := &CertOutcome{ID: pc.ID, Names: names, IPs: pc.IPs, Default: pc.Default}
	cur, err := st.LoadCert(pc.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		cur = nil
	case errors.Is(err, store.ErrCorrupt):
		out.Warnings = append(out.Warnings, "current certificate unreadable, issuing afresh: "+err.Error())
		cur = nil
	case err != nil:
		return nil, nil, fmt.Errorf("apply: %w", err)
	}
	rs, err := st.LoadRenewal(pc.ID)
	if err != nil {
		out.Warnings = append(out.Warnings, "renewal state unreadable, starting afresh: "+err.Error())
		rs = store.RenewalState{}
	}
	as, err := loadState(st, pc.ID)
	if err != nil {
		out.Warnings = append(out.Warnings, "deploy state unreadable, starting afresh: "+err.Error())
	}
	if cur != nil {
		out.Serial, out.NotAfter, out.Dir = cur.Meta.Serial, cur.Meta.NotAfter, cur.Dir
	}
	if o.Mode == ModeRenew && cur != nil && !o.DryRun && !now.Before(as.ARINextFetch) {
		r.refreshARI(ctx, pc.ID, cur, &rs, &as, now)
		if err := r.saveRenewal(pc.ID, rs); err != nil {
			return nil, nil, err
		}
		if err := r.saveState(pc.ID, as); err != nil {
			return nil, nil, err
		}
	}

	cs := certState(cur, rs)
	jitter := 0.0
	if cur != nil {
		jitter = stableJitter(cur.Meta.Serial)
	}
	if o.Mode == ModeIssue && cs != nil {
		cs.Failures, cs.RetryAfter = 0, time.Time{} // an operator asked: try now
	}
	var d planner.RenewalDecision
	switch {
	case cs != nil:
		d = planner.DecideRenewal(now, names, cs, jitter)
	case o.Mode == ModeIssue:
		d = planner.DecideIssue(now, 0, time.Time{}, time.Time{}) // an operator asked: try now
	default:
		// Never issued: failed first attempts back off like renewals, and
		// the CA's Retry-After (a rate limit) holds them too.
		d = planner.DecideIssue(now, rs.Failures, lastFailure(rs), rs.RetryAfter)
	}
	if o.Mode == ModeIssue && o.Force && d.Action == planner.ActionNone {
		d = planner.RenewalDecision{Action: planner.ActionRenew, Reason: "forced", Message: "renewal forced"}
	}
	out.Action, out.Reason, out.Message, out.NextCheck = d.Action, d.Reason, d.Message, d.NextCheck
	out.Failures = rs.Failures
	out.VerifyFailures, out.RedeployAfter = as.VerifyFailures, as.RedeployAfter

	switch d.Action {
	case planner.ActionNone, planner.ActionWait:
		out.Status = StatusUnchanged
		if d.Action == planner.ActionWait {
			out.Status = StatusWaiting
		}
		// A certificate stored by an earlier run whose hooks did not all
		// succeed is deployed now; one whose hooks succeeded but that
		// verification did not find served, once its redeploy is due. An
		// operator's issue run does not wait, and deploys again also a
		// certificate that renew stopped redeploying.
		redeploy := cur != nil && as.DeployedSerial != cur.Meta.Serial && (o.Mode == ModeIssue || !now.Before(as.RedeployAfter))
		if cur != nil && o.Mode == ModeIssue && as.VerifyFailures > 0 {
			redeploy = true
		}
		// A default certificate whose IPs changed while its names did not
		// (the planner merged two IP groups' identical defaults into it, or
		// an IP joined or left its group) is deployed again, so that the
		// hooks make it the default of the IPs it now serves.
		if cur != nil && as.DeployedSerial == cur.Meta.Serial && defaultIPsMoved(pc, as) {
			redeploy = true
		}
		if redeploy && len(o.Hooks) > 0 && !o.DryRun {
			out.Status = StatusRedeployed
			out.Issued = cur.Meta.Names
			return out, &pendingDeploy{cert: cur, change: deploy.ChangeRenewed, state: as}, nil
		}
		return out, nil, nil
	}

	ca, err := r.client(ctx)
	if err != nil {
		r.fail(out, &rs, now, err)
		return out, nil, r.saveRenewal(pc.ID, rs)
	}
	req := acme.Request{
		CertID:               pc.ID,
		Names:                names,
		MustCover:            pc.MustCover,
		PlanID:               o.Plan.ID,
		Inventory:            o.Inventory,
		ReuseKey:             o.ReuseKey,
		AllowReducedCoverage: o.AllowReducedCoverage,
	}
	// A reissue that the preflight would bring back to the current name set
	// gains nothing: do not spend an order on it.
	if cur != nil && d.Action == planner.ActionReissue && !o.DryRun {
		dry := req
		dry.DryRun = true
		res, err := ca.Obtain(ctx, dry)
		if err == nil && slices.Equal(res.Issued, cur.Meta.Names) {
			out.Dropped, out.Warnings = res.Dropped, append(out.Warnings, res.Warnings...)
			r.fail(out, &rs, now, fmt.Errorf("%s: the names that changed would all be dropped; keeping the current certificate", pc.ID))
			out.Status = StatusKept
			return out, nil, r.saveRenewal(pc.ID, rs)
		}
	}
	if o.DryRun {
		req.DryRun = true
	} else {
		// Certificates take from the order cap in plan order, so that
		// which ones are deferred does not depend on timing.
		if err := r.turns.wait(ctx, i); err != nil {
			return nil, nil, err
		}
		ok := r.reserveOrder()
		r.turns.done(i)
		if !ok {
			out.Status = StatusDeferred
			out.Message = fmt.Sprintf("due, not ordered: this run reached its cap of %d orders; a later run orders it", o.MaxOrders)
			return out, nil, nil
		}
		if err := r.jitter(ctx); err != nil {
			return nil, nil, err
		}
	}
	r.log.Info("obtaining certificate", "id", pc.ID, "action", d.Action, "reason", d.Reason, "names", len(names))
	res, err := ca.Obtain(ctx, req)
	if !o.DryRun {
		placed := 0
		if res != nil {
			placed = res.Orders
		}
		r.settleOrders(placed)
	}
	if res != nil {
		out.Dropped = res.Dropped
		out.Warnings = append(out.Warnings, res.Warnings...)
		out.Replaced = res.Replaced
	}
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	if o.DryRun {
		if err != nil {
			r.fail(out, nil, now, err)
			var rc *acme.ReducedCoverageError
			if errors.As(err, &rc) {
				out.Status = StatusKept
			}
			return out, nil, nil
		}
		out.Status, out.Issued = StatusWouldIssue, res.Issued
		return out, nil, nil
	}
	if err != nil {
		r.fail(out, &rs, now, err)
		var rc *acme.ReducedCoverageError
		if errors.As(err, &rc) {
			out.Status = StatusKept
			if rs.ReducedCoverageSince.IsZero() {
				rs.ReducedCoverageSince = now
			}
		}
		return out, nil, r.saveRenewal(pc.ID, rs)
	}

	// Issued.
	c := res.Cert
	out.Status, out.Issued = StatusIssued, res.Issued
	out.Serial, out.NotAfter, out.Dir = c.Meta.Serial, c.Meta.NotAfter, c.Dir
	out.Error, out.NextCheck = "", time.Time{}
	rs.LastAttempt, rs.LastSuccess, rs.LastError = now, now, ""
	rs.Failures, rs.BackoffUntil, rs.RetryAfter, rs.ReducedCoverageSince = 0, time.Time{}, time.Time{}, time.Time{}
	// The old ARI window was the old certificate's.
	rs.ARIWindowStart, rs.ARIWindowEnd, rs.ARIFetchedAt, rs.ARIExplanation = time.Time{}, time.Time{}, time.Time{}, ""
	as.ARINextFetch = time.Time{}
	// A new certificate starts its redeploy count afresh.
	as.VerifyFailures, as.RedeployAfter = 0, time.Time{}
	out.VerifyFailures, out.RedeployAfter = 0, time.Time{}
	if len(res.Dropped) > 0 {
		// Names that did not make it are retried, with backoff: the next
		// run sees the name sets differ.
		var dn []string
		for _, x := range res.Dropped {
			dn = append(dn, x.Name)
		}
		rs.Failures, rs.LastError = 1, "names dropped: "+strings.Join(dn, ", ")
		rs.BackoffUntil = now.Add(planner.Backoff(1))
		out.NextCheck = rs.BackoffUntil
	}
	out.Failures = rs.Failures
	if err := r.saveRenewal(pc.ID, rs); err != nil {
		return nil, nil, err
	}
	// Saved now too, so that a run interrupted before the hooks still
	// asks for the new certificate's renewal window; the next run deploys.
	if err := r.saveState(pc.ID, as); err != nil {
		return nil, nil, err
	}
	change := deploy.ChangeRenewed
	switch {
	case cur == nil:
		change = deploy.ChangeNew
	case d.Action == planner.ActionReissue:
		change = deploy.ChangeChanged
	}
	return out, &pendingDeploy{cert: c, change: change, state: as}, nil
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
		as, err := loadState(r.o.Store, c.ID)
		if err != nil || as.DeployedSerial != c.Serial {
			continue
		}
		if !bad[c.ID] {
			if as.VerifyFailures == 0 && as.RedeployAfter.IsZero() {
				continue
			}
			as.VerifyFailures, as.RedeployAfter = 0, time.Time{}
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

// fail records a failed attempt; rs may be nil (dry run).
func (r *runner) fail(out *CertOutcome, rs *store.RenewalState, now time.Time, err error) {
	out.Status, out.Error = StatusFailed, err.Error()
	// The report carries the error; the log only follows progress.
	r.log.Info("certificate not issued", "id", out.ID, "error", err)
	if rs == nil {
		return
	}
	rs.Failures++
	rs.LastAttempt, rs.LastError = now, err.Error()
	rs.BackoffUntil = now.Add(planner.Backoff(rs.Failures))
	out.NextCheck = rs.BackoffUntil
	if d, ok := acme.RetryAfter(err); ok {
		rs.RetryAfter = now.Add(d)
		if rs.RetryAfter.After(out.NextCheck) {
			out.NextCheck = rs.RetryAfter
		}
	}
	out.Failures = rs.Failures
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

// jitter sleeps a random time up to Options.Jitter before the run's first
// order (ModeRenew); orders started meanwhile wait for it too.
func (r *runner) jitter(ctx context.Context) error {
	r.jitterMu.Lock()
	defer r.jitterMu.Unlock()
	if r.jittered || r.o.Mode != ModeRenew || r.o.Jitter <= 0 {
		return ctx.Err()
	}
	r.jittered = true
	d := rand.N(r.o.Jitter)
	r.log.Info("sleeping before the first order", "jitter", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ARI polling bounds: the CA's Retry-After, clamped, and a default when it
// sends none (Let's Encrypt sends six hours).
const (
	ariDefaultPoll = 6 * time.Hour
	ariMinPoll     = time.Hour
	ariMaxPoll     = 24 * time.Hour
)

// refreshARI asks the CA for cur's renewal window (RFC 9773) and caches it
// in the renewal state; a failure keeps the cached window (or the
// third-of-lifetime fallback) and is retried after the poll interval.
func (r *runner) refreshARI(ctx context.Context, id string, cur *store.Cert, rs *store.RenewalState, as *state, now time.Time) {
	ca, err := r.client(ctx)
	if err != nil {
		r.log.Warn("renewal information not fetched", "id", id, "error", err)
		return
	}
	info, err := ca.RenewalInfo(ctx, cur.Leaf)
	switch {
	case errors.Is(err, acme.ErrNoARI):
		as.ARINextFetch = now.Add(ariMaxPoll)
		return
	case err != nil:
		r.log.Warn("renewal information not fetched", "id", id, "error", err)
		as.ARINextFetch = now.Add(ariMinPoll)
		return
	}
	rs.ARIWindowStart, rs.ARIWindowEnd = info.Start.UTC(), info.End.UTC()
	rs.ARIFetchedAt, rs.ARIExplanation = now.UTC(), info.ExplanationURL
	poll := info.RetryAfter
	if poll <= 0 {
		poll = ariDefaultPoll
	}
	as.ARINextFetch = now.Add(min(max(poll, ariMinPoll), ariMaxPoll))
	r.log.Debug("renewal window", "id", id, "start", info.Start, "end", info.End)
}

// certState is what DecideRenewal needs of the stored certificate.
func certState(cur *store.Cert, rs store.RenewalState) *planner.CertState {
	if cur == nil {
		return nil
	}
	cs := &planner.CertState{
		Names:      normNames(cur.Meta.Names),
		NotBefore:  cur.Meta.NotBefore,
		NotAfter:   cur.Meta.NotAfter,
		Failures:   rs.Failures,
		RetryAfter: rs.RetryAfter,
	}
	cs.LastFailure = lastFailure(rs)
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
func defaultIPsMoved(pc model.PlannedCert, as state) bool {
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

// deploy runs every hook for c, and records the serial as deployed when all
// succeeded; when one failed, as no serial deployed, so that the next run
// deploys it again (even a redeploy of the same serial for moved default
// IPs).
func (r *runner) deploy(ctx context.Context, pc model.PlannedCert, c *store.Cert, change string, out *CertOutcome, as *state) {
	dc := deploy.Cert{ID: pc.ID, Dir: absDir(c.Dir), Names: c.Meta.Names, Change: change}
	if pc.Default {
		dc.DefaultIPs = pc.IPs
	}
	var ok bool
	out.Hooks, ok = r.runHooks(ctx, dc)
	as.DefaultIPs = dc.DefaultIPs
	if ok {
		as.DeployedSerial = c.Meta.Serial
		as.DeployedAt = r.o.Now().UTC()
		if r.o.Verify == nil {
			// Nothing verifies this deploy: the hooks' word is all there is.
			as.VerifyFailures, as.RedeployAfter = 0, time.Time{}
		}
	} else {
		as.DeployedSerial = ""
	}
}

// runHooks runs every hook for dc, in order, and reports whether all
// succeeded.
func (r *runner) runHooks(ctx context.Context, dc deploy.Cert) ([]HookOutcome, bool) {
	ok := true
	var hooks []HookOutcome
	for _, h := range r.o.Hooks {
		r.log.Info("running deploy hook", "id", dc.ID, "change", dc.Change, "hook", h)
		outb, err := deploy.Run(ctx, h, dc, r.o.HookTimeout)
		ho := HookOutcome{Hook: h, OK: err == nil, Output: tail(string(outb), 2048)}
		if err != nil {
			ok = false
			ho.ExitCode, ho.Error = -1, err.Error()
			var he *deploy.HookError
			if errors.As(err, &he) {
				ho.ExitCode, ho.TimedOut = he.ExitCode, he.TimedOut
			}
			// The report carries the failure.
			r.log.Info("deploy hook failed", "id", dc.ID, "error", err)
		}
		hooks = append(hooks, ho)
	}
	return hooks, ok
}

// absDir makes dir absolute: the hook runs in it, and may cd elsewhere.
func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// retire undeploys the certificates that the plan no longer has: the
// stored ones that are not planned (when hooks are configured), and the
// previous plan's that were never stored (reported once). See the package
// documentation for the order and the rules.
func (r *runner) retire(ctx context.Context, planned []model.PlannedCert) error {
	inPlan := map[string]bool{}
	for _, c := range planned {
		inPlan[c.ID] = true
	}
	prev := map[string]model.PlannedCert{}
	p, err := r.o.Store.LoadPlan()
	switch {
	case err == nil:
		for _, c := range p.Certificates {
			if !inPlan[c.ID] {
				prev[c.ID] = c
			}
		}
	case !errors.Is(err, store.ErrNotFound):
		r.log.Warn("applied plan unreadable", "error", err)
	}
	ids := map[string]bool{}
	for id := range prev {
		ids[id] = true
	}
	if len(r.o.Hooks) > 0 {
		// Every stored certificate not planned: also the ones whose
		// retirement failed or was held in an earlier run (the applied plan
		// no longer lists them), and the ones retired before hooks ran for
		// retirements.
		stored, err := r.o.Store.ListCerts()
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		for _, id := range stored {
			if !inPlan[id] {
				ids[id] = true
			}
		}
	}
	homes := map[string][]string{} // planned name -> the certificates planned to list it
	for _, pc := range planned {
		for _, n := range normNames(pc.Names) {
			homes[n] = append(homes[n], pc.ID)
		}
	}
	sorted := slices.Sorted(maps.Keys(ids))
	for _, id := range sorted {
		if err := ctx.Err(); err != nil {
			return err
		}
		pc, wasPlanned := prev[id]
		rt, err := r.retireOne(ctx, id, pc, wasPlanned, homes)
		if err != nil {
			return err
		}
		r.rep.Retired = append(r.rep.Retired, rt)
	}
	return nil
}

// retireOne undeploys one certificate; pc is its entry in the previous plan
// (when wasPlanned).
func (r *runner) retireOne(ctx context.Context, id string, pc model.PlannedCert, wasPlanned bool, homes map[string][]string) (Retired, error) {
	st := r.o.Store
	rt := Retired{ID: id, Names: pc.Names}
	if wasPlanned && pc.Default {
		rt.DefaultIPs = pc.IPs
	}
	cur, err := st.LoadCert(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rt.Status, rt.Message = RetireUndeployed, "never issued: nothing to undeploy"
		return rt, nil
	case err != nil:
		rt.Status, rt.Error = RetireFailed, err.Error()
		return rt, nil
	}
	rt.Names, rt.Serial, rt.NotAfter = cur.Meta.Names, cur.Meta.Serial, cur.Meta.NotAfter
	as, err := loadState(st, id)
	if err != nil {
		r.log.Warn("deploy state unreadable", "id", id, "error", err)
	}
	// What the hooks last deployed it as; the previous plan's word for
	// certificates deployed before the state recorded it.
	if len(as.DefaultIPs) > 0 {
		rt.DefaultIPs = as.DefaultIPs
	} else if len(rt.DefaultIPs) > 0 && !r.o.DryRun {
		as.DefaultIPs = rt.DefaultIPs
		if err := r.saveState(id, as); err != nil {
			return rt, err
		}
	}
	switch {
	case len(r.o.Hooks) == 0:
		rt.Status, rt.Message = RetireKept, "no deploy hooks undeploy it: its files stay"
		return rt, nil
	case r.o.DryRun:
		rt.Status, rt.Message = RetireWould, "its deploy hooks would run with CERTPLAN_CHANGE=retired"
		return rt, nil
	}
	if why := r.heldBy(cur.Meta.Names, homes); why != "" {
		rt.Status, rt.Message = RetireHeld, "still deployed: "+why+"; tried again on the next run"
		return rt, nil
	}
	dc := deploy.Cert{ID: id, Dir: absDir(cur.Dir), Names: cur.Meta.Names, DefaultIPs: rt.DefaultIPs, Change: deploy.ChangeRetired}
	var ok bool
	rt.Hooks, ok = r.runHooks(ctx, dc)
	if !ok {
		rt.Status, rt.Message = RetireFailed, "a deploy hook failed: the next run runs them again"
		return rt, nil
	}
	to, err := st.RetireCert(id, r.o.Now())
	if err != nil {
		rt.Status, rt.Error = RetireFailed, err.Error()
		return rt, nil
	}
	if err := r.removeState(id); err != nil {
		return rt, err
	}
	rt.Status, rt.Dir = RetireUndeployed, to
	return rt, nil
}

// heldBy says why a retired certificate with these names must stay
// deployed: a name of it is planned (homes: name -> planned certificate
// IDs) on a certificate whose current version, after this run's orders,
// does not list it, so the retired certificate is still the one that
// serves it. "" when none.
func (r *runner) heldBy(names []string, homes map[string][]string) string {
	for _, n := range normNames(names) {
		ids := homes[n]
		covered := false
		for _, id := range ids {
			if c, err := r.o.Store.LoadCert(id); err == nil && slices.Contains(normNames(c.Meta.Names), n) {
				covered = true
				break
			}
		}
		if len(ids) > 0 && !covered {
			return fmt.Sprintf("%s is planned on %s, whose certificate does not list it yet", n, strings.Join(ids, ", "))
		}
	}
	return ""
}

// PlanError is a plan that Run refuses before it locks the store, orders or
// deploys anything: a certificate in it lists no names (or an empty one).
// No ACME order can be placed without an identifier, and a server cannot
// present such a certificate; the planner never makes one, so the plan was
// made by an older certplan or edited by hand.
type PlanError struct {
	CertID string
	Reason string
}

func (e *PlanError) Error() string {
	return fmt.Sprintf("apply: plan: certificate %s %s", e.CertID, e.Reason)
}

// checkPlan refuses a plan with a certificate that lists no names.
func checkPlan(p *model.Plan) error {
	for _, c := range p.Certificates {
		id := c.ID
		if id == "" {
			id = "(without an ID)"
		}
		if len(c.Names) == 0 {
			return &PlanError{CertID: id, Reason: "lists no names: an ACME order needs at least one"}
		}
		if slices.Contains(c.Names, "") {
			return &PlanError{CertID: id, Reason: "lists an empty name"}
		}
	}
	return nil
}
