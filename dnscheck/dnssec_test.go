package dnscheck

import (
	"context"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/dnssectest"
	"github.com/certplan/certplan/model"
)

// The DANE tests run against real DNSSEC: NSD serving zones signed in the
// test, behind a validating unbound whose trust anchor is the test's root
// key, and a second unbound that does not validate (internal/dnssectest).

const (
	keyHash  = "0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6"
	nextHash = "d2abde240d7cd3ee6b4b28c54df034b97983a1d16e8a410e4561cb106618e971"
)

func daneRig(t *testing.T) *dnssectest.Rig {
	t.Helper()
	return dnssectest.Start(t, dnssectest.Config{
		TTL: 60,
		Zones: map[string]string{
			// A signed MX with a key pin, and a submission name with TLSA at 587 only.
			"signed.test.": `@ MX 10 mx
mx A 127.0.0.2
_25._tcp.mx 120 TLSA 3 1 1 ` + keyHash + `
_submission._tcp SRV 0 1 587 sub
sub A 127.0.0.2
_587._tcp.sub 90 TLSA 3 1 1 ` + keyHash + `
_587._tcp.sub 90 TLSA 3 1 1 ` + nextHash + `
`,
			// Another domain with the same MX: the name's DANE fields merge.
			"shared.test.": "@ MX 10 mx.signed.test.\n",
			// Signed, no TLSA: a validated "no records".
			"nodane.test.": "@ MX 10 mx\nmx A 127.0.0.2\n",
			// Unsigned: its TLSA records count for no sender.
			"unsigned.test.": "@ MX 10 mx\nmx A 127.0.0.2\n_25._tcp.mx TLSA 3 1 1 " + keyHash + "\n",
			// Signed, with the TLSA records' signatures broken.
			"broken.test.": `@ MX 10 mx
mx A 127.0.0.2
_25._tcp.mx TLSA 3 1 1 ` + keyHash + `
_submissions._tcp SRV 0 1 465 sub
sub A 127.0.0.2
_465._tcp.sub TLSA 3 1 1 ` + keyHash + `
`,
		},
		Insecure: []string{"unsigned.test."},
		Broken:   []string{"_25._tcp.mx.broken.test. TLSA", "_465._tcp.sub.broken.test. TLSA"},
	})
}

var daneDomains = []string{"signed.test", "shared.test", "nodane.test", "unsigned.test", "broken.test"}

