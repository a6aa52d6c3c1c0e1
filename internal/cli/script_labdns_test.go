package cli

import (
	"github.com/certplan/certplan/internal/dnstest"
	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	scriptCmds["labdns"] = scriptLabDNS
}

// scriptLabDNS makes labenv's DNS fail queries for a name from now on, or
// answer them again, so that a script can break a domain between runs:
//
//	labdns servfail|refused|drop|none NAME
func scriptLabDNS(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: labdns servfail|refused|drop|none NAME")
	}
	faults := map[string]dnstest.Fault{
		"servfail": dnstest.FaultServfail, "refused": dnstest.FaultRefused,
		"drop": dnstest.FaultDrop, "none": dnstest.FaultNone,
	}
	f, ok := faults[args[0]]
	if !ok {
		ts.Fatalf("labdns: fault %q: want servfail, refused, drop or none", args[0])
	}
	scriptStartMu.Lock()
	l := scriptLab[ts]
	scriptStartMu.Unlock()
	if l == nil {
		ts.Fatalf("labdns: run labenv first")
	}
	l.DNS.SetFault(args[1], f)
}
