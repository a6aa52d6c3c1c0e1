package cli

import (
	"bytes"
	"context"
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/certplan/certplan/dnscheck"
	"github.com/certplan/certplan/examples/lab/zones"
	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/model"
)

// labInventory inventories the lab's zones (examples/lab) from a dnstest
// server, broken domains and all.
func labInventory(t *testing.T) *model.Inventory {
	t.Helper()
	s := dnstest.New()
	files, _ := fs.Glob(zones.FS, "*.db")
	var domains []string
	for _, f := range files {
		b, _ := fs.ReadFile(zones.FS, f)
		origin := dnstest.ZoneFileOrigin(f, string(b))
		if err := s.AddZone(origin, string(b)); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(zones.Foreign, f) {
			domains = append(domains, strings.TrimSuffix(origin, "."))
		}
	}
	s.AddZone("test.", "")
	for _, d := range zones.Broken {
		s.SetFault(d, dnstest.FaultServfail)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r, err := dnscheck.NewResolver(dnscheck.Config{Servers: []string{s.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ips := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	inv, err := r.Inventory(context.Background(), domains, dnscheck.Options{ServerIPs: ips})
	if err != nil {
		t.Fatal(err)
	}
	inv.InputErrors = []model.InputError{{File: "domains.txt", Line: 3, Message: "not a domain: <a&b>"}}
	return inv
}

// The inventory streamed to its output is byte for byte model.Marshal's
// document, for the lab and for the edge cases of the two lists.
func TestInventoryJSONStreamed(t *testing.T) {
	lab := labInventory(t)
	if len(lab.Names) < 20 || len(lab.Domains) < 40 {
		t.Fatalf("lab inventory: %d names, %d domains", len(lab.Names), len(lab.Domains))
	}
	empty := &model.Inventory{Header: lab.Header, Names: []model.Name{}, Domains: []model.Domain{}, ServerIPs: []string{}}
	oneEach := *lab
	oneEach.Names, oneEach.Domains = lab.Names[:1], lab.Domains[:1]
	for name, inv := range map[string]*model.Inventory{"lab": lab, "empty": empty, "one each": &oneEach} {
		want, err := model.Marshal(inv)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := writeInventoryJSON(&got, inv); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			i := 0
			for i < min(got.Len(), len(want)) && got.Bytes()[i] == want[i] {
				i++
			}
			t.Errorf("%s: streamed JSON differs from model.Marshal at byte %d of %d: got %q, want %q",
				name, i, len(want), got.Bytes()[max(0, i-40):min(got.Len(), i+40)], want[max(0, i-40):min(len(want), i+40)])
		}
	}
}
