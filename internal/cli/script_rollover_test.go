package cli

import (
	"context"
	"encoding/json"
	"net"
	"os"

	"github.com/miekg/dns"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/rollover"
)

func init() {
	scriptCmds["rolloverdns"] = scriptRolloverDNS
	scriptCmds["tlsa"] = scriptTLSA
}

// scriptRolloverDNS makes labenv's DNS server the authoritative server
// that rollovers ask (ns1.main-domain.test, the lab zones' NS, moves to
// 127.0.0.1, and CERTPLAN_AUTH_PORT is its port), removes the lab's
// placeholder TLSA record of server.main-domain.test (scripts publish
// the records of the keys they issue), and starts a validating resolver's
// stand-in in front of it (dnstest.Resolver):
//
//	rolloverdns
//
// It sets VRESOLVER, for --resolver, and CERTPLAN_AUTH_PORT.
func scriptRolloverDNS(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: rolloverdns")
	}
	scriptStartMu.Lock()
	l, ok := scriptLab[ts]
	scriptStartMu.Unlock()
	if !ok {
		ts.Fatalf("rolloverdns: run labenv first")
	}
	l.DNS.Remove("ns1.main-domain.test.", dns.TypeA)
	ts.Check(l.DNS.Add("ns1.main-domain.test. 300 IN A 127.0.0.1"))
	l.DNS.Remove("_25._tcp.server.main-domain.test.", dns.TypeTLSA)
	r, err := dnstest.StartResolver(l.DNS.Addr(), true)
	ts.Check(err)
	ts.Defer(func() { r.Close() })
	_, port, _ := net.SplitHostPort(l.DNS.Addr())
	ts.Setenv("VRESOLVER", r.Addr())
	ts.Setenv("CERTPLAN_AUTH_PORT", port)
}

// scriptTLSA adds or removes, through an RFC 2136 UPDATE to labenv's DNS,
// the "3 1 1" record at _25._tcp.NAME (TTL 300) of the key whose
// spki_sha256 is in FILE (a meta.json or next.json in the state directory):
//
//	tlsa add|del NAME FILE
func scriptTLSA(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 || args[0] != "add" && args[0] != "del" {
		ts.Fatalf("usage: tlsa add|del NAME FILE")
	}
	var v struct {
		SPKI string `json:"spki_sha256"`
	}
	b, err := os.ReadFile(ts.MkAbs(args[2]))
	ts.Check(err)
	ts.Check(json.Unmarshal(b, &v))
	scriptStartMu.Lock()
	l := scriptLab[ts]
	scriptStartMu.Unlock()
	obs := &rollover.Observer{Resolver: l.DNS.Addr()}
	rs := rollover.Records([]string{args[1]}, 300, v.SPKI)
	zone, err := obs.Zone(context.Background(), rs[0].Owner())
	ts.Check(err)
	p := &rollover.Publisher{Server: l.DNS.Addr()}
	if args[0] == "add" {
		ts.Check(p.Add(context.Background(), zone, rs))
	} else {
		ts.Check(p.Remove(context.Background(), zone, rs))
	}
}
