package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/certplan/certplan/model"
)

// TestInventoryTextDANE: the text summary counts the DANE questions apart,
// and says when TLSA records were found through a resolver that does not
// validate (their status is unknown); not when it validates.
func TestInventoryTextDANE(t *testing.T) {
	inv := &model.Inventory{
		Resolver: model.ResolverNotValidating,
		Names: []model.Name{{Name: "mx.signed.test", Roles: []string{model.RoleMX}, Here: model.HereAll, CAAOK: true,
			TLSA: []model.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: "00"}}, TLSADNSSEC: model.DNSSECUnknown}},
		Stats: model.InventoryStats{Domains: 1, Names: 1, NamesHere: 1, Queries: 12,
			QueriesByType: map[string]int{"A": 8, "TLSA": 3, "other": 1}, DANEQueries: 3},
	}
	var b bytes.Buffer
	writeInventoryText(&b, inv)
	for _, want := range []string{
		"12 DNS queries (A 8, TLSA 3, other 1; 3 of them for DANE)",
		"the resolver does not validate DNSSEC (no AD bit): the TLSA records of 1 names are of unknown status",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	inv.Resolver = model.ResolverValidating
	b.Reset()
	writeInventoryText(&b, inv)
	if strings.Contains(b.String(), "does not validate") {
		t.Errorf("validating resolver, text says:\n%s", b.String())
	}
}
