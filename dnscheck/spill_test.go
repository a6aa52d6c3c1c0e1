package dnscheck

import (
	"bytes"
	"context"
	"net/netip"
	"testing"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/model"
)

// A Spill gives, name for name and domain for domain, the inventory a
// Collector gives of the same results: the lab's, whose names are shared
// between domains, broken, wildcard-marked and CAA-forbidden.
func TestSpillMatchesCollector(t *testing.T) {
	s, domains := dnstest.StartLab(t)
	r := newTestResolver(t, s, Config{})
	opts := Options{ServerIPs: []netip.Addr{netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.2")}}
	c := NewCollector(opts)
	sp, err := NewSpill(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	err = r.Stream(context.Background(), domains, opts, func(res DomainResult) {
		c.Add(res)
		if err := sp.Add(res); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := c.Inventory()
	got, err := sp.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.EachName(func(n *model.Name) error { got.Names = append(got.Names, *n); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := sp.EachDomain(func(d *model.Domain) error { got.Domains = append(got.Domains, *d); return nil }); err != nil {
		t.Fatal(err)
	}
	if want.Resolver != model.ResolverNotValidating { // the lab's server sets no AD bit
		t.Errorf("resolver %q, want %q from the probe", want.Resolver, model.ResolverNotValidating)
	}
	if len(want.Names) < 20 || len(want.Domains) < 40 || want.Stats.DomainsFailed == 0 || want.Stats.NamesHere == 0 {
		t.Fatalf("lab inventory too small to tell: %+v", want.Stats)
	}
	wb, _ := model.Marshal(want)
	gb, _ := model.Marshal(got)
	if !bytes.Equal(wb, gb) {
		t.Errorf("spill's inventory differs from the Collector's:\n%s\nwant\n%s", gb, wb)
	}
}
