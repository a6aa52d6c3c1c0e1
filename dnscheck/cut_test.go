package dnscheck

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/model"
	"github.com/miekg/dns"
)

// sameFinds reports the differences between an inventory that asked every
// question (full) and one that left out those whose answer was known
// (got): the same names, roles, sources, chains, addresses and errors, the
// same domains, and the same CAA and TLSA for every name that may go on a
// certificate; the others' CAA is not looked up.
func sameFinds(t *testing.T, full, got *model.Inventory) {
	t.Helper()
	if !reflect.DeepEqual(full.Domains, got.Domains) {
		for i := range min(len(full.Domains), len(got.Domains)) {
			if !reflect.DeepEqual(full.Domains[i], got.Domains[i]) {
				t.Errorf("domain %+v\nwant %+v", got.Domains[i], full.Domains[i])
			}
		}
		t.Fatalf("domains differ (%d and %d)", len(got.Domains), len(full.Domains))
	}
	if len(full.Names) != len(got.Names) {
		t.Fatalf("%d names, want %d", len(got.Names), len(full.Names))
	}
	planned := 0
	for i := range full.Names {
		f, g := full.Names[i], got.Names[i]
		mayPlan := f.Here != model.HereNone || f.Error != "" && f.Error != model.NameErrNXDOMAIN || len(full.ServerIPs) == 0
		if !mayPlan {
			if g.CAAOK || g.CAA.Reason != CAANotLookedUp || g.TLSA != nil || g.TLSAError != "" || g.TLSADNSSEC != "" || g.PortTLSA != nil || g.CAAWildOK || g.CAAWild != nil {
				t.Errorf("%s points elsewhere: CAA %v %+v, wildcard %v %+v, TLSA %v %q %q %v; want not looked up", g.Name, g.CAAOK, g.CAA, g.CAAWildOK, g.CAAWild, g.TLSA, g.TLSAError, g.TLSADNSSEC, g.PortTLSA)
			}
			g.CAAOK, g.CAA, g.TLSA, g.TLSAError = f.CAAOK, f.CAA, f.TLSA, f.TLSAError
			g.TLSADNSSEC, g.TLSATTL, g.PortTLSA = f.TLSADNSSEC, f.TLSATTL, f.PortTLSA
			g.CAAWildOK, g.CAAWild = f.CAAWildOK, f.CAAWild
		} else {
			planned++
		}
		if !reflect.DeepEqual(f, g) {
			t.Errorf("name %+v\nwant %+v", g, f)
		}
	}
	if planned == 0 {
		t.Errorf("no name points here: the CAA verdicts were not compared")
	}
}

// TestCutsLoseNothing: on the lab's zones, the inventory's and the
// wildcard tests' zones, leaving out the questions whose answer is known
// finds the same names, roles, addresses and CAA verdicts as asking them
// all, with the cut of SRV owners under an NXDOMAIN and without it, in
// fewer questions.
func TestCutsLoseNothing(t *testing.T) {
	labS, labDomains := dnstest.StartLab(t)
	// Timeouts long enough that only drop.test's silent server times out,
	// on a busy machine and under -race too.
	cases := []struct {
		name    string
		s       *dnstest.Server
		domains []string
		timeout time.Duration
	}{
		{"lab", labS, labDomains, 5 * time.Second},
		{"inventory", invServer(t), []string{"d1.test", "chain.test", "loop.test", "nullmx.test", "caa.test", "servfail.test",
			"refused.test", "drop.test", "trunc.test", "badname.test", "dangling.test", "nonexistent.test"}, time.Second},
		{"wildcards", startServer(t, wildZones), []string{"wild.test", "other.test", "wcname.test", "wild6.test", "plain.test", "nomail.test"}, 5 * time.Second},
		{"aliases", startServer(t, entZones), []string{"plain.test", "cn.test", "cncaa.test"}, 5 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run := func(opts Options) *model.Inventory {
				r := newTestResolver(t, c.s, Config{Timeout: c.timeout})
				opts.ServerIPs = []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("::1")}
				inv, err := r.Inventory(context.Background(), c.domains, opts)
				if err != nil {
					t.Fatal(err)
				}
				return inv
			}
			full := run(Options{askAll: true})
			cut := run(Options{})
			noCut := run(Options{NoNXDomainCut: true})
			sameFinds(t, full, cut)
			sameFinds(t, full, noCut)
			if !(cut.Stats.Queries < noCut.Stats.Queries && noCut.Stats.Queries < full.Stats.Queries) {
				t.Errorf("queries: %d with the cuts, %d without the SRV cut, %d asking all; want fewer in that order",
					cut.Stats.Queries, noCut.Stats.Queries, full.Stats.Queries)
			}
			t.Logf("queries: %d with the cuts %v, %d without the SRV cut, %d asking all", cut.Stats.Queries, cut.Stats.QueriesByType, noCut.Stats.Queries, full.Stats.Queries)
		})
	}
}

