package dnscheck

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/model"
	"github.com/miekg/dns"
)

const invZones = `
-- test --
-- shared.test --
mx	IN A 127.0.0.2
mx	IN AAAA ::1
_25._tcp.mx	IN TLSA 3 1 1 ABCDEF0123
-- d1.test --
@	IN MX 10 mx.shared.test.
mail	IN A 127.0.0.2
smtp	IN CNAME mail
imap	IN CNAME gone.d1.test.
pop	IN TXT "not an address"
autodiscover	IN CNAME autodiscover.foreign.test.
_submission._tcp	IN SRV 0 1 587 smtp.d1.test.
_submissions._tcp	IN SRV 0 1 465 SMTP.D1.TEST.
_imaps._tcp	IN SRV 0 0 0 .
_mta-sts	IN TXT "v=STSv1; id=20261127"
_mta-sts	IN TXT "unrelated"
mta-sts	IN A 127.0.0.2
-- foreign.test --
autodiscover	IN A 127.0.0.77
-- chain.test --
@	IN MX 10 a.chain.test.
a	IN CNAME b
b	IN CNAME c.other.test.
-- other.test --
c	IN CNAME mx.shared.test.
-- loop.test --
@	IN MX 10 l1.loop.test.
l1	IN CNAME l2
l2	IN CNAME l1
-- nullmx.test --
@	IN MX 0 .
_submission._tcp	IN SRV 0 0 0 .
www	IN A 127.0.0.2
-- caa.test --
@	IN CAA 0 issue "sectigo.com"
@	IN MX 10 mail.caa.test.
mail	IN A 127.0.0.2
-- servfail.test --
@	IN MX 10 mail.servfail.test.
mail	IN A 127.0.0.2
-- refused.test --
@	IN MX 10 mail.refused.test.
-- drop.test --
@	IN MX 10 mail.drop.test.
-- trunc.test --
@	IN MX 10 mail.trunc.test.
mail	IN A 127.0.0.2
-- badname.test --
@	IN MX 10 mail.badname.test.
mail	IN A 127.0.0.2
-- dangling.test --
@	IN MX 10 nowhere.dangling.test.
`

var serverIPs = []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::1")}

func invServer(t testing.TB) *dnstest.Server {
	s := startServer(t, invZones)
	s.SetFault("servfail.test", dnstest.FaultServfail)
	s.SetFault("refused.test", dnstest.FaultRefused)
	s.SetFault("drop.test", dnstest.FaultDrop)
	s.SetFault("trunc.test", dnstest.FaultTruncate)
	s.SetFault("mail.badname.test", dnstest.FaultServfail)
	return s
}

func findName(inv *model.Inventory, name string) *model.Name {
	for i := range inv.Names {
		if inv.Names[i].Name == name {
			return &inv.Names[i]
		}
	}
	return nil
}

func findDomain(inv *model.Inventory, d string) *model.Domain {
	for i := range inv.Domains {
		if inv.Domains[i].Domain == d {
			return &inv.Domains[i]
		}
	}
	return nil
}

