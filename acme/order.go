package acme

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
)

// orderOutcome is one order's result.
type orderOutcome struct {
	certPEM, chainPEM []byte
	certURL           string
	// replaces is the "replaces" the CA echoed in the order (lego drops it
	// and orders again when the CA answers alreadyReplaced).
	replaces string
	// failed names the identifiers the CA rejected or could not validate;
	// with err set, the caller may drop them and order again.
	failed []Dropped
}

// presented is a challenge response to remove after the order, and the
// solver that presented it.
type presented struct {
	solver               solver
	name, token, keyAuth string
}

// placeOrder runs one ACME order for names: all challenges presented and
// triggered at once, the order polled until validation ends, then
// finalization with a CSR for key.
func (c *Client) placeOrder(ctx context.Context, names []string, replaces string, key crypto.Signer) (*orderOutcome, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	out := &orderOutcome{}

	order, err := c.core.Orders.New(ctx, names, &api.OrderOptions{Profile: c.cfg.Profile, ReplacesCertID: replaces})
	if err != nil {
		out.failed = failedFromProblem(err, DropRejected)
		return out, fmt.Errorf("new order: %w", err)
	}
	out.replaces = order.Replaces

	run := newAuthzRun(len(order.Authorizations))
	defer c.cleanup(ctx, run)
	c.parallel(len(order.Authorizations), func(i int) { c.trigger(ctx, run, i, order.Authorizations[i]) })
	if err := errors.Join(run.errs...); err != nil {
		return out, fmt.Errorf("get authorizations: %w", err)
	}
	if out.failed, err = c.failedNames(ctx, order, run); err != nil {
		return out, err
	}
	if len(out.failed) > 0 {
		return out, fmt.Errorf("validation failed for %d names", len(out.failed))
	}

	certURL, failed, err := c.finalize(ctx, order, key)
	if err != nil {
		out.failed = failed
		return out, err
	}
	raw, err := c.core.Certificates.Get(ctx, certURL, false)
	if err != nil {
		return out, fmt.Errorf("download certificate: %w", err)
	}
	out.certPEM, out.chainPEM, out.certURL = raw.Cert, raw.Issuer, certURL
	return out, nil
}

// authzRun is the pipeline over an order's authorizations: each is read,
// its challenge presented and triggered, all at once, so that the CA
// validates the first names while the last authorizations are still being
// read. Per authorization (by index): its identifier, whether its
// challenge was triggered, a failure found before the trigger, or an error
// reading it; and the challenges presented, to clean up.
type authzRun struct {
	idents    []string
	triggered []bool
	results   []*Dropped
	errs      []error

	mu                        sync.Mutex
	shown                     []presented
	firstTrigger, lastTrigger time.Time
}

func newAuthzRun(n int) *authzRun {
	return &authzRun{idents: make([]string, n), triggered: make([]bool, n), results: make([]*Dropped, n), errs: make([]error, n)}
}

// trigger reads authorization i at url, presents its challenge and
// triggers it; an authorization already valid needs nothing.
func (c *Client) trigger(ctx context.Context, run *authzRun, i int, url string) {
	a, err := c.core.Authorizations.Get(ctx, url)
	if err != nil {
		run.errs[i] = err
		return
	}
	// A wildcard's authorization names the base domain, flagged wildcard
	// (RFC 8555 section 7.1.4): the order's identifier is "*." and it.
	name := a.Identifier.Value
	ident := name
	if a.Wildcard {
		ident = "*." + name
	}
	run.idents[i] = ident
	fail := func(reason string) {
		run.results[i] = &Dropped{Name: ident, Stage: StageCA, Code: DropValidation, Reason: reason}
	}
	switch a.Status {
	case legoacme.StatusValid:
		return
	case legoacme.StatusPending:
	default:
		fail("authorization is " + a.Status)
		return
	}
	s := c.solverFor(a)
	ch := challengeOf(a, s)
	if ch == nil {
		fail("the CA offers no " + s.typ() + " challenge")
		return
	}
	ka, err := c.core.GetKeyAuthorization(ch.Token)
	if err != nil {
		run.errs[i] = err
		return
	}
	if err := s.present(ctx, name, ch.Token, ka); err != nil {
		fail("presenting the challenge: " + err.Error())
		return
	}
	run.mu.Lock()
	run.shown = append(run.shown, presented{s, name, ch.Token, ka})
	run.mu.Unlock()
	if _, err := c.core.Challenges.New(ctx, ch.URL); err != nil {
		fail(problemText(err))
		return
	}
	run.triggered[i] = true
	now := time.Now()
	run.mu.Lock()
	if run.firstTrigger.IsZero() {
		run.firstTrigger = now
	}
	run.lastTrigger = now
	run.mu.Unlock()
}

