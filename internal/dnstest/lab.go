package dnstest

import (
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/certplan/certplan/examples/lab/zones"
)

// StartLab serves the lab's zones (examples/lab/zones) on 127.0.0.1, with
// the zones the lab breaks answering SERVFAIL, until t ends; it returns
// the server and the hosted domains (the lab's zones less its foreign
// ones).
func StartLab(t testing.TB) (*Server, []string) {
	t.Helper()
	s := New()
	files, _ := fs.Glob(zones.FS, "*.db")
	var domains []string
	for _, f := range files {
		b, _ := fs.ReadFile(zones.FS, f)
		origin := ZoneFileOrigin(f, string(b))
		if err := s.AddZone(origin, string(b)); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(zones.Foreign, f) {
			domains = append(domains, strings.TrimSuffix(origin, "."))
		}
	}
	s.AddZone("test.", "")
	for _, d := range zones.Broken {
		s.SetFault(d, FaultServfail)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, domains
}
