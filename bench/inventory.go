package main

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/certplan/certplan/bench/internal/fastdns"
	"github.com/certplan/certplan/dnscheck"
	"github.com/certplan/certplan/model"
)

// inventoryRun inventories domains with a new Resolver, as one certplan run
// would.
func (st *stages) inventoryRun(ctx context.Context, domains []string, timeout time.Duration) (*model.Inventory, time.Duration, error) {
	return st.inventoryStream(ctx, domains, invRun{timeout: timeout})
}

// invRun is how inventoryStream runs.
type invRun struct {
	server  string        // the resolver; "": the responder
	timeout time.Duration // a try's
	qps     float64       // the query rate cap (0: none)
	noCut   bool          // dnscheck.Options.NoNXDomainCut
	emit    func(dnscheck.DomainResult)
}

// inventoryStream is inventoryRun with a callback for each domain's result
// as it is emitted, another resolver, a query rate cap, or the SRV cut
// turned off.
func (st *stages) inventoryStream(ctx context.Context, domains []string, ir invRun) (*model.Inventory, time.Duration, error) {
	server := cmp.Or(ir.server, st.ch.Ready.DNS)
	r, err := dnscheck.NewResolver(dnscheck.Config{
		Servers:     []string{server},
		Timeout:     ir.timeout,
		MaxInFlight: st.cfg.Concurrency,
		QPS:         ir.qps,
	})
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	var ips []netip.Addr
	for _, ip := range mailIPs {
		ips = append(ips, netip.MustParseAddr(ip))
	}
	opts := dnscheck.Options{ServerIPs: ips, NoNXDomainCut: ir.noCut}
	c := dnscheck.NewCollector(opts)
	start := time.Now()
	before := r.Queries()
	err = r.Stream(ctx, domains, opts, func(d dnscheck.DomainResult) {
		if ir.emit != nil {
			ir.emit(d)
		}
		c.Add(d)
	})
	inv := c.Inventory()
	el := time.Since(start)
	inv.Stats.Queries = int(r.Queries() - before)
	inv.Stats.QueriesByType = r.QueriesByType()
	inv.Stats.DANEQueries = int(r.DANEQueries())
	return inv, el, err
}

// inventoryStages alternates the DNS ceiling and certplan's inventory of
// every domain, keeping the best run of each, then runs the
// dropped-queries case.
func (st *stages) inventoryStages(ctx context.Context, qs *fastdns.Queries) error {
	cfg, res, log := st.cfg, st.res, st.log
	domains := st.domains
	for rep := 0; rep < cfg.Reps; rep++ {
		if err := st.dnsCeiling(ctx, qs, rep == 0); err != nil {
			return err
		}
		if cfg.Transport {
			if err := st.transportRun(ctx, qs); err != nil {
				return err
			}
		}
		before, err := st.ch.Stats()
		if err != nil {
			return err
		}
		stop := func() {}
		if rep == 0 {
			stop = profile(cfg.CPUProfile, "inventory")
		}
		mw := watchMemory()
		cpu0, user0, csw0 := selfTimes()
		inv, el, err := st.inventoryRun(ctx, domains, 5*time.Second)
		cpu1, user1, csw1 := selfTimes()
		csw := csw1 - csw0
		cpu, user := cpu1-cpu0, user1-user0
		heap, rss := mw.Stop()
		stop()
		if err != nil {
			return err
		}
		after, err := st.ch.Stats()
		if err != nil {
			return err
		}
		ir := &InventoryResult{
			Domains:       len(inv.Domains),
			DomainsFailed: inv.Stats.DomainsFailed,
			FailedWant:    st.nxdomains,
			Names:         len(inv.Names),
			Queries:       after.DNS.Queries - before.DNS.Queries,
			LibQueries:    inv.Stats.Queries,
			DANEQueries:   int64(inv.Stats.DANEQueries),
			Elapsed:       el,
			PeakHeap:      heap,
			PeakRSS:       rss,
			ByType:        diffTypes(after.DNS.ByType, before.DNS.ByType),
			Truncated:     after.DNS.Truncated - before.DNS.Truncated,
			TCP:           after.DNS.TCP - before.DNS.TCP,
		}
		ir.QPS = float64(ir.Queries) / el.Seconds()
		ir.DomainsPerSec = float64(ir.Domains) / el.Seconds()
		ir.ClientCPUus = float64(cpu.Microseconds()) / float64(ir.Queries)
		ir.ClientUserus = float64(user.Microseconds()) / float64(ir.Queries)
		ir.ResponderCPUus = float64(after.cpuSince(before).Microseconds()) / float64(ir.Queries)
		inv = nil
		runtime.GC()
		debug.FreeOSMemory()
		log.logf("certplan inventory: %d domains in %s, %.0f q/s, %d queries, %d failed, peak rss %s, cpu/query: client %.1f µs (user %.1f), responder %.1f µs (%.1f queries a recvmmsg); context switches a query: client %.2f, responder %.2f", ir.Domains, dur(el), ir.QPS, ir.Queries, ir.DomainsFailed, mib(rss), ir.ClientCPUus, ir.ClientUserus, ir.ResponderCPUus, readBatch(before.DNS, after.DNS), float64(csw)/float64(ir.Queries), float64(after.CSW-before.CSW)/float64(ir.Queries))
		if p := res.DNS.Inventory; p == nil || ir.QPS > p.QPS {
			if p != nil {
				ir.PeakHeap, ir.PeakRSS = max(ir.PeakHeap, p.PeakHeap), max(ir.PeakRSS, p.PeakRSS)
			}
			res.DNS.Inventory = ir
		} else {
			p.PeakHeap, p.PeakRSS = max(ir.PeakHeap, p.PeakHeap), max(ir.PeakRSS, p.PeakRSS)
		}
	}
	if c := res.DNS.Ceiling.QPS; c > 0 {
		res.DNS.Inventory.Ratio = res.DNS.Inventory.QPS / c
		if t := res.DNS.Transport; t != nil {
			t.Ratio = t.QPS / c
		}
	}
	if err := st.cut(ctx); err != nil {
		return err
	}
	return st.dropped(ctx)
}