// solverFor is the solver for authorization a, an explicit choice where
// lego's resolver takes the first challenge type it has a solver for in
// the order tls-alpn-01, http-01, dns-01 (challenge/resolver,
// chooseSolver): a wildcard's through dns-01, the only type the CA offers
// for it (RFC 8555 section 7.1.3); every other through the configured
// type. Obtain has refused wildcards when there is no dns-01 solver.
func (c *Client) solverFor(a legoacme.Authorization) solver {
	if a.Wildcard && c.wild != nil {
		return c.wild
	}
	return c.solver
}

// challengeOf is a's challenge of s's type, or nil.
func challengeOf(a legoacme.Authorization, s solver) *legoacme.Challenge {
	var ch *legoacme.Challenge
	for j := range a.Challenges {
		if a.Challenges[j].Type == s.typ() {
			ch = &a.Challenges[j]
		}
	}
	return ch
}

// cleanup removes the challenge responses presented, even when ctx is
// done (the order may have been cut short).
func (c *Client) cleanup(ctx context.Context, run *authzRun) {
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer ccancel()
	c.parallel(len(run.shown), func(i int) {
		p := run.shown[i]
		p.solver.cleanup(cctx, p.name, p.token, p.keyAuth)
	})
}

// failedNames waits for the order's validation and returns the names
// that failed. While validation runs, one request per round asks for the
// order's status, however many names it has (polling a hundred
// authorizations every round would cost a hundred requests, and the rounds
// would queue behind the concurrency bound). An order that turns "ready"
// has every authorization valid; only one that turns "invalid" (or a name
// that failed before its trigger) needs the authorizations read, to learn
// which names failed.
func (c *Client) failedNames(ctx context.Context, order legoacme.ExtendedOrder, run *authzRun) ([]Dropped, error) {
	var unresolved []int
	early := false
	for i := range run.triggered {
		if run.triggered[i] {
			unresolved = append(unresolved, i)
		}
		early = early || run.results[i] != nil
	}
	if !early && len(unresolved) > 0 {
		ok, err := c.waitOrder(ctx, order.Location, run.firstTrigger, run.lastTrigger)
		if err != nil {
			return nil, err
		}
		if ok {
			unresolved = nil
		}
	}
	if len(unresolved) > 0 {
		urls, names := make([]string, len(unresolved)), make([]string, len(unresolved))
		for k, i := range unresolved {
			urls[k], names[k] = order.Authorizations[i], run.idents[i]
		}
		for k, d := range c.pollAuthzs(ctx, urls, names) {
			if d != nil {
				run.results[unresolved[k]] = d
			}
		}
	}
	var failed []Dropped
	for _, d := range run.results {
		if d != nil {
			failed = append(failed, *d)
		}
	}
	return failed, nil
}

// finalize sends the CSR for key and waits for the certificate's URL; a
// CA that rejects the order names the identifiers in failed.
func (c *Client) finalize(ctx context.Context, order legoacme.ExtendedOrder, key crypto.Signer) (certURL string, failed []Dropped, err error) {
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: identifiers(order)}, key)
	if err != nil {
		return "", nil, fmt.Errorf("csr: %w", err)
	}
	fin, err := c.core.Orders.UpdateForCSR(ctx, order.Finalize, csr)
	if err != nil {
		return "", failedFromProblem(err, DropRejected), fmt.Errorf("finalize: %w", err)
	}
	if fin.Status == legoacme.StatusValid {
		return fin.Certificate, nil, nil
	}
	for interval := c.cfg.PollInterval; ; interval = nextPoll(interval) {
		o, err := c.core.Orders.Get(ctx, order.Location)
		if err != nil {
			return "", nil, fmt.Errorf("poll order: %w", err)
		}
		switch o.Status {
		case legoacme.StatusValid:
			return o.Certificate, nil, nil
		case legoacme.StatusInvalid:
			return "", failedFromProblem(o.Err(), DropRejected), fmt.Errorf("order invalid: %w", o.Err())
		}
		if err := sleep(ctx, interval); err != nil {
			return "", nil, fmt.Errorf("poll order: %w", err)
		}
	}
}

// Polling: the first wait is Config.PollInterval; later waits grow by a
// quarter (so that a poll overshoots the moment validation ends by at most a
// quarter of the time spent so far) up to pollMax.
const pollMax = 2 * time.Second

func nextPoll(d time.Duration) time.Duration { return min(d+d/4, pollMax) }

