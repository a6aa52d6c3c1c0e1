package cli

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certplan/certplan/internal/lab"
	"github.com/certplan/certplan/internal/pebbletest"
	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	scriptCmds["labenv"] = scriptLabenv
	scriptCmds["clockenv"] = scriptClockenv
	scriptCmds["waitfile"] = scriptWaitfile
}

var (
	scriptStartMu sync.Mutex
	scriptStart   = map[*testscript.TestScript]time.Time{}
	scriptPebble  = map[*testscript.TestScript]*pebbletest.CA{} // labenv's Pebble
	scriptLab     = map[*testscript.TestScript]*lab.Lab{}       // labenv's lab
)

// scriptLabenv starts the lab (DNS for the shared host and its client
// domains; SMTP, submission, SMTPS and IMAPS listeners on 127.0.0.2 and
// 127.0.0.3 that reload their certificates from files) and Pebble, whose
// validation resolves through the lab DNS, in the test process:
//
//	labenv
//
// It sets:
//
//	LAB_MAIL      the listeners' certificate dir: default-<ip>.pem,
//	              sni/<name>.pem, and "reload" to touch
//	LAB_PORTS     the --ports value for the listeners
//	ACME_DIR      Pebble's directory URL
//	ACME_ROOTS    $WORK/acme-roots.pem, for --ca-roots
//	ACME_ISSUER   $WORK/acme-issuer.pem, Pebble's issuing root (for --issuer-roots and --ca-file)
//	HTTP_LISTEN   127.0.0.2:<port Pebble validates HTTP-01 on>
//	LAB_DNS       the lab DNS server, for --resolver
//	TRUST         $WORK/trust.pem: the lab CA (today's certificates) and
//	              Pebble's issuing root, for --ca-file
func scriptLabenv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: labenv")
	}
	l, err := lab.Start(lab.Options{RandomPorts: true})
	ts.Check(err)
	ts.Defer(func() { l.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	ca, err := pebbletest.Start(ctx, pebbletest.Options{DNSAddr: l.DNS.Addr()})
	if err != nil {
		cancel()
		ts.Fatalf("pebble: %v", err)
	}
	ts.Defer(func() { cancel(); ca.Close() })
	work := ts.Getenv("WORK")
	ts.Check(os.WriteFile(filepath.Join(work, "acme-roots.pem"), ca.RootsPEM, 0o644))
	ts.Check(os.WriteFile(filepath.Join(work, "acme-issuer.pem"), ca.IssuerRootsPEM(), 0o644))
	ts.Check(os.WriteFile(filepath.Join(work, "trust.pem"), append(append([]byte{}, l.CA.CertPEM...), ca.IssuerRootsPEM()...), 0o644))
	ts.Setenv("TRUST", filepath.Join(work, "trust.pem"))
	ts.Setenv("LAB_MAIL", l.Mail.Dir)
	ts.Setenv("LAB_PORTS", l.Mail.PortsFlag())
	ts.Setenv("ACME_DIR", ca.DirectoryURL)
	ts.Setenv("ACME_ROOTS", filepath.Join(work, "acme-roots.pem"))
	ts.Setenv("ACME_ISSUER", filepath.Join(work, "acme-issuer.pem"))
	ts.Setenv("HTTP_LISTEN", lab.IP1+":"+strconv.Itoa(ca.HTTPPort))
	ts.Setenv("LAB_DNS", l.DNS.Addr())
	scriptStartMu.Lock()
	scriptStart[ts] = time.Now().UTC().Truncate(time.Second)
	scriptPebble[ts] = ca
	scriptLab[ts] = l
	scriptStartMu.Unlock()
	ts.Defer(func() {
		scriptStartMu.Lock()
		delete(scriptStart, ts)
		delete(scriptPebble, ts)
		delete(scriptLab, ts)
		scriptStartMu.Unlock()
	})
}

// scriptClockenv sets VAR to the time labenv started plus OFFSET, in RFC
// 3339, for CERTPLAN_NOW: scripts move the clock without reading it.
//
//	clockenv VAR OFFSET     (OFFSET: a Go duration, or a number of days such as 62d)
func scriptClockenv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: clockenv VAR OFFSET")
	}
	scriptStartMu.Lock()
	start, ok := scriptStart[ts]
	scriptStartMu.Unlock()
	if !ok {
		ts.Fatalf("clockenv: run labenv first")
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(args[1], "d"); ok {
		n, err := strconv.Atoi(days)
		ts.Check(err)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		d, err = time.ParseDuration(args[1])
		ts.Check(err)
	}
	ts.Setenv(args[0], start.Add(d).Format(time.RFC3339))
}

// scriptWaitfile waits up to 60 s for a file to exist:
//
//	waitfile FILE
func scriptWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfile: %s did not appear", args[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
