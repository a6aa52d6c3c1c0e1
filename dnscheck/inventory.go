package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/mtasts"
	"github.com/certplan/certplan/names"
	"github.com/miekg/dns"
)

// Options are the inputs of an inventory besides the domains.
type Options struct {
	// ServerIPs are the addresses that count as "here".
	ServerIPs []netip.Addr
	// CAIdentifier is the CAA issuer domain of the CA; "" for
	// DefaultCAIdentifier.
	CAIdentifier string
	// Workers is how many domains are looked up at once, each one query
	// at a time; default the Resolver's MaxInFlight ([DefaultWorkers] for
	// another Querier) (more workers than
	// slots would keep the slots no busier on a busy machine, and each
	// query would then also wait for a slot: a park and a wake-up more),
	// the queries under way staying bounded by MaxInFlight. A domain whose query
	// is presumed lost (see [Resolver]) does not count while it waits: up to
	// eight times Workers others start meanwhile, so silent name servers hold back no
	// one.
	Workers int
	// NoNXDomainCut asks every SRV owner under a domain even when their
	// shared parent, _tcp.<domain>, answered NXDOMAIN, and asks the
	// wildcard probe even when a sibling answered NXDOMAIN. By default an
	// NXDOMAIN means that nothing exists below the name either (RFC 8020);
	// a name server that answers NXDOMAIN for an empty non-terminal
	// (_tcp.<domain> when only _imap._tcp.<domain> has records) breaks
	// that rule, and would hide the SRV records below it.
	NoNXDomainCut bool
	// MTASTS, when set, fetches the MTA-STS policy of every domain with an
	// _mta-sts record into its MTASTS.Policy (or PolicyError), beside the
	// lookups (policies.go).
	MTASTS *PolicyFetch

	// askAll asks every question as before the cuts: AAAA after an A
	// NXDOMAIN, CAA and TLSA of names that do not point here. For tests
	// that check the cuts lose nothing.
	askAll bool
}

// srvServices are the SRV owners looked up under each domain (RFC 6186,
// RFC 8314, and Microsoft's autodiscover), with the role of their targets.
var srvServices = []struct{ Prefix, Role string }{
	{"_submission._tcp", model.RoleSubmission},
	{"_submissions._tcp", model.RoleSubmissions},
	{"_imap._tcp", model.RoleIMAP},
	{"_imaps._tcp", model.RoleIMAPS},
	{"_pop3._tcp", model.RolePOP3},
	{"_pop3s._tcp", model.RolePOP3S},
	{"_autodiscover._tcp", model.RoleAutodiscover},
}

// conventionalNames are the names under each domain that are in the
// inventory when they resolve to an address, with their roles.
var conventionalNames = []struct{ Label, Role string }{
	{"mail", model.RoleMail},
	{"smtp", model.RoleSMTP},
	{"imap", model.RoleIMAP},
	{"pop", model.RolePOP3},
	{"autoconfig", model.RoleAutoconfig},
	{"autodiscover", model.RoleAutodiscover},
}

// DomainResult is one hosted domain's inventory, emitted by
// [Resolver.Stream] as soon as the domain is done.
type DomainResult struct {
	Domain model.Domain
	// Names are the names the domain uses, sorted. Their Roles, Domains and
	// Sources cover this domain only; the rest (addresses, CAA, TLSA) is
	// the name's own. A Collector merges them across domains.
	Names []model.Name
	// Resolver is what the run learnt of the resolver's DNSSEC validation
	// ([model.Inventory.Resolver]), the same in every result of a run.
	Resolver string
}

// Inventory looks up every domain and returns the whole inventory, sorted.
// Domains are normalised first (an invalid one is an error before any
// query); failures of single domains are recorded in the inventory, not
// returned. The error is non-nil only for bad input or a cancelled ctx.
// Options.Workers defaults to the Resolver's MaxInFlight, and the summary
// counts the queries the Resolver sent meanwhile.
func (r *Resolver) Inventory(ctx context.Context, domains []string, opts Options) (*model.Inventory, error) {
	return Inventory(ctx, r, domains, r.workers(opts))
}

// Stream is [Stream] through the Resolver, Options.Workers defaulting to
// its MaxInFlight.
func (r *Resolver) Stream(ctx context.Context, domains []string, opts Options, emit func(DomainResult)) error {
	return Stream(ctx, r, domains, r.workers(opts), emit)
}

func (r *Resolver) workers(opts Options) Options {
	if opts.Workers <= 0 {
		opts.Workers = r.cfg.MaxInFlight
	}
	return opts
}