func TestInventory(t *testing.T) {
	s := invServer(t)
	r := newTestResolver(t, s, Config{Timeout: 500 * time.Millisecond})
	domains := []string{"d1.test", "CHAIN.test.", "loop.test", "nullmx.test", "caa.test", "servfail.test",
		"refused.test", "drop.test", "trunc.test", "badname.test", "dangling.test", "nonexistent.test", "d1.test"}
	inv, err := r.Inventory(context.Background(), domains, Options{ServerIPs: serverIPs})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Kind != model.KindInventory || inv.Version != model.Version || inv.CAIdentifier != "letsencrypt.org" {
		t.Errorf("header %+v, ca %q", inv.Header, inv.CAIdentifier)
	}
	if !reflect.DeepEqual(inv.ServerIPs, []string{"127.0.0.2", "::1"}) {
		t.Errorf("server ips %v", inv.ServerIPs)
	}

	t.Run("domains sorted and merged", func(t *testing.T) {
		var got []string
		for _, d := range inv.Domains {
			got = append(got, d.Domain)
		}
		want := []string{"badname.test", "caa.test", "chain.test", "d1.test", "dangling.test", "drop.test", "loop.test",
			"nonexistent.test", "nullmx.test", "refused.test", "servfail.test", "trunc.test"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("domains %v, want %v", got, want)
		}
		for i := 1; i < len(inv.Names); i++ {
			if inv.Names[i-1].Name >= inv.Names[i].Name {
				t.Errorf("names not sorted: %s, %s", inv.Names[i-1].Name, inv.Names[i].Name)
			}
		}
	})

	t.Run("d1: MX, SRV, conventional names, MTA-STS", func(t *testing.T) {
		d := findDomain(inv, "d1.test")
		want := []string{"autodiscover.d1.test", "mail.d1.test", "mta-sts.d1.test", "mx.shared.test", "smtp.d1.test"}
		if d.Error != "" || !reflect.DeepEqual(d.Names, want) {
			t.Fatalf("d1: error %q, names %v; want %v", d.Error, d.Names, want)
		}
		if !reflect.DeepEqual(d.NoService, []string{"_imaps._tcp.d1.test"}) {
			t.Errorf("no service %v", d.NoService)
		}
		if d.MTASTS == nil || d.MTASTS.TXT != "v=STSv1; id=20261127" || d.MTASTS.ID != "20261127" {
			t.Errorf("mta-sts %+v", d.MTASTS)
		}
		smtp := findName(inv, "smtp.d1.test")
		if !reflect.DeepEqual(smtp.Roles, []string{"smtp", "submission", "submissions"}) {
			t.Errorf("smtp roles %v", smtp.Roles)
		}
		if !reflect.DeepEqual(smtp.CNAMEChain, []string{"mail.d1.test"}) || !reflect.DeepEqual(smtp.Addresses, []string{"127.0.0.2"}) || smtp.Here != "all" {
			t.Errorf("smtp %+v", smtp)
		}
		wantSrc := []model.Source{
			{Domain: "d1.test", Role: "smtp", Record: "exists"},
			{Domain: "d1.test", Role: "submission", Record: "_submission._tcp.d1.test. SRV 0 1 587 smtp.d1.test."},
			{Domain: "d1.test", Role: "submissions", Record: "_submissions._tcp.d1.test. SRV 0 1 465 SMTP.D1.TEST."},
		}
		if !reflect.DeepEqual(smtp.Sources, wantSrc) {
			t.Errorf("smtp sources\n%+v\nwant\n%+v", smtp.Sources, wantSrc)
		}
		ad := findName(inv, "autodiscover.d1.test")
		if ad.Here != "none" || !reflect.DeepEqual(ad.Addresses, []string{"127.0.0.77"}) || !reflect.DeepEqual(ad.CNAMEChain, []string{"autodiscover.foreign.test"}) {
			t.Errorf("autodiscover %+v", ad)
		}
		mta := findName(inv, "mta-sts.d1.test")
		if !reflect.DeepEqual(mta.Roles, []string{"mta-sts"}) || mta.Sources[0].Record != `_mta-sts.d1.test. TXT "v=STSv1; id=20261127"` {
			t.Errorf("mta-sts %+v", mta)
		}
		// A dangling CNAME and a name without an address are not names clients use.
		for _, n := range []string{"imap.d1.test", "pop.d1.test", "gone.d1.test"} {
			if findName(inv, n) != nil {
				t.Errorf("%s is in the inventory", n)
			}
		}
	})

	t.Run("shared MX with TLSA and both families", func(t *testing.T) {
		mx := findName(inv, "mx.shared.test")
		if !reflect.DeepEqual(mx.Domains, []string{"d1.test"}) || !reflect.DeepEqual(mx.Roles, []string{"mx"}) {
			t.Errorf("mx domains %v roles %v", mx.Domains, mx.Roles)
		}
		if !reflect.DeepEqual(mx.Addresses, []string{"127.0.0.2", "::1"}) || mx.Here != "all" {
			t.Errorf("mx addresses %v here %s", mx.Addresses, mx.Here)
		}
		if !reflect.DeepEqual(mx.TLSA, []model.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: "abcdef0123"}}) {
			t.Errorf("mx tlsa %+v", mx.TLSA)
		}
		if !mx.CAAOK || mx.CAA.Reason != "no CAA record: any CA may issue" {
			t.Errorf("mx caa %v %+v", mx.CAAOK, mx.CAA)
		}
	})

	t.Run("CNAME chain across zones", func(t *testing.T) {
		a := findName(inv, "a.chain.test")
		want := []string{"b.chain.test", "c.other.test", "mx.shared.test"}
		if !reflect.DeepEqual(a.CNAMEChain, want) || len(a.Addresses) != 2 || a.Here != "all" || a.Error != "" {
			t.Errorf("a.chain.test %+v", a)
		}
		// TLSA of an MX alias: at the end of the chain (RFC 7672 §2.2.3).
		if len(a.TLSA) != 1 {
			t.Errorf("a.chain.test tlsa %+v", a.TLSA)
		}
	})

	t.Run("CNAME loop", func(t *testing.T) {
		d := findDomain(inv, "loop.test")
		l1 := findName(inv, "l1.loop.test")
		if !strings.Contains(l1.Error, "CNAME loop") || !strings.Contains(d.Error, "CNAME loop") {
			t.Errorf("loop: name error %q, domain error %q", l1.Error, d.Error)
		}
	})

	t.Run("null MX and SRV dot", func(t *testing.T) {
		d := findDomain(inv, "nullmx.test")
		if !d.NullMX || d.Error != "" || len(d.Names) != 0 || !reflect.DeepEqual(d.NoService, []string{"_submission._tcp.nullmx.test"}) {
			t.Errorf("nullmx %+v", d)
		}
	})

	t.Run("CAA forbids", func(t *testing.T) {
		m := findName(inv, "mail.caa.test")
		if m.CAAOK || m.CAA.At != "caa.test" || m.CAA.Reason != `CAA at caa.test allows only "sectigo.com"` ||
			!reflect.DeepEqual(m.CAA.Records, []string{`0 issue "sectigo.com"`}) {
			t.Errorf("mail.caa.test %v %+v", m.CAAOK, m.CAA)
		}
	})

	t.Run("failing domains", func(t *testing.T) {
		tests := []struct{ domain, err string }{
			{"servfail.test", "MX servfail.test: SERVFAIL from 127.0.0.1:"},
			{"refused.test", "MX refused.test: REFUSED from 127.0.0.1:"},
			{"drop.test", "MX drop.test: no answer from 127.0.0.1:"},
			{"nonexistent.test", "MX nonexistent.test: NXDOMAIN: the domain does not exist"},
			{"badname.test", "A mail.badname.test: SERVFAIL"},
		}
		for _, tt := range tests {
			d := findDomain(inv, tt.domain)
			if !strings.HasPrefix(d.Error, tt.err) {
				t.Errorf("%s: error %q, want it to start with %q", tt.domain, d.Error, tt.err)
			}
		}
		if d := findDomain(inv, "drop.test"); !strings.Contains(d.Error, "after 2 tries of 500ms: udp 127.0.0.1:") || !strings.HasSuffix(d.Error, "timeout (14 other lookups not made after the timeout)") {
			t.Errorf("drop.test: %q", d.Error)
		}
		if d := findDomain(inv, "nonexistent.test"); !strings.HasSuffix(d.Error, "the domain does not exist") || len(d.Names) != 0 {
			t.Errorf("nonexistent.test: %+v", d)
		}
		if n := findName(inv, "mail.badname.test"); !strings.HasPrefix(n.Error, "A mail.badname.test: SERVFAIL") {
			t.Errorf("mail.badname.test: %+v", n)
		}
		if inv.Stats.DomainsFailed != 6 { // the five above and loop.test
			t.Errorf("domains failed %d, want 6", inv.Stats.DomainsFailed)
		}
	})

	t.Run("a dangling MX is a finding, not a failure", func(t *testing.T) {
		d := findDomain(inv, "dangling.test")
		n := findName(inv, "nowhere.dangling.test")
		if d.Error != "" || n == nil || n.Here != "none" || len(n.Addresses) != 0 || !strings.Contains(n.Error, "NXDOMAIN") {
			t.Errorf("dangling: %+v %+v", d, n)
		}
	})

	t.Run("truncation falls back to TCP", func(t *testing.T) {
		d := findDomain(inv, "trunc.test")
		if d.Error != "" || !reflect.DeepEqual(d.Names, []string{"mail.trunc.test"}) {
			t.Errorf("trunc.test %+v", d)
		}
	})

	t.Run("stats", func(t *testing.T) {
		st := inv.Stats
		if st.Domains != 12 || st.Names != len(inv.Names) || st.Queries <= 0 || int64(st.Queries) != r.Queries() {
			t.Errorf("stats %+v, resolver queries %d", st, r.Queries())
		}
		here := 0
		for _, n := range inv.Names {
			if n.Here != "none" {
				here++
			}
		}
		if st.NamesHere != here {
			t.Errorf("names here %d, want %d", st.NamesHere, here)
		}
	})
}

