package dnscheck

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/mtasts"
)

// Fetching MTA-STS policies (RFC 8461) beside the lookups. A domain whose
// _mta-sts record was found waits in a queue, once its lookups are done,
// for one of PolicyFetch.Workers fetchers; the others are emitted at once,
// and the DNS workers never wait on HTTPS. The policy host's addresses
// are those the inventory found for mta-sts.<domain> (the same resolver,
// no further query). When the lookups are over, the fetches left have
// PolicyFetch.Grace to finish; those cut short say so in PolicyError.

// PolicyFetch configures the fetching of MTA-STS policies in an
// inventory (Options.MTASTS; nil fetches none).
type PolicyFetch struct {
	// Roots verify the policy hosts' certificates; nil for the system's.
	Roots *x509.CertPool
	// Timeout bounds each fetch; 0 for mtasts.DefaultTimeout.
	Timeout time.Duration
	// Workers is how many fetches run at once; 0 for
	// DefaultPolicyWorkers.
	Workers int
	// Grace bounds how long the inventory waits for the fetches still
	// queued or under way once the lookups are over; 0 for DefaultGrace.
	Grace time.Duration
	// Port is mtasts.FetchOptions.Port, a seam for tests and the lab: 0
	// for 443.
	Port int
}

// DefaultPolicyWorkers is PolicyFetch.Workers' default.
const DefaultPolicyWorkers = 16

// DefaultGrace is PolicyFetch.Grace's default.
const DefaultGrace = time.Minute

// errGrace is the cause of the fetches cut short at the end of the grace.
var errGrace = errors.New("grace over")

// policyFetcher takes the domain results from Stream's loop: it emits
// those without an MTA-STS record at once and queues the others for its
// workers, which emit them with their policies.
type policyFetcher struct {
	cfg    PolicyFetch
	parent context.Context
	ctx    context.Context // ends with parent, or at the end of the grace
	cancel context.CancelCauseFunc
	emitMu sync.Mutex
	emit   func(DomainResult)

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []DomainResult
	closed bool
	wg     sync.WaitGroup
}

func newPolicyFetcher(ctx context.Context, cfg PolicyFetch, emit func(DomainResult)) *policyFetcher {
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultPolicyWorkers
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = mtasts.DefaultTimeout
	}
	f := &policyFetcher{cfg: cfg, parent: ctx, emit: emit}
	f.ctx, f.cancel = context.WithCancelCause(ctx)
	f.cond = sync.NewCond(&f.mu)
	for range cfg.Workers {
		f.wg.Go(f.work)
	}
	return f
}

// add takes one domain's result (from Stream's loop, one at a time).
func (f *policyFetcher) add(res DomainResult) {
	if res.Domain.MTASTS == nil {
		f.out(res)
		return
	}
	f.mu.Lock()
	f.queue = append(f.queue, res)
	f.mu.Unlock()
	f.cond.Signal()
}

// out emits res, one at a time; nothing once the inventory is cancelled.
func (f *policyFetcher) out(res DomainResult) {
	if f.parent.Err() != nil {
		return
	}
	f.emitMu.Lock()
	defer f.emitMu.Unlock()
	f.emit(res)
}

// finish is called when the lookups are over: it waits for the fetches
// left, at most the grace, and cuts the rest short.
func (f *policyFetcher) finish() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cond.Broadcast()
	t := time.AfterFunc(f.cfg.Grace, func() { f.cancel(errGrace) })
	f.wg.Wait()
	t.Stop()
	f.cancel(nil)
}

func (f *policyFetcher) work() {
	for {
		f.mu.Lock()
		for len(f.queue) == 0 && !f.closed {
			f.cond.Wait()
		}
		if len(f.queue) == 0 {
			f.mu.Unlock()
			return
		}
		res := f.queue[0]
		f.queue[0] = DomainResult{}
		f.queue = f.queue[1:]
		f.mu.Unlock()
		f.fetch(&res)
		f.out(res)
	}
}

// fetch fetches res's policy into its MTASTS.
func (f *policyFetcher) fetch(res *DomainResult) {
	m := *res.Domain.MTASTS // a copy: the result's own
	res.Domain.MTASTS = &m
	if f.ctx.Err() != nil {
		m.PolicyError = f.notFetched()
		return
	}
	p, err := mtasts.Fetch(f.ctx, res.Domain.Domain, mtasts.FetchOptions{
		Resolve: policyHostAddrs(res.Names),
		Roots:   f.cfg.Roots,
		Timeout: f.cfg.Timeout,
		Port:    f.cfg.Port,
	})
	switch {
	case err == nil:
		m.Policy = p
	case f.ctx.Err() != nil:
		m.PolicyError = f.notFetched()
	default:
		m.PolicyError = err.Error()
	}
}

// notFetched is the PolicyError of a fetch the end of the grace cut short.
func (f *policyFetcher) notFetched() string {
	if context.Cause(f.ctx) == errGrace {
		return fmt.Sprintf("not fetched: still queued or under way %v after the DNS lookups ended", f.cfg.Grace)
	}
	return "not fetched: " + f.ctx.Err().Error()
}

// policyHostAddrs resolves the policy host from the domain's names: the
// inventory resolved mta-sts.<domain> with the rest.
func policyHostAddrs(names []model.Name) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		for _, n := range names {
			if n.Name != host {
				continue
			}
			if n.Error != "" {
				return nil, errors.New(n.Error)
			}
			addrs := make([]netip.Addr, 0, len(n.Addresses))
			for _, a := range n.Addresses {
				if ip, err := netip.ParseAddr(a); err == nil {
					addrs = append(addrs, ip)
				}
			}
			return addrs, nil
		}
		return nil, errors.New("not resolved")
	}
}