// Inventory is [Resolver.Inventory] through any Querier. When q counts its
// queries ([QueryCounter]), the summary holds how many it sent, and when
// it counts DANE's apart ([Resolver.DANEQueries]), how many of them.
func Inventory(ctx context.Context, q Querier, domains []string, opts Options) (*model.Inventory, error) {
	c := NewCollector(opts)
	qc, counts := q.(QueryCounter)
	var before, beforeDANE int64
	var beforeBy map[string]int
	if counts {
		before, beforeBy = qc.Queries(), qc.QueriesByType()
	}
	dc, countsDANE := q.(interface{ DANEQueries() int64 })
	if countsDANE {
		beforeDANE = dc.DANEQueries()
	}
	err := Stream(ctx, q, domains, opts, c.Add)
	inv := c.Inventory()
	if countsDANE {
		inv.Stats.DANEQueries = int(dc.DANEQueries() - beforeDANE)
	}
	if counts {
		inv.Stats.Queries = int(qc.Queries() - before)
		inv.Stats.QueriesByType = qc.QueriesByType()
		for t, n := range beforeBy {
			if inv.Stats.QueriesByType[t] -= n; inv.Stats.QueriesByType[t] == 0 {
				delete(inv.Stats.QueriesByType, t)
			}
		}
	}
	return inv, err
}

