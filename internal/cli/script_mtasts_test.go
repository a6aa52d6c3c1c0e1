package cli

import (
	"os"
	"strconv"
	"strings"

	"github.com/certplan/certplan/internal/mailtest"
	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	scriptCmds["mtastsserver"] = cmdMTASTSServer
}

// cmdMTASTSServer starts an MTA-STS policy server (mailtest.PolicyServer:
// HTTPS with a certificate from a CA made for the script) on IP, a free
// port, for the rest of the script. It sets $MTASTS_PORT to the port and
// $MTASTS_CA to the CA's PEM file, for --mta-sts-port and --mta-sts-ca.
//
//	mtastsserver IP DOMAIN=POLICYFILE...
func cmdMTASTSServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! mtastsserver")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: mtastsserver IP DOMAIN=POLICYFILE...")
	}
	policies := map[string][]byte{}
	for _, a := range args[1:] {
		d, file, ok := strings.Cut(a, "=")
		if !ok {
			ts.Fatalf("mtastsserver: %q: want DOMAIN=POLICYFILE", a)
		}
		policies[d] = []byte(ts.ReadFile(file))
	}
	ca, err := mailtest.NewCA("certplan script MTA-STS CA")
	if err != nil {
		ts.Fatalf("mtastsserver: %v", err)
	}
	caFile := ts.MkAbs("mtasts-ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		ts.Fatalf("mtastsserver: %v", err)
	}
	s, err := mailtest.StartPolicyServer(args[0]+":0", ca, policies)
	if err != nil {
		ts.Fatalf("mtastsserver: %v", err)
	}
	ts.Defer(func() { s.Close() })
	ts.Setenv("MTASTS_PORT", strconv.Itoa(s.Port))
	ts.Setenv("MTASTS_CA", caFile)
}
