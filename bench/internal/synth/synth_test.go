package synth

import (
	"reflect"
	"testing"

	"github.com/miekg/dns"
)

func TestDeterministic(t *testing.T) {
	a := Generate(Config{Domains: 2000, DeadDomains: 10, Seed: 7})
	b := Generate(Config{Domains: 2000, DeadDomains: 10, Seed: 7})
	if !reflect.DeepEqual(a.Domains, b.Domains) || !reflect.DeepEqual(a.Counts, b.Counts) {
		t.Fatal("same seed gave different worlds")
	}
	if !reflect.DeepEqual(a.Questions(a.Domains), b.Questions(b.Domains)) {
		t.Fatal("same seed gave different questions")
	}
	c := Generate(Config{Domains: 2000, Seed: 8})
	if reflect.DeepEqual(a.Counts, c.Counts) {
		t.Fatal("different seeds gave the same world")
	}
}

func TestProportions(t *testing.T) {
	w := Generate(Config{Domains: 20000, Seed: 1})
	n := float64(len(w.Domains))
	for _, tt := range []struct {
		key      string
		min, max float64
	}{
		{"mx_shared", 0.65, 0.80},
		{"mx_own", 0.17, 0.23},
		{"null_mx", 0.02, 0.04},
		{"nxdomain", 0.01, 0.03},
		{"srv", 0.09, 0.15},
		{"mta_sts", 0.03, 0.07},
		{"caa_large", 0.0005, 0.01},
	} {
		got := float64(w.Counts[tt.key]) / n
		if got < tt.min || got > tt.max {
			t.Errorf("%s: got %.4f of domains, want %.4f..%.4f", tt.key, got, tt.min, tt.max)
		}
	}
	// A few shared hosts serve most domains.
	per := map[string]int{}
	for _, rrs := range w.RRs {
		for _, rr := range rrs {
			if mx, ok := rr.(*dns.MX); ok {
				per[mx.Mx]++
			}
		}
	}
	if len(per) < 1000 {
		t.Errorf("got %d distinct MX hosts, want own mail hosts plus shared ones", len(per))
	}
}

func TestLookup(t *testing.T) {
	w := Generate(Config{Domains: 3000, DeadDomains: 2, Seed: 3})
	var cnameOwner string
	for o, rrs := range w.RRs {
		if _, ok := rrs[0].(*dns.CNAME); ok && rrs[0].(*dns.CNAME).Target != "autodiscover.foreign.test." {
			cnameOwner = o
			break
		}
	}
	if cnameOwner == "" {
		t.Fatal("no CNAME in the world")
	}
	ans, rc := w.Lookup(cnameOwner, dns.TypeA)
	if rc != dns.RcodeSuccess || len(ans) != 2 || ans[0].Header().Rrtype != dns.TypeCNAME || ans[1].Header().Rrtype != dns.TypeA {
		t.Errorf("Lookup(%s, A) = %v %d, want CNAME then A", cnameOwner, ans, rc)
	}
	if _, rc := w.Lookup("nope."+w.Domains[0], dns.TypeA); rc != dns.RcodeNameError {
		t.Errorf("missing name: rcode %d, want NXDOMAIN", rc)
	}
	if _, rc := w.Lookup("_tcp."+w.Domains[0], dns.TypeA); rc != dns.RcodeSuccess && w.Exists("_tcp."+w.Domains[0]) {
		t.Errorf("empty non-terminal: rcode %d, want NOERROR", rc)
	}
	if _, rc := w.Lookup("mail."+w.DeadDomains[0], dns.TypeA); rc != Dropped {
		t.Errorf("dead zone: rcode %d, want Dropped", rc)
	}
	if _, rc := w.Lookup("example.org", dns.TypeA); rc != dns.RcodeRefused {
		t.Errorf("outside the world: rcode %d, want REFUSED", rc)
	}
	// The inventory's questions (issue 20: at most 15 a domain, DANE's
	// added ones apart).
	qs := w.Questions(w.Domains)
	dane := 0
	for _, q := range qs {
		if IsDANE(q) {
			dane++
		}
	}
	if per := float64(len(qs)-dane) / float64(len(w.Domains)); per < 10 || per > 15 {
		t.Errorf("%.1f questions per domain, want 10..15", per)
	}
	if dane == 0 {
		t.Error("no DANE question: the probe and the submission ports' TLSA are missing")
	}
}
