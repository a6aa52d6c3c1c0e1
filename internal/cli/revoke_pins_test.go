package cli

import (
	"slices"
	"testing"

	"github.com/certplan/certplan/model"
)

// TestRevokePinnedEntries: a key pinned only at a submission port is
// staged for that owner (so that the rollover observes and prints
// _587._tcp.<name>), a port 25 pin for the name itself, and an insecure
// zone's records pin nothing.
func TestRevokePinnedEntries(t *testing.T) {
	ee := []model.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: "ab"}}
	inv := &model.Inventory{Names: []model.Name{
		{Name: "mx.d.test", TLSA: ee, TLSADNSSEC: model.DNSSECSecure},
		{Name: "plain.d.test", TLSA: ee, TLSADNSSEC: model.DNSSECInsecure},
		{Name: "smtp.d.test", TLSADNSSEC: model.DNSSECSecure, PortTLSA: []model.PortTLSA{{Port: 587, Records: ee, DNSSEC: model.DNSSECSecure}}},
	}}
	pinned, why := pinnedNames(inv, []string{"mx.d.test", "plain.d.test", "smtp.d.test"})
	if want := []string{"mx.d.test", "_587._tcp.smtp.d.test"}; !slices.Equal(pinned, want) || len(why) != len(want) {
		t.Fatalf("pinned %q (%q), want %q", pinned, why, want)
	}
}
