package apply

// This file asks the CA for renewal information (ARI, RFC 9773) and caches
// the window in the renewal state, at most as often as the CA's
// Retry-After allows.

import (
	"context"
	"errors"

	"github.com/certplan/certplan/acme"
	"time"
)

// ARI polling bounds: the CA's Retry-After, clamped, and a default when it
// sends none (Let's Encrypt sends six hours).
const (
	ariDefaultPoll = 6 * time.Hour
	ariMinPoll     = time.Hour
	ariMaxPoll     = 24 * time.Hour
)

// refreshARIIfDue refreshes j's renewal window on a renewal run, when a
// certificate is stored and the last answer's Retry-After has passed, and
// saves both states.
func (r *runner) refreshARIIfDue(ctx context.Context, j *job) error {
	if r.o.Mode != ModeRenew || j.cur == nil || r.o.DryRun || j.now.Before(j.as.ARINextFetch) {
		return nil
	}
	r.refreshARI(ctx, j)
	if err := r.saveRenewal(j.pc.ID, j.rs); err != nil {
		return err
	}
	return r.saveState(j.pc.ID, j.as)
}

// refreshARI asks the CA for j's current certificate's renewal window and
// caches it in the renewal state; a failure keeps the cached window (or
// the third-of-lifetime fallback) and is retried after the poll interval.
func (r *runner) refreshARI(ctx context.Context, j *job) {
	id, now := j.pc.ID, j.now
	ca, err := r.client(ctx)
	if err != nil {
		r.log.Warn("renewal information not fetched", "id", id, "error", err)
		return
	}
	info, err := ca.RenewalInfo(ctx, j.cur.Leaf)
	switch {
	case errors.Is(err, acme.ErrNoARI):
		j.as.ARINextFetch = now.Add(ariMaxPoll)
		return
	case err != nil:
		r.log.Warn("renewal information not fetched", "id", id, "error", err)
		j.as.ARINextFetch = now.Add(ariMinPoll)
		return
	}
	rs := &j.rs
	rs.ARIWindowStart, rs.ARIWindowEnd = info.Start.UTC(), info.End.UTC()
	rs.ARIFetchedAt, rs.ARIExplanation = now.UTC(), info.ExplanationURL
	poll := info.RetryAfter
	if poll <= 0 {
		poll = ariDefaultPoll
	}
	j.as.ARINextFetch = now.Add(min(max(poll, ariMinPoll), ariMaxPoll))
	r.log.Debug("renewal window", "id", id, "start", info.Start, "end", info.End)
}
