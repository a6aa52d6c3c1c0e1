package cli

import (
	"crypto/tls"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certplan/certplan/dane"
	"github.com/certplan/certplan/internal/mailtest"
	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	scriptCmds["mailserver"] = scriptMailserver
	scriptCmds["wantexit"] = scriptWantExit
}

// scriptWantExit runs a program like exec and checks its exit code:
//
//	wantexit CODE PROGRAM [ARGS...]
//
// stdout and stderr are kept for the next checks, as after exec.
func scriptWantExit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: wantexit CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

var (
	scriptCAMu sync.Mutex
	scriptCAs  = map[*testscript.TestScript]*mailtest.CA{}
)

// scriptCA returns the script's lab CA, written to $WORK/ca.pem on first use.
func scriptCA(ts *testscript.TestScript) *mailtest.CA {
	scriptCAMu.Lock()
	defer scriptCAMu.Unlock()
	if ca := scriptCAs[ts]; ca != nil {
		return ca
	}
	ca, err := mailtest.NewCA("certplan script CA")
	ts.Check(err)
	ts.Check(ca.WriteCertPEM(filepath.Join(ts.Getenv("WORK"), "ca.pem")))
	scriptCAs[ts] = ca
	ts.Defer(func() {
		scriptCAMu.Lock()
		delete(scriptCAs, ts)
		scriptCAMu.Unlock()
	})
	return ca
}

// scriptMailserver starts a mailtest server in the test process for the
// rest of the script:
//
//	mailserver [-mode MODE] [-banner LINE]... [-tlsa TVAR] IP[:PORT] PROTO VAR DEFAULT [SNI...]
//
// It sets $VAR to the port, and $TVAR to the data of the "3 1 1" TLSA
// record of the DEFAULT certificate (dane.Record). DEFAULT and each SNI are certificates, written
// as comma-separated names, with an optional "expired:" or "self:"
// (self-signed) prefix; the others are issued by the script's CA, whose
// certificate is $WORK/ca.pem.
func scriptMailserver(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("mailserver does not support !")
	}
	cfg := mailtest.Config{}
	tlsaVar := ""
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if len(args) < 2 {
			ts.Fatalf("mailserver: %s needs a value", args[0])
		}
		switch args[0] {
		case "-mode":
			cfg.Mode = mailtest.Mode(args[1])
		case "-banner":
			cfg.Banner = append(cfg.Banner, args[1])
		case "-tlsa":
			tlsaVar = args[1]
		default:
			ts.Fatalf("mailserver: unknown option %s", args[0])
		}
		args = args[2:]
	}
	if len(args) < 4 {
		ts.Fatalf("usage: mailserver [-mode MODE] [-banner LINE]... [-tlsa TVAR] IP[:PORT] PROTO VAR DEFAULT [SNI...]")
	}
	addr := args[0]
	if !strings.Contains(addr, ":") {
		addr += ":0"
	}
	cfg.Addr, cfg.Protocol = addr, args[1]
	ca := scriptCA(ts)
	var certs []*tls.Certificate
	for _, spec := range args[3:] {
		certs = append(certs, scriptCert(ts, ca, spec))
	}
	cfg.Certs = mailtest.NewCerts(certs[0], certs[1:]...)
	if tlsaVar != "" {
		ts.Setenv(tlsaVar, dane.Record(certs[0].Leaf, dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256).Data)
	}
	s, err := mailtest.Start(cfg)
	ts.Check(err)
	ts.Defer(func() { s.Close() })
	ts.Setenv(args[2], strconv.Itoa(s.Port()))
}

func scriptCert(ts *testscript.TestScript, ca *mailtest.CA, spec string) *tls.Certificate {
	kind, names, ok := strings.Cut(spec, ":")
	if !ok {
		kind, names = "", spec
	}
	cs := mailtest.CertSpec{Names: strings.Split(names, ",")}
	var c *tls.Certificate
	var err error
	switch kind {
	case "":
		c, err = ca.Issue(cs)
	case "expired":
		cs.NotBefore, cs.NotAfter = time.Now().AddDate(0, -3, 0), time.Now().Add(-time.Hour)
		c, err = ca.Issue(cs)
	case "self":
		c, err = mailtest.SelfSigned(cs)
	default:
		ts.Fatalf("mailserver: certificate %q: unknown kind %q", spec, kind)
	}
	ts.Check(err)
	return c
}
