package planner_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/dnscheck"
	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
)

// TestDNSFailuresEndToEnd runs the real inventory against a DNS server on
// loopback that fails some lookups, and plans against the previous plan:
// failed lookups change no certificate, and the NXDOMAIN answers the
// inventory writes are the ones the planner takes as definitive.
func TestDNSFailuresEndToEnd(t *testing.T) {
	serve := func(zone string) *dnstest.Server {
		t.Helper()
		s := dnstest.New()
		if err := s.AddZone("test", "$ORIGIN test.\n$TTL 300\n"+zone); err != nil {
			t.Fatal(err)
		}
		if err := s.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := serve(`a MX 10 mx.hoster
mail.a A 127.0.0.2
b MX 10 mx.hoster
mail.b A 127.0.0.2
smtp.b A 127.0.0.2
c MX 10 mail.c
mail.c A 127.0.0.2
mx.hoster A 127.0.0.2
`)
	opts := dnscheck.Options{ServerIPs: []netip.Addr{netip.MustParseAddr("127.0.0.2")}}
	inventory := func() *model.Inventory {
		t.Helper()
		r, err := dnscheck.NewResolver(dnscheck.Config{Servers: []string{s.Addr()}, Timeout: 500 * time.Millisecond, Retries: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close() // a fresh resolver: no answers cached from the last run
		inv, err := r.Inventory(context.Background(), []string{"a.test", "b.test", "c.test"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	pol := planner.Policy{MaxNames: 3}
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	plan := func(inv *model.Inventory, prev *model.Plan) *model.Plan {
		t.Helper()
		p, err := planner.Plan(inv, nil, pol, prev, now)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	prev := plan(inventory(), nil)
	all := []string{"mail.a.test", "mail.b.test", "mail.c.test", "mx.hoster.test", "smtp.b.test"}
	if got := plannedNames(prev); !slices.Equal(got, all) {
		t.Fatalf("first plan: %v, want %v", got, all)
	}

	// b.test's MX lookup and its mail.b.test fail (mail.b.test drops out
	// of the inventory, and CAA lookups climbing through b.test fail);
	// mail.c.test's address lookup fails.
	s.SetFault("b.test.", dnstest.FaultServfail)
	s.SetFault("mail.b.test.", dnstest.FaultServfail)
	s.SetFault("mail.c.test.", dnstest.FaultServfail)
	inv := inventory()
	if slices.ContainsFunc(inv.Names, func(n model.Name) bool { return n.Name == "mail.b.test" }) {
		t.Fatal("mail.b.test is in the inventory: the fault did not hide it")
	}
	p := plan(inv, prev)
	for _, c := range p.Certificates {
		if c.Change != "unchanged" {
			t.Errorf("%s %s: added %v, removed %v", c.ID, c.Change, c.Added, c.Removed)
		}
	}
	var kept []string
	for _, w := range p.Warnings {
		if w.Code == model.WarnKeptLookupFailed {
			kept = append(kept, w.Name)
		}
	}
	for _, n := range []string{"mail.b.test", "mail.c.test", "smtp.b.test"} {
		if !slices.Contains(kept, n) {
			t.Errorf("%s not kept (kept %v; warnings %+v)", n, kept, p.Warnings)
		}
	}
	if p.ID != prev.ID || len(p.Excluded) != 0 {
		t.Errorf("plan ID %s, want %s; excluded %+v", p.ID, prev.ID, p.Excluded)
	}

	// DNS answers again, and definitively: mail.c.test and the domain
	// a.test no longer exist, and b.test has no mail.b.test.
	s = serve(`b MX 10 mx.hoster
smtp.b A 127.0.0.2
c MX 10 mail.c
mx.hoster A 127.0.0.2
`)
	inv = inventory()
	if i := slices.IndexFunc(inv.Names, func(n model.Name) bool { return n.Name == "mail.c.test" }); i < 0 || !strings.Contains(inv.Names[i].Error, model.NameErrNXDOMAIN) {
		t.Errorf("mail.c.test: want a name whose error has %q; inventory names %+v", model.NameErrNXDOMAIN, inv.Names)
	}
	if i := slices.IndexFunc(inv.Domains, func(d model.Domain) bool { return d.Domain == "a.test" }); i < 0 || !strings.Contains(inv.Domains[i].Error, model.DomainErrNXDOMAIN) {
		t.Errorf("a.test: want a domain whose error has %q; domains %+v", model.DomainErrNXDOMAIN, inv.Domains)
	}
	p = plan(inv, p)
	if got, want := plannedNames(p), []string{"mx.hoster.test", "smtp.b.test"}; !slices.Equal(got, want) {
		t.Errorf("after NXDOMAIN: planned %v, want %v (warnings %+v)", got, want, p.Warnings)
	}
}

// plannedNames lists the names on p's certificates, sorted, each once.
func plannedNames(p *model.Plan) []string {
	var ns []string
	for _, c := range p.Certificates {
		ns = append(ns, c.Names...)
	}
	slices.Sort(ns)
	return slices.Compact(ns)
}