// Stream looks up every domain through q, Workers at a time (default
// [DefaultWorkers]), and calls emit with each domain's result as soon as
// it is complete, so a slow domain does not hold back the others. emit is
// called from one goroutine at a time. Stream returns when every domain is
// done, or with ctx's error when it is cancelled (domains not done then
// are not emitted). With Options.MTASTS, a domain with an _mta-sts
// record is emitted once its policy is fetched, and Stream returns when
// the fetches are done too (at most PolicyFetch.Grace after the lookups).
func Stream(ctx context.Context, q Querier, domains []string, opts Options, emit func(DomainResult)) error {
	list, err := normalizeAll(domains)
	if err != nil {
		return err
	}
	rn := &run{q: q, opts: opts, names: map[string]*nameCall{}}
	if rn.opts.CAIdentifier == "" {
		rn.opts.CAIdentifier = DefaultCAIdentifier
	}
	if len(list) > 0 {
		rn.validating = validates(ctx, q)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	if workers > len(list) {
		workers = len(list)
	}
	jobs := make(chan string)
	results := make(chan DomainResult, workers)
	var wg sync.WaitGroup
	pool := &lender{target: workers, max: maxLent * workers}
	wctx := withLender(ctx, pool)
	pool.start = func() {
		wg.Go(func() {
			for d := range jobs {
				res := rn.domain(wctx, d)
				if ctx.Err() != nil {
					return
				}
				results <- res
				if pool.surplus() {
					return
				}
			}
		})
	}
	pool.running = workers
	for range workers {
		pool.start()
	}
	go func() {
		defer close(jobs)
		for _, d := range list {
			select {
			case jobs <- d:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	out := emit
	var pf *policyFetcher
	if opts.MTASTS != nil {
		pf = newPolicyFetcher(ctx, *opts.MTASTS, emit)
		out = pf.add
	}
	for res := range results {
		out(res)
	}
	if pf != nil {
		pf.finish()
	}
	return ctx.Err()
}

// maxLent is how many domains, per worker, may wait on presumed-lost
// queries while others take their place.
const maxLent = 8

// DefaultWorkers is Options.Workers' default with a Querier other than a
// Resolver (whose default is its MaxInFlight).
const DefaultWorkers = 64

// lender keeps target workers looking up domains while some wait on
// presumed-lost queries.
type lender struct {
	mu      sync.Mutex
	target  int
	max     int // most workers lent at once
	running int
	lent    int
	start   func()
}

func (l *lender) lost() {
	l.mu.Lock()
	l.lent++
	more := l.running-l.lent < l.target && l.running < l.target+l.max
	if more {
		l.running++
	}
	l.mu.Unlock()
	if more {
		l.start()
	}
}

func (l *lender) found() {
	l.mu.Lock()
	l.lent--
	l.mu.Unlock()
}

// surplus reports whether a worker that finished a domain should stop
// (and counts it out).
func (l *lender) surplus() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running-l.lent > l.target {
		l.running--
		return true
	}
	return false
}

func normalizeAll(domains []string) ([]string, error) {
	seen := map[string]bool{}
	var list []string
	for _, d := range domains {
		n, err := names.Normalize(d)
		if err != nil {
			return nil, fmt.Errorf("domain %w", err)
		}
		if !seen[n] {
			seen[n] = true
			list = append(list, n)
		}
	}
	sort.Strings(list)
	return list, nil
}

// run is one inventory: its options and the names of the inventory
// already resolved.
type run struct {
	q    Querier
	opts Options
	// validating is set when the resolver validates DNSSEC (validates).
	validating bool

	mu    sync.Mutex
	names map[string]*nameCall
}

type nameCall struct {
	done chan struct{}
	info nameInfo

	caaMu   sync.Mutex
	caaDone bool
	caa     CAAResult
}

// nameInfo is what the inventory knows of a name, whoever uses it.
type nameInfo struct {
	chain []string
	addrs []netip.Addr
	err   error // the address lookup failed
	nx    bool
}

type usage struct {
	roles   []string // a few at most, without duplicates
	sources []model.Source
}

// dom is one domain's lookups. Those of names under the domain share a
// context that ends when one of them gets no answer after every try: the
// domain's name servers are silent, and its other lookups fail at once (as
// timeouts too) instead of each waiting out its own tries.
type dom struct {
	rn  *run
	d   string              // the domain, normalised
	own map[string]nameInfo // its conventional names, resolved
	// noWildcard is set when a name just under the domain answered
	// NXDOMAIN itself: a wildcard *.<domain> would have answered for it.
	noWildcard bool
	ctx        context.Context
	dctx       context.Context
	cancel     context.CancelCauseFunc
}

// silentError is the cause of a lookup not made because an earlier lookup
// under the same domain timed out.
type silentError struct{ first *QueryError }

func (e *silentError) Error() string {
	return "not asked: " + dns.TypeToString[e.first.Type] + " " + strings.TrimSuffix(e.first.Name, ".") + " got no answer"
}

func (e *silentError) Unwrap() error { return e.first }

// ctxFor returns the context for a lookup of name.
func (d *dom) ctxFor(name string) context.Context {
	if under(name, d.d) {
		return d.dctx
	}
	return d.ctx
}

// check looks at the error of a lookup made with ctx: a timeout of a name
// under the domain ends the domain's context; a lookup cut short by that becomes a
// *QueryError saying so.
func (d *dom) check(ctx context.Context, name string, qtype uint16, err error) error {
	if err == nil || ctx != d.dctx {
		return err
	}
	var qe *QueryError
	if errors.As(err, &qe) && qe.Timeout() {
		// Only a name under the domain tells of its servers: a CNAME
		// target elsewhere that times out is that target's problem.
		var se *silentError
		if !errors.As(err, &se) && under(qe.Name, d.d) {
			d.cancel(&silentError{qe})
		}
		return err
	}
	if d.ctx.Err() == nil && d.dctx.Err() != nil && isCanceled(err) {
		var se *silentError
		if errors.As(context.Cause(d.dctx), &se) {
			return &QueryError{Name: canonical(name), Type: qtype, Rcode: -1, Err: se}
		}
	}
	return err
}

// lookup looks up a name of the domain's own (only this domain asks it:
// not through the cache), with the domain's context rules.
func (d *dom) lookup(name string, qtype uint16) (Answer, error) {
	ctx := d.ctxFor(name)
	ans, err := lookup(ctx, d.rn.q, name, qtype, false)
	return ans, d.check(ctx, name, qtype, err)
}

// name resolves a name the domain uses: its own names here, others once
// per run.
func (d *dom) name(name string) nameInfo {
	if info, ok := d.own[name]; ok {
		return info
	}
	if under(name, d.d) {
		return d.resolve(name)
	}
	info := d.rn.name(d.ctx, name)
	return info
}

// caa returns a name's CAA verdict: for the domain's own names here, for
// others once per run.
func (d *dom) caa(name string) CAAResult { return d.caaOf(name, nameInfo{}) }

// caaOf is caa for a name whose addresses info holds: when they were
// found through a CNAME chain, the name's own CAA question is asked at
// its end ([caaVia]).
func (d *dom) caaOf(name string, info nameInfo) CAAResult {
	end := ""
	if info.err == nil && len(info.chain) > 0 && !d.rn.opts.askAll {
		end = info.chain[len(info.chain)-1]
	}
	if !under(name, d.d) {
		return d.rn.caa(d.ctx, name, end)
	}
	res := caaVia(d.dctx, d.rn.q, name, end, d.rn.opts.CAIdentifier, d.d)
	if res.Err != nil {
		if err := d.check(d.dctx, name, dns.TypeCAA, res.Err); err != res.Err {
			res.Err = err
			res.Reason = "CAA lookup failed: " + err.Error()
		}
	}
	return res
}

// tlsa returns the TLSA records at port of a name the domain uses.
func (d *dom) tlsa(port int, name string, chain []string) (tlsaSet, error) {
	own := under(name, d.d)
	ctx := d.ctxFor(name)
	lctx := ctx
	if port != 25 {
		lctx = withDANE(ctx)
	}
	set, err := d.rn.tlsa(lctx, port, name, chain, !own)
	return set, d.check(ctx, tlsaOwner(port, name), dns.TypeTLSA, err)
}

// ownFailure reports whether err is a failed lookup of one of the
// domain's own names (under it), or one not made because such a lookup
// timed out. Those fail the domain. A failure of a name in another zone
// (another provider's MX or SRV target, or the end of a CNAME chain that
// leaves the domain) is that name's problem: its Error says so, and the
// hosted domain, whose own records answered, is not failed for it.
func (d *dom) ownFailure(err error) bool {
	var qe *QueryError
	if errors.As(err, &qe) {
		return under(qe.Name, d.d)
	}
	return true
}

// WildcardProbeLabel starts the label of the name that the inventory asks
// for, once per domain, to detect a wildcard record: a random suffix
// follows, so that no real record can be there.
const WildcardProbeLabel = "_certplan-wc-"

// wildcardProbe is the name the wildcard probe asks under domain d:
// WildcardProbeLabel, then r as eight hex digits.
func wildcardProbe(d string, r uint32) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(WildcardProbeLabel)+8+1+len(d)+1)
	b = append(b, WildcardProbeLabel...)
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, hex[r>>shift&0xf])
	}
	b = append(b, '.')
	b = append(b, d...)
	b = append(b, '.')
	return string(b)
}

