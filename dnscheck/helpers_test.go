package dnscheck

import (
	"testing"
	"time"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/rogpeppe/go-internal/txtar"
)

// startServer serves zones given as a txtar archive, one file per zone
// named by its origin, on loopback. Include a "test" zone so names outside
// the hosted zones get NXDOMAIN rather than REFUSED.
func startServer(t testing.TB, zones string) *dnstest.Server {
	t.Helper()
	s := dnstest.New()
	for _, f := range txtar.Parse([]byte(zones)).Files {
		text := "$ORIGIN " + f.Name + ".\n$TTL 300\n" + string(f.Data)
		if err := s.AddZone(f.Name, text); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newTestResolver returns a Resolver for s with short timeouts.
func newTestResolver(t testing.TB, s *dnstest.Server, cfg Config) *Resolver {
	t.Helper()
	if len(cfg.Servers) == 0 {
		cfg.Servers = []string{s.Addr()}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 200 * time.Millisecond
	}
	if cfg.Retries == 0 {
		cfg.Retries = 1
	}
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