// A name shared by many domains is asked once per type, and a parent
// zone's CAA once in all.
func TestSharedNameQueriedOnce(t *testing.T) {
	var zones strings.Builder
	zones.WriteString("-- test --\n-- shared.test --\nmx IN A 127.0.0.2\n")
	var domains []string
	for i := 0; i < 200; i++ {
		d := fmt.Sprintf("s%03d.test", i)
		domains = append(domains, d)
		fmt.Fprintf(&zones, "-- %s --\n@ IN MX 10 mx.shared.test.\nmail IN CNAME mx.shared.test.\n", d)
	}
	s := startServer(t, zones.String())
	r := newTestResolver(t, s, Config{MaxInFlight: 32})
	inv, err := r.Inventory(context.Background(), domains, Options{ServerIPs: serverIPs})
	if err != nil {
		t.Fatal(err)
	}
	mx := findName(inv, "mx.shared.test")
	if mx == nil || len(mx.Domains) != 200 || len(mx.Sources) != 200 {
		t.Fatalf("mx.shared.test: %+v", mx)
	}
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"mx.shared.test", dns.TypeA}, {"mx.shared.test", dns.TypeAAAA}, {"mx.shared.test", dns.TypeCAA},
		{"_25._tcp.mx.shared.test", dns.TypeTLSA}, {"shared.test", dns.TypeCAA}, {"test", dns.TypeCAA}} {
		if n := s.QueryCount(q.name, q.qtype); n != 1 {
			t.Errorf("%s %s asked %d times, want 1", q.name, dns.TypeToString[q.qtype], n)
		}
	}
	if inv.Stats.DomainsFailed != 0 || int64(inv.Stats.Queries) != s.Queries() {
		t.Errorf("stats %+v, server saw %d", inv.Stats, s.Queries())
	}
}