// wildcard detects a wildcard record (RFC 4592) answering for the domain's
// conventional names. It asks, once, for a name under the domain that
// cannot exist (one query, of the family the conventional names answered
// with); when that resolves, the conventional names that resolve exactly
// the same way (same CNAME chain, same addresses of that family) may exist
// only through the wildcard. It returns those names and the addresses the
// wildcard gives, sorted; nil when there is no wildcard, or when the probe
// gets no answer (that is not the domain's failure: no record is missing).
func (d *dom) wildcard() (map[string]bool, []string) {
	qtype := dns.TypeAAAA
	for _, info := range d.own {
		if info.err == nil && slices.ContainsFunc(info.addrs, netip.Addr.Is4) {
			qtype = dns.TypeA
			break
		}
	}
	probe := wildcardProbe(d.d, rand.Uint32())
	// Not through d.lookup: a timeout here is no sign that the domain's
	// servers are silent for its real names.
	ans, err := lookup(d.dctx, d.rn.q, probe, qtype, false)
	if err != nil || len(ans.Records) == 0 {
		return nil, nil
	}
	var wc nameInfo
	if qtype == dns.TypeA {
		wc = addrInfo(ans, nil, Answer{}, nil)
	} else {
		wc = addrInfo(Answer{}, nil, ans, nil)
	}
	family := func(addrs []netip.Addr) []netip.Addr {
		var out []netip.Addr
		for _, a := range addrs {
			if a.Is4() == (qtype == dns.TypeA) {
				out = append(out, a)
			}
		}
		return out
	}
	var marked map[string]bool
	for name, info := range d.own {
		if info.err != nil || !slices.Equal(info.chain, ans.Chain) || !slices.Equal(family(info.addrs), wc.addrs) {
			continue
		}
		if marked == nil {
			marked = map[string]bool{}
		}
		marked[name] = true
	}
	if marked == nil {
		return nil, nil
	}
	addrs := make([]string, len(wc.addrs))
	for i, a := range wc.addrs {
		addrs[i] = a.String()
	}
	return marked, addrs
}

// srv looks up the SRV owners under the domain ([srvServices]) and
// returns the failed lookups. _tcp.<domain>, the parent they share, is
// asked first: when it does not exist, neither does anything below it
// (RFC 8020), and the seven are not asked ([Options.NoNXDomainCut] asks
// them anyway). An NXDOMAIN at the end of a CNAME chain speaks of the
// target, not of _tcp.<domain>, and cuts nothing.
func (d *dom) srv(use func(name, role, record string), dom *model.Domain) []error {
	if d.cut() {
		// Not through d.lookup: a failure here is the children's to
		// report, as they would without the cut.
		ans, err := lookup(d.dctx, d.rn.q, "_tcp."+d.d+".", dns.TypeSRV, false)
		if err == nil && ans.NXDomain && len(ans.Chain) == 0 {
			d.noWildcard = true // *.<domain> would answer for _tcp.<domain>
			return nil
		}
	}
	var errs []error
	for _, s := range srvServices {
		owner := s.Prefix + "." + d.d + "."
		ans, err := d.lookup(owner, dns.TypeSRV)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dot := false
		for _, rr := range ans.Records {
			srv := rr.(*dns.SRV)
			if srv.Target == "." {
				dot = true // RFC 6186 §4: the service is not provided
				continue
			}
			use(names.FromDNS(srv.Target), s.Role, recordString(rr))
		}
		if dot {
			dom.NoService = append(dom.NoService, strings.TrimSuffix(owner, "."))
		}
	}
	return errs
}

// cut reports whether an NXDOMAIN below the domain is taken to mean that
// nothing exists under that name (RFC 8020).
func (d *dom) cut() bool { return !d.rn.opts.NoNXDomainCut && !d.rn.opts.askAll }

// domain looks up one hosted domain d (normalised): its lookups one after
// the other (the domains, many at once, keep the queries going).
func (rn *run) domain(ctx context.Context, d string) DomainResult {
	res := DomainResult{Domain: model.Domain{Domain: d, Unicode: names.Unicode(d), Names: []string{}}, Resolver: rn.resolverStatus()}
	dm := &dom{rn: rn, d: d, ctx: ctx}
	dm.dctx, dm.cancel = context.WithCancelCause(ctx)
	defer dm.cancel(nil)
	fq := d + "."
	uses := map[string]*usage{}
	use := func(name, role, record string) {
		u := uses[name]
		if u == nil {
			u = &usage{}
			uses[name] = u
		}
		if !slices.Contains(u.roles, role) {
			u.roles = append(u.roles, role)
		}
		u.sources = append(u.sources, model.Source{Domain: d, Role: role, Record: record})
	}
	// Errors in this fixed order, so the message is stable.
	var errs []error

	if nx, err := dm.mx(use, &res.Domain); nx {
		return res
	} else if err != nil {
		errs = append(errs, err)
	}

	errs = append(errs, dm.srv(use, &res.Domain)...)
	sort.Strings(res.Domain.NoService)

	if err := dm.mtaSTS(use, &res.Domain); err != nil {
		errs = append(errs, err)
	}

	cerrs, answered := dm.conventional(use, fq)
	errs = append(errs, cerrs...)
	if ctx.Err() != nil {
		return res
	}
	res.Domain.Error = joinErrors(errs)
	var wild map[string]bool
	if answered && !dm.noWildcard {
		wild, res.Domain.WildcardAddresses = dm.wildcard()
	}

	// The names: the domain's own resolved here, the others once per run.
	var nerrs []error
	res.Domain.Names, res.Names, nerrs = dm.names(uses, wild)
	if res.Domain.Error == "" {
		res.Domain.Error = joinErrors(nerrs)
	}
	return res
}

