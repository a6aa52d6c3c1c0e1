package apply

// This file is Run's outline: lock the store, decide and order every
// planned certificate concurrently (order.go), retire what the plan no
// longer has (retire.go), deploy serially in plan order (deploy.go),
// record the applied plan and verify (verify.go); around the deploys,
// probe the served names for regressions (regress.go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
)

// Run applies o.Plan: see the package documentation. It returns the report
// and an error only when the run could not proceed at all (the lock is held
// elsewhere: store.ErrLocked; the state directory is unreadable; the
// context ended; the plan has a certificate without names: *PlanError).
// Failures of single certificates are in the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	// A dry run writes nothing, so it takes no lock: the store may be
	// read-only (store.OpenView), and every file it reads is replaced
	// atomically by a run that writes.
	if !o.DryRun {
		if err := o.Store.Lock(); err != nil {
			return nil, err
		}
		defer o.Store.Unlock()
	}
	r := &runner{o: o, log: o.Logger, rep: &Report{Mode: o.Mode, PlanID: o.Plan.ID, DryRun: o.DryRun}}
	// Deferred calls run last first: the challenge listener is closed
	// before the post-hook runs (it may start a server on the port).
	defer r.post(ctx)
	defer func() {
		if c, ok := r.ca.(io.Closer); ok {
			c.Close()
		}
	}()
	certs := slices.Clone(o.Plan.Certificates)
	sort.Slice(certs, func(i, j int) bool { return certs[i].ID < certs[j].ID })

	results := r.orderAll(ctx, certs)
	var g *guard
	if r.fatal() == nil && ctx.Err() == nil {
		g = r.probeBefore(ctx, results)
	}
	err = r.deployAll(ctx, certs, results)
	r.collect(results)
	if err != nil {
		return r.rep, err
	}
	if !o.DryRun {
		if err := o.Store.SavePlan(o.Plan); err != nil {
			return r.rep, fmt.Errorf("apply: save plan: %w", err)
		}
	}
	if err := r.trackDomains(); err != nil {
		return r.rep, err
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
	if g != nil && ctx.Err() == nil {
		r.rep.Regressed = r.regressions(ctx, g)
	}
	return r.rep, nil
}

// withDefaults checks o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Plan == nil {
		return o, errors.New("apply: no plan")
	}
	if o.Store == nil {
		return o, errors.New("apply: no store")
	}
	if err := checkPlan(o.Plan); err != nil {
		return o, err
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
	if o.MaxConcurrentOrders <= 0 {
		o.MaxConcurrentOrders = DefaultMaxConcurrentOrders
	}
	return o, nil
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

	dueOnce sync.Once // runs the pre-hook (runhooks.go)
	dueSeen bool      // something was due: the post-hook runs
	preErr  error     // the pre-hook's failure; set in dueOnce
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
	state  store.DeployState
}

// orderAll decides and orders concurrently, at most MaxConcurrentOrders
// certificates at a time; results[i] is certs[i]'s (nil when it did not
// finish: the context ended, or an error stopped the run, see fatal).
func (r *runner) orderAll(ctx context.Context, certs []model.PlannedCert) []*result {
	results := make([]*result, len(certs))
	if r.o.MaxOrders > 0 {
		r.turns = newTurns(len(certs))
	}
	sem := make(chan struct{}, r.o.MaxConcurrentOrders)
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
	return results
}

// deployAll retires, then deploys, all one certificate at a time (see the
// package documentation): hooks of different certificates often edit one
// server's configuration (a Postfix SNI map, an Exim include) and reload
// it. It first returns the error that stopped the ordering, if any.
func (r *runner) deployAll(ctx context.Context, certs []model.PlannedCert, results []*result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.fatal(); err != nil {
		return err
	}
	// The serving paths switch before the hooks run: the hooks (and the
	// servers they reload) read them.
	if r.o.Live != nil && !r.o.DryRun {
		if _, err := r.o.Store.UpdateLive(r.o.Plan, *r.o.Live); err != nil {
			return fmt.Errorf("apply: serving paths: %w", err)
		}
	}
	if err := r.retire(ctx, certs); err != nil {
		return err
	}
	for i, res := range results {
		if res.deploy == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		d := res.deploy
		r.deploy(ctx, certs[i], d.cert, d.change, res.out, &d.state)
		if err := r.saveState(certs[i].ID, d.state); err != nil {
			return err
		}
	}
	return nil
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