const entZones = `
-- test --
-- ent.test --
@	IN MX 10 mail.ent.test.
mail	IN A 127.0.0.2
_imap._tcp	IN SRV 0 1 993 box.ent.test.
box	IN A 127.0.0.2
-- plain.test --
@	IN MX 10 mail.plain.test.
mail	IN A 127.0.0.2
smtp	IN CNAME gone.plain.test.
pop	IN TXT "no address"
-- cn.test --
@	IN MX 10 mail.cn.test.
@	IN A 127.0.0.2
mail	IN CNAME @
-- cncaa.test --
@	IN MX 10 mail.cncaa.test.
@	IN A 127.0.0.2
@	IN CAA 0 issue "letsencrypt.org"
mail	IN CNAME @
autoconfig	IN CNAME box.cncaa.test.
box	IN A 127.0.0.2
box	IN CAA 0 issue "sectigo.com"
`

// TestENTNXDOMAIN: a name server that answers NXDOMAIN for an empty
// non-terminal (_tcp.ent.test, when only _imap._tcp.ent.test has records)
// hides the SRV records below it from the cut; --no-nxdomain-cut finds
// them. A server that follows RFC 8020 hides nothing.
func TestENTNXDOMAIN(t *testing.T) {
	s := startServer(t, entZones)
	inventory := func(opts Options) *model.Inventory {
		t.Helper()
		r := newTestResolver(t, s, Config{})
		opts.ServerIPs = serverIPs
		inv, err := r.Inventory(context.Background(), []string{"ent.test", "plain.test"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	imap := func(inv *model.Inventory) bool {
		n := findName(inv, "box.ent.test")
		return n != nil && n.HasRole(model.RoleIMAP)
	}
	if inv := inventory(Options{}); !imap(inv) {
		t.Fatalf("RFC 8020 server: box.ent.test not found through _imap._tcp.ent.test")
	}
	s.SetENTNXDOMAIN(true)
	s.ResetCounts()
	if inv := inventory(Options{}); imap(inv) {
		t.Errorf("ENT-NXDOMAIN server: box.ent.test found although _tcp.ent.test answered NXDOMAIN (did the cut ask below it?)")
	}
	if n := s.QueryCount("_imap._tcp.ent.test.", dns.TypeSRV); n != 0 {
		t.Errorf("_imap._tcp.ent.test asked %d times under an NXDOMAIN parent", n)
	}
	if inv := inventory(Options{NoNXDomainCut: true}); !imap(inv) {
		t.Errorf("ENT-NXDOMAIN server with NoNXDomainCut: box.ent.test not found")
	}
}

// TestNoAAAAAfterNXDOMAIN: after an A NXDOMAIN, of the name or of the end
// of its CNAME chain, AAAA is not asked; after a NODATA (pop.plain.test
// has a TXT record only) it is. _tcp.plain.test does not exist: the SRV
// owners below it are not asked. A CNAME chain that ends in a NODATA with
// the zone's SOA (mail.cn.test's AAAA) is that NODATA: the end of the
// chain (cn.test) is not asked again.
func TestNoAAAAAfterNXDOMAIN(t *testing.T) {
	s := startServer(t, entZones)
	r := newTestResolver(t, s, Config{})
	inv, err := r.Inventory(context.Background(), []string{"plain.test", "cn.test"}, Options{ServerIPs: serverIPs})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		name  string
		qtype uint16
		want  int
	}{
		{"imap.plain.test.", dns.TypeA, 1}, {"imap.plain.test.", dns.TypeAAAA, 0},
		{"smtp.plain.test.", dns.TypeA, 1}, {"smtp.plain.test.", dns.TypeAAAA, 0}, // CNAME to a name that does not exist
		{"pop.plain.test.", dns.TypeA, 1}, {"pop.plain.test.", dns.TypeAAAA, 1}, // NODATA
		{"mail.plain.test.", dns.TypeAAAA, 1},
		{"_tcp.plain.test.", dns.TypeSRV, 1}, {"_imap._tcp.plain.test.", dns.TypeSRV, 0},
		{"mail.cn.test.", dns.TypeAAAA, 1}, {"cn.test.", dns.TypeAAAA, 0},
		// An alias's own CAA question is asked at the end of its chain,
		// the set the climb asks next: once.
		{"mail.cn.test.", dns.TypeCAA, 0}, {"cn.test.", dns.TypeCAA, 1},
	} {
		if n := s.QueryCount(q.name, q.qtype); n != q.want {
			t.Errorf("%s %s asked %d times, want %d", q.name, dns.TypeToString[q.qtype], n, q.want)
		}
	}
	// The questions by type add up to the server's count.
	byType := map[string]int{}
	for k, n := range s.QueryCounts() {
		_, typ, _ := strings.Cut(k, " ")
		if !slices.ContainsFunc(countedTypes[:], func(t uint16) bool { return dns.TypeToString[t] == typ }) {
			typ = OtherTypes // the validation probe's DNSKEY
		}
		byType[typ] += n
	}
	if !reflect.DeepEqual(inv.Stats.QueriesByType, byType) || int64(inv.Stats.Queries) != s.Queries() {
		t.Errorf("stats %d %v, server saw %d %v", inv.Stats.Queries, inv.Stats.QueriesByType, s.Queries(), byType)
	}
}

// recorder is a Querier that asks through a Resolver and records the
// questions: the inventory needs nothing of the Resolver but Ask.
type recorder struct {
	r     *Resolver
	asked atomic.Int64
}

func (q *recorder) Ask(ctx context.Context, fqdn string, qtype uint16, shared bool) (Response, error) {
	q.asked.Add(1)
	return q.r.Ask(ctx, fqdn, qtype, shared)
}

// TestInventoryThroughQuerier: the inventory through a Querier that is
// not a Resolver finds what the Resolver's finds, every question through
// that Querier.
func TestInventoryThroughQuerier(t *testing.T) {
	s := invServer(t)
	domains := []string{"d1.test", "chain.test", "loop.test", "nullmx.test", "caa.test", "dangling.test", "nonexistent.test"}
	direct, err := newTestResolver(t, s, Config{}).Inventory(context.Background(), domains, Options{ServerIPs: serverIPs})
	if err != nil {
		t.Fatal(err)
	}
	s.ResetCounts()
	q := &recorder{r: newTestResolver(t, s, Config{})}
	inv, err := Inventory(context.Background(), q, domains, Options{ServerIPs: serverIPs, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inv.Names, direct.Names) || !reflect.DeepEqual(inv.Domains, direct.Domains) {
		t.Errorf("through a Querier: %+v\nwant %+v", inv.Names, direct.Names)
	}
	if inv.Stats.Queries != 0 || q.asked.Load() == 0 || q.asked.Load() < s.Queries() {
		t.Errorf("asked %d through the Querier, the server saw %d, stats %+v", q.asked.Load(), s.Queries(), inv.Stats)
	}
}

// TestCAAAtChainEnd: the CAA verdict of an alias, asked at the end of its
// chain, names the alias and its target as asking the alias did: the
// target's set when it has one (cncaa.test's own, box.cncaa.test's),
// else the climb from the alias's parent.
func TestCAAAtChainEnd(t *testing.T) {
	s := startServer(t, entZones)
	r := newTestResolver(t, s, Config{})
	inv, err := r.Inventory(context.Background(), []string{"cncaa.test", "cn.test"}, Options{ServerIPs: serverIPs})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, at, alias string
		ok              bool
	}{
		{"mail.cncaa.test", "mail.cncaa.test", "cncaa.test", true},
		{"autoconfig.cncaa.test", "autoconfig.cncaa.test", "box.cncaa.test", false},
		{"mail.cn.test", "", "", true},
	} {
		n := findName(inv, c.name)
		if n == nil {
			t.Fatalf("%s not in the inventory", c.name)
		}
		if n.CAA.At != c.at || n.CAA.Alias != c.alias || n.CAAOK != c.ok {
			t.Errorf("%s: CAA at %q alias %q ok %v (%s), want at %q alias %q ok %v", c.name, n.CAA.At, n.CAA.Alias, n.CAAOK, n.CAA.Reason, c.at, c.alias, c.ok)
		}
	}
	for _, q := range []string{"mail.cncaa.test.", "autoconfig.cncaa.test.", "mail.cn.test."} {
		if n := s.QueryCount(q, dns.TypeCAA); n != 0 {
			t.Errorf("%s CAA asked %d times; want it asked at its chain's end", q, n)
		}
	}
}