// mx looks up the domain's MX records and notes each target's use. nx
// reports a domain that does not exist (res's error says so): nothing else
// it says counts.
func (dm *dom) mx(use func(name, role, record string), dom *model.Domain) (nx bool, err error) {
	ans, err := dm.lookup(dm.d+".", dns.TypeMX)
	switch {
	case err != nil:
		return false, err
	case ans.NXDomain:
		dom.Error = "MX " + dm.d + ": NXDOMAIN: the domain does not exist"
		return true, nil
	}
	for _, rr := range ans.Records {
		mx := rr.(*dns.MX)
		if mx.Mx == "." {
			// RFC 7505: a null MX. A mix with other MX records is invalid;
			// the real targets still count.
			dom.NullMX = true
			continue
		}
		use(names.FromDNS(mx.Mx), model.RoleMX, recordString(rr))
	}
	return false, nil
}

// conventional resolves the conventional names under the domain (mail.,
// smtp., ...; fq ends in a dot) and notes those that exist. answered
// reports one with addresses, for the wildcard probe.
func (dm *dom) conventional(use func(name, role, record string), fq string) (errs []error, answered bool) {
	dm.own = make(map[string]nameInfo, len(conventionalNames))
	for _, c := range conventionalNames {
		// Asked as an FQDN, which the name is without its dot: no copy.
		fqn := c.Label + "." + fq
		name := fqn[:len(fqn)-1]
		info := dm.resolve(fqn)
		dm.own[name] = info
		if info.err == nil && info.nx && len(info.chain) == 0 && dm.cut() {
			dm.noWildcard = true // *.<domain> would have answered for it
		}
		if info.err != nil {
			if dm.ownFailure(info.err) {
				errs = append(errs, info.err)
				continue
			}
			// The name is there (a CNAME out of the domain) and its
			// target's lookup failed: the name's problem, listed with it.
			use(name, c.Role, "exists")
			continue
		}
		if len(info.addrs) > 0 {
			use(name, c.Role, "exists")
			answered = true
		}
	}
	return errs, answered
}

// names describes the names the domain uses (uses), sorted: its own
// resolved here, the others once per run, CAA and TLSA for those that may
// go on a certificate. It returns the names, their descriptions, and the
// failed lookups of the domain's own names.
func (d *dom) names(uses map[string]*usage, wild map[string]bool) ([]string, []model.Name, []error) {
	list := make([]string, 0, len(uses))
	for n := range uses {
		list = append(list, n)
	}
	sort.Strings(list)
	out := make([]model.Name, len(list))
	var nerrs []error
	for i, n := range list {
		u := uses[n]
		info := d.name(n)
		hereIs := here(info.addrs, d.rn.opts.ServerIPs)
		caa := notLookedUp
		planned := d.rn.mayPlan(info, hereIs)
		if planned {
			caa = d.caaOf(n, info)
		}
		nm := model.Name{
			Name:       n,
			Unicode:    names.Unicode(n),
			Domains:    []string{d.d},
			CNAMEChain: trimDots(info.chain),
			Addresses:  make([]string, 0, len(info.addrs)),
			Here:       hereIs,
			CAAOK:      caa.Allowed,
			CAA:        caa.Verdict(),
			Wildcard:   wild[n],
		}
		if planned {
			wildVerdict(&nm, caa, d.rn.opts.CAIdentifier, d.caa)
		}
		nm.Roles = u.roles
		sort.Strings(nm.Roles)
		slices.SortFunc(u.sources, cmpSource)
		nm.Sources = u.sources
		for _, a := range info.addrs {
			nm.Addresses = append(nm.Addresses, a.String())
		}
		if info.err != nil {
			nm.Error = info.err.Error()
			if d.ownFailure(info.err) {
				nerrs = append(nerrs, info.err)
			}
		} else if info.nx {
			nm.Error = model.NameErrNXDOMAIN
		}
		if planned {
			d.dane(&nm, u.roles, info.chain)
		}
		out[i] = nm
	}
	return list, out, nerrs
}

// mtaSTS looks up the domain's _mta-sts TXT record (RFC 8461 §3.1): with a
// "v=STSv1" one, the domain's MTASTS is set and mta-sts.<domain> is used.
// A record a sender would not use (two of them, a bad id) is kept with
// its TXTError: its policy is fetched all the same.
func (d *dom) mtaSTS(use func(name, role, record string), dom *model.Domain) error {
	ans, err := d.lookup("_mta-sts."+d.d+".", dns.TypeTXT)
	if err != nil {
		return err
	}
	txts := make([]string, len(ans.Records))
	for i, rr := range ans.Records {
		txts[i] = strings.Join(rr.(*dns.TXT).Txt, "")
	}
	txt, id, err := mtasts.SelectTXT(txts)
	if txt == "" {
		return nil
	}
	m := &model.MTASTS{TXT: txt, ID: id}
	if err != nil {
		m.TXTError = err.Error()
	}
	dom.MTASTS = m
	use("mta-sts."+d.d, model.RoleMTASTS, recordString(ans.Records[slices.Index(txts, txt)]))
	return nil
}

