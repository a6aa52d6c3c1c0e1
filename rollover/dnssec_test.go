package rollover

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/dnssectest"
)

// TestObserveSignedZone asks a real validating unbound in front of NSD
// serving a signed zone: the record counts through it; a resolver that
// does not validate, and a tampered signature (SERVFAIL), do not make it
// count, although NSD serves it.
func TestObserveSignedZone(t *testing.T) {
	zone := "mx IN A 127.0.0.2\n_25._tcp.mx IN TLSA 3 1 1 " + nextSPKI + "\nbad IN A 127.0.0.2\n_25._tcp.bad IN TLSA 3 1 1 " + nextSPKI + "\n"
	rig := dnssectest.Start(t, dnssectest.Config{Zones: map[string]string{"d.test.": zone}, TTL: 30,
		Broken: []string{"_25._tcp.bad.d.test. TLSA"}})
	_, p, _ := net.SplitHostPort(rig.Auth)
	port, _ := strconv.Atoi(p)
	ctx := context.Background()

	o := &Observer{Resolver: rig.Resolver, AuthPort: port, Timeout: 3 * time.Second}
	s := o.Observe(ctx, []string{"mx.d.test"}, nextSPKI)[0]
	if !s.Everywhere() || s.Zone != "d.test." || s.TTL != 30 {
		t.Fatalf("validating resolver: %+v", s)
	}
	plain := &Observer{Resolver: rig.PlainResolver, AuthPort: port, Timeout: 3 * time.Second}
	if s := plain.Observe(ctx, []string{"mx.d.test"}, nextSPKI)[0]; s.Validated || s.Everywhere() {
		t.Fatalf("plain resolver: %+v", s)
	}
	s = o.Observe(ctx, []string{"bad.d.test"}, nextSPKI)[0]
	if s.Validated || !strings.Contains(s.Resolver, "SERVFAIL") {
		t.Fatalf("broken signature: %+v", s)
	}
	if n, of := s.OnServers(); n != 1 || of != 1 {
		t.Fatalf("broken signature: NSD still serves it: on %d of %d", n, of)
	}
	pinned, _ := o.PinnedNames(ctx, []string{"mx.d.test", "bad.d.test"})
	if strings.Join(pinned, " ") != "mx.d.test bad.d.test" {
		t.Fatalf("pinned %q: a validated record pins, a bogus one pins (unknown)", pinned)
	}
}