// cut inventories the first CutDomains domains with the SRV cut
// (dnscheck.Options.NoNXDomainCut false, the default) and without: the
// two inventories must be the same (names, roles, addresses, CAA
// verdicts, domains), the first in fewer questions.
func (st *stages) cut(ctx context.Context) error {
	domains := st.domains[:min(st.cfg.CutDomains, len(st.domains))]
	with, _, err := st.inventoryStream(ctx, domains, invRun{timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	without, _, err := st.inventoryStream(ctx, domains, invRun{timeout: 5 * time.Second, noCut: true})
	if err != nil {
		return err
	}
	cr := &CutResult{Domains: len(domains), Queries: with.Stats.Queries, QueriesNoCut: without.Stats.Queries,
		ByType: with.Stats.QueriesByType, ByTypeNoCut: without.Stats.QueriesByType, Diff: inventoryDiff(with, without)}
	cr.Same = cr.Diff == ""
	st.log.logf("inventory with and without the SRV cut: %d domains, %.2f and %.2f questions a domain, same finds: %v %s",
		cr.Domains, float64(cr.Queries)/float64(cr.Domains), float64(cr.QueriesNoCut)/float64(cr.Domains), cr.Same, cr.Diff)
	st.res.DNS.Cut = cr
	return nil
}

// inventoryDiff describes the first difference between two inventories'
// names and domains, or returns "".
func inventoryDiff(a, b *model.Inventory) string {
	if len(a.Names) != len(b.Names) || len(a.Domains) != len(b.Domains) {
		return fmt.Sprintf("%d and %d names, %d and %d domains", len(a.Names), len(b.Names), len(a.Domains), len(b.Domains))
	}
	for i := range a.Names {
		if !reflect.DeepEqual(a.Names[i], b.Names[i]) {
			return fmt.Sprintf("name %+v, and without the cut %+v", a.Names[i], b.Names[i])
		}
	}
	for i := range a.Domains {
		if !reflect.DeepEqual(a.Domains[i], b.Domains[i]) {
			return fmt.Sprintf("domain %+v, and without the cut %+v", a.Domains[i], b.Domains[i])
		}
	}
	return ""
}

// dropped inventories DropDomains domains of which DeadZones sit under a
// name server that never answers: they must cost about one query's tries
// in parallel.
func (st *stages) dropped(ctx context.Context) error {
	cfg, res, log := st.cfg, st.res, st.log
	live := st.domains[:cfg.DropDomains-cfg.DeadZones]
	all := append(append([]string(nil), live...), st.deadDomains...)
	_, clean, err := st.inventoryRun(ctx, live, cfg.DNSTimeout)
	if err != nil {
		return err
	}
	dead := map[string]bool{}
	for _, d := range st.deadDomains {
		dead[d] = true
	}
	start := time.Now()
	var liveBy, firstDead time.Duration
	inv, el, err := st.inventoryStream(ctx, all, invRun{timeout: cfg.DNSTimeout, emit: func(d dnscheck.DomainResult) {
		t := time.Since(start)
		if dead[d.Domain.Domain] {
			if firstDead == 0 {
				firstDead = t
			}
		} else {
			liveBy = t
		}
	}})
	if err != nil {
		return err
	}
	const tries = 3 // dnscheck's default: a try and 2 retries
	dr := &DropResult{Domains: len(all), Dead: len(st.deadDomains), Failed: inv.Stats.DomainsFailed,
		Timeout: cfg.DNSTimeout, Tries: tries, CleanTime: clean, Elapsed: el, LiveEmittedBy: liveBy, FirstDeadEmitted: firstDead}
	dr.Bound = clean*12/10 + tries*cfg.DNSTimeout + 250*time.Millisecond
	dr.InSeries = clean + time.Duration(dr.Dead*tries)*cfg.DNSTimeout
	dr.WithinBound = el <= dr.Bound
	log.logf("inventory with dropped queries: %d domains, %d silent: %s (clean %s, bound %s)", dr.Domains, dr.Dead, dur(el), dur(clean), dur(dr.Bound))
	res.DNS.Drop = dr
	return st.qpsCap(ctx)
}

// qpsCap inventories some domains with --qps set to a fraction of the
// ceiling and measures the rate actually sent.
func (st *stages) qpsCap(ctx context.Context) error {
	res, log := st.res, st.log
	// About 15,000 queries: three seconds at the cap, so the token
	// bucket's first burst does not count.
	const cap = 5000
	domains := st.domains[:min(1000, len(st.domains))]
	before, err := st.ch.Stats()
	if err != nil {
		return err
	}
	_, el, err := st.inventoryStream(ctx, domains, invRun{timeout: 5 * time.Second, qps: cap})
	if err != nil {
		return err
	}
	after, err := st.ch.Stats()
	if err != nil {
		return err
	}
	q := after.DNS.Queries - before.DNS.Queries
	qr := &QPSResult{Cap: cap, Domains: len(domains), Queries: q, Elapsed: el, QPS: float64(q) / el.Seconds()}
	qr.WithinCap = qr.QPS <= cap*1.05
	log.logf("inventory with --qps %d: %d queries in %s: %.0f q/s", cap, q, dur(el), qr.QPS)
	res.DNS.QPSCap = qr
	return nil
}
