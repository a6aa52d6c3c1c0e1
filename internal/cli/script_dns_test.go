package cli

import (
	"strings"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	scriptCmds["dnsserver"] = cmdDNSServer
}

// cmdDNSServer starts an authoritative DNS server (internal/dnstest) on
// loopback for the rest of the script and sets $DNS to its "host:port".
//
//	dnsserver ZONEDIR [FAULT:NAME...]
//
// ZONEDIR holds BIND zone files, each file's origin its $ORIGIN or its name
// without ".db". A parent zone "test." is added when absent, so names
// outside the zones get NXDOMAIN rather than REFUSED. FAULT is servfail,
// refused, drop or truncate, for queries of NAME.
func cmdDNSServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! dnsserver")
	}
	if len(args) < 1 {
		ts.Fatalf("usage: dnsserver ZONEDIR [FAULT:NAME...]")
	}
	s := dnstest.New()
	if err := s.AddZoneDir(ts.MkAbs(args[0])); err != nil {
		ts.Fatalf("dnsserver: %v", err)
	}
	if err := s.AddZone("test.", ""); err != nil {
		ts.Fatalf("dnsserver: %v", err)
	}
	faults := map[string]dnstest.Fault{
		"servfail": dnstest.FaultServfail, "refused": dnstest.FaultRefused,
		"drop": dnstest.FaultDrop, "truncate": dnstest.FaultTruncate,
	}
	for _, a := range args[1:] {
		kind, name, ok := strings.Cut(a, ":")
		f, known := faults[kind]
		if !ok || !known {
			ts.Fatalf("dnsserver: fault %q: want servfail|refused|drop|truncate:NAME", a)
		}
		s.SetFault(name, f)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		ts.Fatalf("dnsserver: %v", err)
	}
	ts.Defer(func() { s.Close() })
	ts.Setenv("DNS", s.Addr())
}