// Results stream: a slow domain does not hold back the others.
func TestStreamSlowDomain(t *testing.T) {
	s := invServer(t)
	s.SetDelay("caa.test", 300*time.Millisecond)
	r := newTestResolver(t, s, Config{Timeout: time.Second})
	var mu sync.Mutex
	var order []string
	err := r.Stream(context.Background(), []string{"caa.test", "d1.test", "nullmx.test"}, Options{Workers: 3}, func(res DomainResult) {
		mu.Lock()
		order = append(order, res.Domain.Domain)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != 3 || order[2] != "caa.test" {
		t.Errorf("emitted %v, want caa.test last", order)
	}
}

func TestStreamCancel(t *testing.T) {
	s := invServer(t)
	r := newTestResolver(t, s, Config{Timeout: 5 * time.Second})
	// d1.test's lookups, one after the other, take well under the
	// deadline even under -race on a loaded machine; drop.test's never end.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	n := 0
	err := r.Stream(ctx, []string{"drop.test", "d1.test"}, Options{}, func(DomainResult) { n++ })
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("err %v after %s, want the context's error at once", err, time.Since(start))
	}
	if n != 1 {
		t.Errorf("%d domains emitted, want 1 (d1.test)", n)
	}
}

func TestInventoryBadDomain(t *testing.T) {
	s := invServer(t)
	r := newTestResolver(t, s, Config{})
	_, err := r.Inventory(context.Background(), []string{"ok.test", "bad_name.test"}, Options{})
	if err == nil || !strings.Contains(err.Error(), `"bad_name.test": underscore`) {
		t.Errorf("err %v", err)
	}
	if s.Queries() != 0 {
		t.Errorf("%d queries sent for bad input", s.Queries())
	}
}

// TestSilentDomains: domains whose name server never answers cost one
// lookup's tries each, in parallel, even with fewer workers than them: the
// first lookup to time out ends the domain's others. A timeout
// on a name outside a domain (its MX host's) does not cut the domain's own
// lookups short.
func TestSilentDomains(t *testing.T) {
	const nDead = 20
	zones := "-- test --\n-- away.test --\nmx IN A 127.0.0.2\n" +
		"-- live.test --\n@ IN MX 10 mx.away.test.\nmail IN A 127.0.0.2\nsmtp IN A 127.0.0.2\n_submission._tcp IN SRV 0 1 587 mail\n"
	var domains []string
	for i := range nDead {
		d := fmt.Sprintf("dead%02d.test", i)
		domains = append(domains, d)
		zones += "-- " + d + " --\n@ IN MX 10 mail\nmail IN A 127.0.0.2\n"
	}
	s := startServer(t, zones)
	s.SetFault("mx.away.test", dnstest.FaultDrop)
	for _, d := range domains {
		s.SetFault(d, dnstest.FaultDrop)
		s.SetFault("_mta-sts."+d, dnstest.FaultDrop)
		for _, srv := range srvServices {
			s.SetFault(srv.Prefix+"."+d, dnstest.FaultDrop)
		}
		for _, c := range conventionalNames {
			s.SetFault(c.Label+"."+d, dnstest.FaultDrop)
		}
	}
	const timeout = 150 * time.Millisecond
	r := newTestResolver(t, s, Config{Timeout: timeout, Retries: 2, MaxInFlight: 32})
	start := time.Now()
	c := NewCollector(Options{ServerIPs: serverIPs})
	var lastDead time.Duration
	// 4 workers: domains waiting on presumed-lost queries do not count.
	err := r.Stream(context.Background(), append(domains, "live.test"), Options{ServerIPs: serverIPs, Workers: 4}, func(d DomainResult) {
		if d.Domain.Domain != "live.test" {
			lastDead = time.Since(start)
		}
		c.Add(d)
	})
	if err != nil {
		t.Fatal(err)
	}
	inv := c.Inventory()
	// In series: 20 domains / 4 workers × 3 tries × 150 ms.
	if lastDead > 3*timeout+500*time.Millisecond {
		t.Errorf("silent domains done after %s, want about 3 × %s", lastDead, timeout)
	}
	// live.test waits for mx.away.test's addresses, then its CAA.
	if el := time.Since(start); el > 6*timeout+1500*time.Millisecond {
		t.Errorf("took %s", el)
	}
	for _, d := range domains {
		dm := findDomain(inv, d)
		if dm == nil || !strings.Contains(dm.Error, "no answer from") || !strings.Contains(dm.Error, ": timeout (14 other lookups not made after the timeout)") {
			t.Errorf("%s: %+v", d, dm)
		}
	}
	if q := r.Queries(); q > nDead*21*3+50 {
		t.Errorf("%d queries", q)
	}
	live := findDomain(inv, "live.test")
	if live == nil || !reflect.DeepEqual(live.Names, []string{"mail.live.test", "mx.away.test", "smtp.live.test"}) {
		t.Fatalf("live.test: %+v", live)
	}
	// mx.away.test is another zone's name: its timeout is its own error,
	// not live.test's, whose own records all answered.
	if live.Error != "" {
		t.Errorf("live.test error %q, want none", live.Error)
	}
	if n := findName(inv, "mx.away.test"); n == nil || !strings.HasPrefix(n.Error, "A mx.away.test: no answer from") {
		t.Errorf("mx.away.test: %+v", n)
	}
	if n := findName(inv, "mail.live.test"); n == nil || n.Error != "" || len(n.Addresses) != 1 {
		t.Errorf("mail.live.test: %+v", n)
	}
}

// TestSkippedLookupError: a lookup not made because another one under the
// domain timed out is a timeout QueryError saying which.
func TestSkippedLookupError(t *testing.T) {
	first := &QueryError{Name: "d.test.", Type: dns.TypeMX, Rcode: -1, Err: fmt.Errorf("no answer: %w", ErrTimeout)}
	e := &QueryError{Name: "mail.d.test.", Type: dns.TypeA, Rcode: -1, Err: &silentError{first}}
	if e.Error() != "A mail.d.test: not asked: MX d.test got no answer" || !e.Timeout() {
		t.Errorf("%q timeout %v", e, e.Timeout())
	}
	if got := joinErrors([]error{e, nil, first}); got != "MX d.test: no answer: timeout (1 other lookup not made after the timeout)" {
		t.Errorf("joinErrors: %q", got)
	}
	if got := joinErrors([]error{e, first, first, e, e}); got != "MX d.test: no answer: timeout (and 1 more lookup failed; 3 other lookups not made after the timeout)" {
		t.Errorf("joinErrors: %q", got)
	}
}