// waitOrder polls the order until it leaves "pending": true when it is
// ready (every authorization valid), false when it is invalid.
//
// first and last are when the first and the last challenge were triggered.
// The CA has been validating since first, so the schedule is anchored
// there, not at the end of the trigger pipeline (which, for a hundred
// names, takes longer than a validation): the first poll comes
// Config.PollInterval after first, yet at least a quarter of it after last
// (the last name's validation has just begun); later polls are spaced a
// quarter of the time since first, at least a quarter of PollInterval and
// at most pollMax apart. A poll thus overshoots the end of validation by at
// most a quarter of the order's validation time so far; for a one-name
// order the polls come at PollInterval, then about 1.25 times as far apart
// each round, as before.
func (c *Client) waitOrder(ctx context.Context, url string, first, last time.Time) (bool, error) {
	minGap := c.cfg.PollInterval / 4
	wait := max(time.Until(first.Add(c.cfg.PollInterval)), time.Until(last.Add(minGap)))
	for {
		if err := sleep(ctx, wait); err != nil {
			return false, fmt.Errorf("validation did not finish: %w", err)
		}
		wait = min(max(minGap, time.Since(first)/4), pollMax)
		o, err := c.core.Orders.Get(ctx, url)
		if err != nil {
			if ctx.Err() != nil {
				return false, fmt.Errorf("validation did not finish: %w", err)
			}
			c.log.Debug("polling the order failed, retrying", "error", err)
			continue
		}
		switch o.Status {
		case legoacme.StatusPending:
			continue
		case legoacme.StatusInvalid:
			return false, nil
		}
		// ready, processing or valid: every authorization is valid.
		return true, nil
	}
}

// pollAuthzs waits until every authorization in urls has left "pending",
// (names[i] is urls[i]'s identifier), polling the pending ones each round;
// for each it returns nil when valid and the reason otherwise.
func (c *Client) pollAuthzs(ctx context.Context, urls, names []string) []*Dropped {
	out := make([]*Dropped, len(urls))
	pending := make([]int, len(urls))
	for i := range pending {
		pending[i] = i
	}
	interval := c.cfg.PollInterval
	for len(pending) > 0 {
		if err := sleep(ctx, interval); err != nil {
			for _, i := range pending {
				out[i] = &Dropped{Name: names[i], Stage: StageCA, Code: DropValidation, Reason: "validation did not finish: " + err.Error()}
			}
			return out
		}
		interval = min(2*interval, pollMax)
		done := make([]bool, len(pending))
		c.parallel(len(pending), func(k int) {
			i := pending[k]
			a, err := c.core.Authorizations.Get(ctx, urls[i])
			if err != nil {
				if ctx.Err() != nil {
					out[i] = &Dropped{Name: names[i], Stage: StageCA, Code: DropValidation, Reason: "validation did not finish: " + err.Error()}
					done[k] = true
				}
				return
			}
			switch a.Status {
			case legoacme.StatusPending, "processing":
				return
			case legoacme.StatusValid:
				done[k] = true
				return
			}
			reason := "authorization is " + a.Status
			for _, ch := range a.Challenges {
				if ch.Error != nil {
					reason = problemText(ch.Error)
				}
			}
			out[i], done[k] = &Dropped{Name: names[i], Stage: StageCA, Code: DropValidation, Reason: reason}, true
		})
		var still []int
		for k, i := range pending {
			if !done[k] {
				still = append(still, i)
			}
		}
		pending = still
	}
	return out
}

func identifiers(o legoacme.ExtendedOrder) []string {
	var names []string
	for _, id := range o.Identifiers {
		names = append(names, id.Value)
	}
	sort.Strings(names)
	return names
}

// failedFromProblem reads the names an ACME problem blames from its
// subproblems (RFC 8555 section 6.7.1).
func failedFromProblem(err error, code string) []Dropped {
	var p *legoacme.ProblemDetails
	if !errors.As(err, &p) {
		return nil
	}
	var out []Dropped
	for _, sp := range p.SubProblems {
		if sp.Identifier.Value == "" {
			continue
		}
		out = append(out, Dropped{Name: sp.Identifier.Value, Stage: StageCA, Code: code,
			Reason: strings.TrimPrefix(sp.Type, "urn:ietf:params:acme:error:") + ": " + sp.Detail})
	}
	return out
}

// problemText is a short form of an ACME problem: "type: detail".
func problemText(err error) string {
	var p *legoacme.ProblemDetails
	if errors.As(err, &p) {
		return strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:") + ": " + p.Detail
	}
	return err.Error()
}

// parallel runs f(0..n-1) concurrently, at most 16 at a time.
func (c *Client) parallel(n int, f func(i int)) {
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RetryAfter returns how long the CA asked to wait, when err is a rate
// limit with a Retry-After.
func RetryAfter(err error) (time.Duration, bool) {
	var rl *legoacme.RateLimitedError
	if errors.As(err, &rl) && rl.RetryAfter > 0 {
		return rl.RetryAfter, true
	}
	return 0, false
}
