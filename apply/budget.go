package apply

// This file paces the run's orders: the cap on orders per run
// (Options.MaxOrders), taken in plan order whatever the timing, and the
// renewal run's random sleep before its first order (Options.Jitter).

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/certplan/certplan/acme"
)

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

// takeOrder waits for certificate i's turn and reserves one order from the
// run's budget: false when the budget is used up. The first order of a
// renewal run sleeps the jitter first.
func (r *runner) takeOrder(ctx context.Context, i int) (bool, error) {
	if err := r.turns.wait(ctx, i); err != nil {
		return false, err
	}
	ok := r.reserveOrder()
	r.turns.done(i)
	if !ok {
		return false, nil
	}
	return true, r.jitter(ctx)
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
func (r *runner) settleOrders(res *acme.Result) {
	placed := 0
	if res != nil {
		placed = res.Orders
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.orders += placed - 1
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