// CAANotLookedUp is the CAA verdict's reason for a name whose CAA the
// inventory did not look up, as it points to none of the server IPs: no
// certificate is planned for such a name, so its CAA and TLSA records
// are not asked. Its CAAOK is false.
const CAANotLookedUp = "not looked up: the name points to none of the server IPs"

var notLookedUp = CAAResult{CAADecision: CAADecision{Reason: CAANotLookedUp}}

// mayPlan reports whether a name with info and here may go on a
// certificate, so that its CAA and TLSA records are needed: it points
// here (all or some of its addresses), or its lookup failed (where it
// points is unknown: a plan may keep it from the previous one), or no
// server IP was given (nothing says what is here).
func (rn *run) mayPlan(info nameInfo, here string) bool {
	return here != model.HereNone || info.err != nil || len(rn.opts.ServerIPs) == 0 || rn.opts.askAll
}

// name resolves a name's addresses once per run. A resolution cut short by
// its caller's context is not kept: the next caller resolves it again.
func (rn *run) name(ctx context.Context, name string) nameInfo {
	for {
		rn.mu.Lock()
		c, ok := rn.names[name]
		if !ok {
			c = &nameCall{done: make(chan struct{})}
			rn.names[name] = c
		}
		rn.mu.Unlock()
		if ok {
			select {
			case <-c.done:
			case <-ctx.Done():
				return nameInfo{err: ctx.Err()}
			}
			if c.info.err != nil && isCanceled(c.info.err) && ctx.Err() == nil {
				continue
			}
			return c.info
		}
		// A and AAAA at once: a name many domains use, whose name server
		// may be silent, costs one lookup's tries.
		var aaaa Answer
		var errAAAA error
		done := make(chan struct{})
		go func() {
			aaaa, errAAAA = lookup(ctx, rn.q, name, dns.TypeAAAA, true)
			close(done)
		}()
		a, errA := lookup(ctx, rn.q, name, dns.TypeA, true)
		<-done
		c.info = addrInfo(a, errA, aaaa, errAAAA)
		if c.info.err != nil && ctx.Err() != nil {
			rn.mu.Lock()
			delete(rn.names, name)
			rn.mu.Unlock()
		}
		close(c.done)
		return c.info
	}
}

// resolve finds the addresses of a name under the domain: A, then AAAA.
// A name that answered NXDOMAIN does not exist for any type (RFC 1034
// §4.3.2, RFC 8020), so AAAA is not asked after an A NXDOMAIN: its answer
// would be the same. That holds at the end of a CNAME chain too, where
// the NXDOMAIN speaks of the target (RFC 6604), which AAAA would reach
// through the same chain. A NODATA (the name exists without A) or a
// failed A lookup says nothing of AAAA, which is asked.
func (d *dom) resolve(name string) nameInfo {
	return resolveName(name, !d.rn.opts.askAll, d.lookup)
}

// resolveName is resolve with lookup; cut skips AAAA after an A NXDOMAIN.
func resolveName(name string, cut bool, lookup func(string, uint16) (Answer, error)) nameInfo {
	a, errA := lookup(name, dns.TypeA)
	if errA == nil && a.NXDomain && cut {
		return addrInfo(a, nil, Answer{Chain: a.Chain, NXDomain: true}, nil)
	}
	aaaa, errAAAA := lookup(name, dns.TypeAAAA)
	return addrInfo(a, errA, aaaa, errAAAA)
}

// addrInfo is a name's nameInfo from its A and AAAA lookups.
func addrInfo(a Answer, errA error, aaaa Answer, errAAAA error) nameInfo {
	var info nameInfo
	info.err = errors.Join(errA, errAAAA)
	if errA != nil && errAAAA != nil {
		// The same cause, usually: report one, not one skipped for the other.
		info.err = errA
		var se *silentError
		if errors.As(errA, &se) {
			info.err = errAAAA
		}
	}
	info.chain = a.Chain
	if errA != nil {
		info.chain = aaaa.Chain
	}
	info.nx = a.NXDomain || aaaa.NXDomain
	n := len(a.Records) + len(aaaa.Records)
	if n == 0 {
		return info
	}
	info.addrs = make([]netip.Addr, 0, n)
	for _, rrs := range [2][]dns.RR{a.Records, aaaa.Records} {
		for _, rr := range rrs {
			var ip netip.Addr
			switch rr := rr.(type) {
			case *dns.A:
				ip, _ = netip.AddrFromSlice(rr.A.To4())
			case *dns.AAAA:
				ip, _ = netip.AddrFromSlice(rr.AAAA.To16())
			}
			if ip.IsValid() {
				info.addrs = append(info.addrs, ip.Unmap())
			}
		}
	}
	slices.SortFunc(info.addrs, netip.Addr.Compare)
	info.addrs = dedupAddrs(info.addrs)
	return info
}

