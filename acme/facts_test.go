package acme

import (
	"context"
	"slices"
	"testing"

	"github.com/certplan/certplan/model"
)

// TestPreflightFacts: names the inventory does not cover are looked up
// (Config.LookupNames) and added to a copy of it, so that the preflight
// checks them like the inventory's; covered names are not looked up, a
// wildcard is looked up as its parent ("*" itself never: issue 19), the
// inventory is not modified, and without an inventory the configured
// server IPs count as here.
func TestPreflightFacts(t *testing.T) {
	var asked [][]string
	c := &Client{cfg: Config{
		ServerIPs: []string{"127.0.0.2"},
		LookupNames: func(_ context.Context, names []string) []model.Name {
			asked = append(asked, names)
			out := make([]model.Name, len(names))
			for i, n := range names {
				out[i] = model.Name{Name: n, Addresses: []string{"127.0.0.77"}, Here: model.HereNone}
			}
			return out
		},
	}}
	inv := &model.Inventory{ServerIPs: []string{"127.0.0.3"}, Names: []model.Name{{Name: "a.test"}}}
	got := c.facts(context.Background(), inv, []string{"a.test", "b.test", "*.c.test", "*.a.test", "c.test"})
	if len(asked) != 1 || !slices.Equal(asked[0], []string{"b.test", "c.test"}) {
		t.Fatalf("looked up %v, want [[b.test c.test]]", asked)
	}
	if _, ok := got.NameIndex()["b.test"]; !ok || len(inv.Names) != 1 || !slices.Equal(got.ServerIPs, inv.ServerIPs) {
		t.Errorf("facts %+v from inventory %+v", got, inv)
	}
	if got := c.facts(context.Background(), inv, []string{"a.test"}); got != inv || len(asked) != 1 {
		t.Errorf("every name covered: looked up %v", asked)
	}
	got = c.facts(context.Background(), nil, []string{"b.test"})
	if got == nil || !slices.Equal(got.ServerIPs, []string{"127.0.0.2"}) || len(got.Names) != 1 {
		t.Errorf("without an inventory: %+v", got)
	}
	c.cfg.LookupNames = nil
	if got := c.facts(context.Background(), nil, []string{"b.test"}); got != nil {
		t.Errorf("without LookupNames: %+v, want the (nil) inventory", got)
	}
}
