package apply

// This file runs the pre and post hooks (Options.PreHook, PostHook): once
// per run, and only when something is due. The first certificate that has
// something to do (an order, or on a dry run the preflight with its
// HTTP-01 self-check; a redeploy; a retirement's hooks) starts them: the
// pre-hook runs before anything binds or probes the challenge port, and
// the orders wait for it. The post-hook runs when Run returns, after the
// last deploy and the verification, also when the run failed, but only
// when the pre-hook ran (or would have: something was due).

import (
	"context"
	"errors"

	"github.com/certplan/certplan/deploy"
)

// PreHookError is a pre-hook that failed: the run stopped before anything
// was ordered or deployed.
type PreHookError struct{ Err error }

func (e *PreHookError) Error() string {
	return "nothing was ordered or deployed: " + e.Err.Error()
}
func (e *PreHookError) Unwrap() error { return e.Err }

// due marks the run as having something to do, and runs the pre-hook the
// first time (callers racing wait for it). Its error is the pre-hook's,
// for every caller: the run stops.
func (r *runner) due(ctx context.Context) error {
	r.dueOnce.Do(func() {
		r.mu.Lock()
		r.dueSeen = true
		r.mu.Unlock()
		if r.o.PreHook == "" {
			return
		}
		r.log.Info("running pre-hook", "hook", r.o.PreHook)
		ho, err := r.runHook(ctx, deploy.KindPre, r.o.PreHook)
		r.rep.PreHook = ho
		if err != nil {
			r.preErr = &PreHookError{Err: err}
		}
	})
	return r.preErr
}

// dueOrder is due for a certificate to be ordered: a renewal run sleeps
// its jitter first, so that a pre-hook that stops a service does not
// leave it stopped for the sleep.
func (r *runner) dueOrder(ctx context.Context) error {
	if !r.o.DryRun {
		if err := r.jitter(ctx); err != nil {
			return err
		}
	}
	return r.due(ctx)
}

// post runs the post-hook when something was due; it runs even when the
// run's context ended (the pre-hook may have stopped a service), bounded
// by Options.HookTimeout.
func (r *runner) post(ctx context.Context) {
	r.mu.Lock()
	seen := r.dueSeen
	r.mu.Unlock()
	if !seen || r.o.PostHook == "" {
		return
	}
	r.log.Info("running post-hook", "hook", r.o.PostHook)
	r.rep.PostHook, _ = r.runHook(context.WithoutCancel(ctx), deploy.KindPost, r.o.PostHook)
}

// runHook runs one pre or post hook and reports it.
func (r *runner) runHook(ctx context.Context, kind, hook string) (*HookOutcome, error) {
	out, err := deploy.RunCommand(ctx, kind, hook, nil, r.o.HookTimeout)
	ho := &HookOutcome{Hook: hook, OK: err == nil, Output: tail(string(out), 2048)}
	if err != nil {
		ho.ExitCode, ho.Error = -1, err.Error()
		var he *deploy.HookError
		if errors.As(err, &he) {
			ho.ExitCode, ho.TimedOut = he.ExitCode, he.TimedOut
		}
		r.log.Info(kind+" failed", "error", err)
	}
	return ho, err
}