// caa returns a name's CAA verdict, once per run; only names in the
// inventory need one (not every conventional name tried). A verdict cut
// short by the caller's context is not kept.
func (rn *run) caa(ctx context.Context, name, end string) CAAResult {
	rn.mu.Lock()
	c := rn.names[name]
	rn.mu.Unlock()
	if c == nil {
		return caaVia(ctx, rn.q, name, end, rn.opts.CAIdentifier, "")
	}
	c.caaMu.Lock()
	defer c.caaMu.Unlock()
	if !c.caaDone {
		c.caa = caaVia(ctx, rn.q, name, end, rn.opts.CAIdentifier, "")
		c.caaDone = c.caa.Err == nil || !isCanceled(c.caa.Err)
	}
	return c.caa
}

// tlsa returns the TLSA records at port of a name (RFC 7672 §2.2.3,
// RFC 7673 §3.2): at _<port>._tcp of the end of its CNAME chain, else of
// the name itself. Without records, the set is the last answer's.
func (rn *run) tlsa(ctx context.Context, port int, name string, chain []string, cached bool) (tlsaSet, error) {
	bases := []string{dns.Fqdn(name)}
	if len(chain) > 0 {
		bases = []string{chain[len(chain)-1], dns.Fqdn(name)}
	}
	var set tlsaSet
	for _, b := range bases {
		ans, err := lookup(ctx, rn.q, tlsaOwner(port, b), dns.TypeTLSA, cached)
		if err != nil {
			return tlsaSet{}, err
		}
		set = tlsaSet{ad: ans.AD, ttl: ans.TTL}
		if len(ans.Records) == 0 {
			continue
		}
		out := make([]model.TLSA, 0, len(ans.Records))
		for _, rr := range ans.Records {
			t := rr.(*dns.TLSA)
			out = append(out, model.TLSA{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType,
				Data: strings.ToLower(t.Certificate)})
		}
		sort.Slice(out, func(i, j int) bool {
			a, b := out[i], out[j]
			if a.Usage != b.Usage {
				return a.Usage < b.Usage
			}
			if a.Selector != b.Selector {
				return a.Selector < b.Selector
			}
			if a.MatchingType != b.MatchingType {
				return a.MatchingType < b.MatchingType
			}
			return a.Data < b.Data
		})
		set.records = out
		return set, nil
	}
	return set, nil
}

// here says whether addrs are the server's: all, some or none.
func here(addrs, server []netip.Addr) string {
	n := 0
	for _, a := range addrs {
		for _, s := range server {
			if a == s.Unmap() {
				n++
				break
			}
		}
	}
	switch {
	case n == 0:
		return model.HereNone
	case n == len(addrs):
		return model.HereAll
	default:
		return model.HereSome
	}
}

// recordString is a record in presentation format without TTL and class:
// "domain2.test. MX 10 mail.domain2.test.".
func recordString(rr dns.RR) string {
	h := rr.Header()
	// MX and SRV records, which every domain has, without rr.String()'s
	// formatting when their names need no escapes: it would print them as
	// they are.
	switch rr := rr.(type) {
	case *dns.MX:
		if plainName(h.Name) && plainName(rr.Mx) {
			return strings.ToLower(h.Name) + " MX " + strconv.Itoa(int(rr.Preference)) + " " + rr.Mx
		}
	case *dns.SRV:
		if plainName(h.Name) && plainName(rr.Target) {
			return strings.ToLower(h.Name) + " SRV " + strconv.Itoa(int(rr.Priority)) + " " +
				strconv.Itoa(int(rr.Weight)) + " " + strconv.Itoa(int(rr.Port)) + " " + rr.Target
		}
	}
	full := rr.String()
	// rr.String() is "name\tttl\tclass\ttype\trdata".
	parts := strings.SplitN(full, "\t", 5)
	if len(parts) == 5 {
		return strings.ToLower(h.Name) + " " + parts[3] + " " + parts[4]
	}
	return full
}

// plainName reports whether a name holds only letters, digits, '-', '_',
// '*' and dots: miekg/dns prints such a name as it is.
func plainName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '*') {
			return false
		}
	}
	return true
}

// cmpSource orders sources by domain, role, record.
func cmpSource(a, b model.Source) int {
	if c := strings.Compare(a.Domain, b.Domain); c != 0 {
		return c
	}
	if c := strings.Compare(a.Role, b.Role); c != 0 {
		return c
	}
	return strings.Compare(a.Record, b.Record)
}

func trimDots(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = strings.TrimSuffix(x, ".")
	}
	return out
}