// daneInventory inventories daneDomains through the resolver at addr.
func daneInventory(t *testing.T, addr string) (*model.Inventory, *Resolver) {
	t.Helper()
	r, err := NewResolver(Config{Servers: []string{addr}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	inv, err := r.Inventory(context.Background(), daneDomains, Options{ServerIPs: []netip.Addr{netip.MustParseAddr("127.0.0.2")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range inv.Domains {
		if d.Error != "" {
			t.Fatalf("%s: %s", d.Domain, d.Error)
		}
	}
	return inv, r
}

type daneWant struct {
	name    string
	tlsa    int // records at _25._tcp
	status  string
	ttl     [2]uint32 // TLSATTL within [min, max]: the resolver counts it down
	failed  bool      // TLSAError set
	pin     string
	port    []model.PortTLSA // Records and TTL not compared: len(Records) in TTL's place
	portTTL [2]uint32
}

func checkDANE(t *testing.T, inv *model.Inventory, want []daneWant) {
	t.Helper()
	for _, w := range want {
		n := findName(inv, w.name)
		if n == nil {
			t.Errorf("%s: not in the inventory", w.name)
			continue
		}
		pin, reason := n.DANEPin()
		if len(n.TLSA) != w.tlsa || n.TLSADNSSEC != w.status || (n.TLSAError != "") != w.failed || pin != w.pin ||
			n.TLSATTL < w.ttl[0] || n.TLSATTL > w.ttl[1] {
			t.Errorf("%s: %d TLSA %q TTL %d error %q, pin %q (%s); want %d %q TTL in %v error %v, pin %q",
				w.name, len(n.TLSA), n.TLSADNSSEC, n.TLSATTL, n.TLSAError, pin, reason, w.tlsa, w.status, w.ttl, w.failed, w.pin)
		}
		var got []model.PortTLSA
		for _, p := range n.PortTLSA {
			if p.TTL < w.portTTL[0] || p.TTL > w.portTTL[1] {
				t.Errorf("%s port %d: TTL %d, want in %v", w.name, p.Port, p.TTL, w.portTTL)
			}
			got = append(got, model.PortTLSA{Port: p.Port, DNSSEC: p.DNSSEC, TTL: uint32(len(p.Records)), Error: errorMark(p.Error)})
		}
		if !reflect.DeepEqual(got, w.port) {
			t.Errorf("%s: port TLSA %+v, want %+v", w.name, n.PortTLSA, w.port)
		}
	}
}

// errorMark keeps whether there is an error and its rcode, for comparing.
func errorMark(s string) string {
	if s == "" {
		return ""
	}
	if strings.Contains(s, "SERVFAIL") {
		return "SERVFAIL"
	}
	return s
}

// TestDANEValidating: through a validating resolver, TLSA records of a
// signed zone are secure (and pin), with their TTL; a signed zone's
// absence of records is secure, with the SOA's TTL; an unsigned zone's
// records are insecure (they pin nothing); a broken signature is a
// SERVFAIL, a TLSAError, and a pin of unknown state. A submission name
// gets its TLSA records at 587 (none at 465: not listed), a broken one at
// 465 its error.
func TestDANEValidating(t *testing.T) {
	rig := daneRig(t)
	inv, r := daneInventory(t, rig.Resolver)
	if inv.Resolver != model.ResolverValidating {
		t.Errorf("resolver %q, want %q", inv.Resolver, model.ResolverValidating)
	}
	checkDANE(t, inv, []daneWant{
		{name: "mx.signed.test", tlsa: 1, status: model.DNSSECSecure, ttl: [2]uint32{100, 120}, pin: model.PinKey},
		{name: "sub.signed.test", status: "", pin: model.PinNone, portTTL: [2]uint32{70, 90},
			port: []model.PortTLSA{{Port: 587, DNSSEC: model.DNSSECSecure, TTL: 2}}},
		{name: "mx.nodane.test", status: model.DNSSECSecure, ttl: [2]uint32{40, 60}, pin: model.PinNone},
		{name: "mx.unsigned.test", tlsa: 1, status: model.DNSSECInsecure, ttl: [2]uint32{40, 60}, pin: model.PinNone},
		{name: "mx.broken.test", status: model.DNSSECUnknown, failed: true, pin: model.PinUnknown},
		{name: "sub.broken.test", pin: model.PinNone,
			port: []model.PortTLSA{{Port: 465, DNSSEC: model.DNSSECUnknown, Error: "SERVFAIL"}}},
	})
	// The probe and the four questions at the submission ports are DANE's;
	// the summary counts them as TLSA and other (the probe's DNSKEY).
	if got := r.DANEQueries(); got != 5 {
		t.Errorf("DANE questions %d, want 5 (the probe, 465 and 587 for two names)", got)
	}
	if inv.Stats.QueriesByType["other"] != 1 || inv.Stats.QueriesByType["TLSA"] < 4+4 {
		t.Errorf("queries by type %v: want other 1 (the probe), TLSA 8 or more", inv.Stats.QueriesByType)
	}
}

// TestDANEPlainResolver: through a resolver that does not validate, the
// inventory says so, and TLSA records are of unknown status: they pin as
// if validated (PinUnknown), even the unsigned zone's and the broken ones,
// which such a resolver hands over as they are.
func TestDANEPlainResolver(t *testing.T) {
	rig := daneRig(t)
	inv, _ := daneInventory(t, rig.PlainResolver)
	if inv.Resolver != model.ResolverNotValidating {
		t.Errorf("resolver %q, want %q", inv.Resolver, model.ResolverNotValidating)
	}
	checkDANE(t, inv, []daneWant{
		{name: "mx.signed.test", tlsa: 1, status: model.DNSSECUnknown, ttl: [2]uint32{100, 120}, pin: model.PinUnknown},
		{name: "sub.signed.test", pin: model.PinNone, portTTL: [2]uint32{70, 90},
			port: []model.PortTLSA{{Port: 587, DNSSEC: model.DNSSECUnknown, TTL: 2}}},
		{name: "mx.nodane.test", status: model.DNSSECUnknown, ttl: [2]uint32{40, 60}, pin: model.PinNone},
		{name: "mx.unsigned.test", tlsa: 1, status: model.DNSSECUnknown, ttl: [2]uint32{40, 60}, pin: model.PinUnknown},
		{name: "mx.broken.test", tlsa: 1, status: model.DNSSECUnknown, ttl: [2]uint32{40, 60}, pin: model.PinUnknown},
		{name: "sub.broken.test", pin: model.PinNone, portTTL: [2]uint32{40, 60},
			port: []model.PortTLSA{{Port: 465, DNSSEC: model.DNSSECUnknown, TTL: 1}}},
	})
}

// TestDANERollover: a next-key record published and re-signed while
// running is seen by the next inventory, validated.
func TestDANERollover(t *testing.T) {
	rig := daneRig(t)
	inv, _ := daneInventory(t, rig.Resolver)
	if n := findName(inv, "mx.nodane.test"); n == nil || len(n.TLSA) != 0 {
		t.Fatalf("before: %+v", n)
	}
	rig.Update("nodane.test.", "@ MX 10 mx\nmx A 127.0.0.2\n_25._tcp.mx TLSA 3 1 1 "+keyHash+"\n_25._tcp.mx TLSA 3 1 1 "+nextHash+"\n")
	inv, _ = daneInventory(t, rig.Resolver)
	checkDANE(t, inv, []daneWant{
		{name: "mx.nodane.test", tlsa: 2, status: model.DNSSECSecure, ttl: [2]uint32{40, 60}, pin: model.PinKey},
	})
}
