package pebbletest

import (
	"context"
	"testing"

	"github.com/certplan/certplan/internal/dnstest"
)

// TestZone is d.test as the acme and apply tests use it: mail, smtp, imap
// and late point at 127.0.0.2 (the server), away at 127.0.0.77 (another
// host).
const TestZone = `$ORIGIN d.test.
$TTL 60
@        IN SOA ns.d.test. hostmaster.d.test. 1 3600 600 86400 60
mail     IN A   127.0.0.2
smtp     IN A   127.0.0.2
imap     IN A   127.0.0.2
late     IN A   127.0.0.2
away     IN A   127.0.0.77
`

// WithDNS starts a test DNS server on 127.0.0.1 serving zone as origin
// (with records added before it starts), and Pebble validating through it
// (opts.DNSAddr is set); both stop when tb's test ends.
func WithDNS(tb testing.TB, origin, zone string, records []string, opts Options) (*dnstest.Server, *CA) {
	tb.Helper()
	d := dnstest.New()
	if err := d.AddZone(origin, zone); err != nil {
		tb.Fatal(err)
	}
	if err := d.Add(records...); err != nil {
		tb.Fatal(err)
	}
	if err := d.Start("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	opts.DNSAddr = d.Addr()
	ca, err := Start(ctx, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ca.Close() })
	return d, ca
}