func dedupAddrs(a []netip.Addr) []netip.Addr {
	out := a[:0]
	for i, x := range a {
		if i == 0 || x != a[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// joinErrors returns the first error's message, with a count of the
// others. Lookups not made because another one timed out come after the
// failures, and are counted apart.
func joinErrors(errs []error) string {
	var first error
	failed, skipped := 0, 0
	for _, e := range errs {
		if e == nil {
			continue
		}
		var se *silentError
		if errors.As(e, &se) {
			skipped++
		} else {
			failed++
		}
		if first == nil || errors.As(first, &se) && !errors.As(e, &se) {
			first = e
		}
	}
	if first == nil {
		return ""
	}
	msg := first.Error()
	if failed == 0 {
		failed, skipped = 1, skipped-1
	}
	var more []string
	switch failed {
	case 1:
	case 2:
		more = append(more, "and 1 more lookup failed")
	default:
		more = append(more, fmt.Sprintf("and %d more lookups failed", failed-1))
	}
	switch skipped {
	case 0:
	case 1:
		more = append(more, "1 other lookup not made after the timeout")
	default:
		more = append(more, fmt.Sprintf("%d other lookups not made after the timeout", skipped))
	}
	if len(more) > 0 {
		msg += " (" + strings.Join(more, "; ") + ")"
	}
	return msg
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// Collector merges DomainResults into an Inventory.
type Collector struct {
	opts     Options
	resolver string // model.Inventory.Resolver, from the results
	index    map[string]*model.Name
	// names are kept by pointer until Inventory: a slice of Names (about
	// 350 bytes each) would be copied whole every time it grows.
	names   []*model.Name
	domains []model.Domain
}

// NewCollector returns an empty Collector for an inventory run with opts.
func NewCollector(opts Options) *Collector {
	if opts.CAIdentifier == "" {
		opts.CAIdentifier = DefaultCAIdentifier
	}
	return &Collector{opts: opts, index: map[string]*model.Name{}}
}

// Add merges one domain's result.
func (c *Collector) Add(res DomainResult) {
	if c.resolver == "" {
		c.resolver = res.Resolver
	}
	c.domains = append(c.domains, res.Domain)
	for _, n := range res.Names {
		have := c.index[n.Name]
		if have == nil {
			nn := new(model.Name)
			*nn = n
			nn.Roles = slices.Clone(n.Roles)
			nn.Domains = slices.Clone(n.Domains)
			nn.Sources = slices.Clone(n.Sources)
			c.index[n.Name] = nn
			c.names = append(c.names, nn)
			continue
		}
		for _, r := range n.Roles {
			// A name has a few roles, and a shared one thousands of domains.
			if !slices.Contains(have.Roles, r) {
				have.Roles = append(have.Roles, r)
			}
		}
		have.Domains = append(have.Domains, n.Domains...)
		have.Sources = append(have.Sources, n.Sources...)
		if len(have.TLSA) == 0 && len(n.TLSA) > 0 || have.TLSADNSSEC == "" {
			// Only domains that use the name as an MX target ask its TLSA
			// records; their answers are the same.
			have.TLSA, have.TLSADNSSEC, have.TLSATTL = n.TLSA, n.TLSADNSSEC, n.TLSATTL
		}
		if have.PortTLSA == nil {
			have.PortTLSA = n.PortTLSA
		}
		if n.Error != "" && !strings.Contains(have.Error, n.Error) {
			have.Error = joinMsg(have.Error, n.Error)
		}
		if n.TLSAError != "" && !strings.Contains(have.TLSAError, n.TLSAError) {
			have.TLSAError = joinMsg(have.TLSAError, n.TLSAError)
		}
		have.Wildcard = have.Wildcard || n.Wildcard
	}
}

// Inventory returns the merged inventory, every slice sorted. Stats.Queries
// is left for the caller, who knows the Resolver. It hands over what the
// Collector holds, without a copy: the Collector is empty afterwards.
func (c *Collector) Inventory() *model.Inventory {
	inv := &model.Inventory{
		Header:       model.Header{Kind: model.KindInventory, Version: model.Version},
		CAIdentifier: strings.ToLower(c.opts.CAIdentifier),
		ServerIPs:    []string{},
		Resolver:     c.resolver,
		Names:        make([]model.Name, len(c.names)),
		Domains:      c.domains,
	}
	slices.SortFunc(c.names, func(a, b *model.Name) int { return strings.Compare(a.Name, b.Name) })
	for i, n := range c.names {
		inv.Names[i] = *n
	}
	c.names, c.domains, c.index = nil, nil, map[string]*model.Name{}
	if inv.Domains == nil {
		inv.Domains = []model.Domain{}
	}
	ips := append([]netip.Addr(nil), c.opts.ServerIPs...)
	sort.Slice(ips, func(i, j int) bool { return ips[i].Less(ips[j]) })
	for i, ip := range ips {
		if i == 0 || ip != ips[i-1] {
			inv.ServerIPs = append(inv.ServerIPs, ip.Unmap().String())
		}
	}
	for i := range inv.Names {
		n := &inv.Names[i]
		sort.Strings(n.Roles)
		n.Roles = dedupSorted(n.Roles)
		sort.Strings(n.Domains)
		n.Domains = dedupSorted(n.Domains)
		slices.SortFunc(n.Sources, cmpSource)
		if n.Here != model.HereNone {
			inv.Stats.NamesHere++
		}
	}
	sort.Slice(inv.Domains, func(i, j int) bool { return inv.Domains[i].Domain < inv.Domains[j].Domain })
	inv.Stats.Domains = len(inv.Domains)
	for _, d := range inv.Domains {
		if d.Error != "" {
			inv.Stats.DomainsFailed++
		}
	}
	inv.Stats.Names = len(inv.Names)
	return inv
}
