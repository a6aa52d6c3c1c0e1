package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/certplan/certplan/internal/cli"
	"github.com/certplan/certplan/internal/dnssectest"
	"github.com/certplan/certplan/internal/pebbletest"
	"github.com/certplan/certplan/internal/realmail"
)

// rolloverWorld is one DANE rollover's parts: a signed zone d.test on NSD
// behind a validating unbound (dnssectest), Pebble validating through that
// unbound, and a real Postfix on 127.0.0.2 that the example hook deploys to.
type rolloverWorld struct {
	t        *testing.T
	ctx      context.Context
	rig      *dnssectest.Rig
	ca       *pebbletest.CA
	postfix  *realmail.Postfix
	dir      string // state dir, PEM files, plan
	authPort string
	records  []string // the TLSA records at _25._tcp.mx.d.test, "3 1 1 <hex>"
}

const (
	mxName     = "mx.d.test"
	rolloverID = "default-" + serverIP
	zoneTTL    = 60 // seconds: two TTLs are 2 minutes of the injected clock
)

func newRolloverWorld(t *testing.T) *rolloverWorld {
	realmail.RequirePostfix(t)
	w := &rolloverWorld{t: t, ctx: context.Background(), dir: t.TempDir()}
	w.rig = dnssectest.Start(t, dnssectest.Config{Zones: map[string]string{"d.test.": "mx IN A " + serverIP + "\n"}, TTL: zoneTTL})
	_, w.authPort, _ = net.SplitHostPort(w.rig.Auth)
	ctx, cancel := context.WithCancel(w.ctx)
	ca, err := pebbletest.Start(ctx, pebbletest.Options{DNSAddr: w.rig.Resolver})
	if err != nil {
		cancel()
		t.Fatalf("pebble: %v", err)
	}
	t.Cleanup(func() { cancel(); ca.Close() })
	w.ca = ca
	w.write("roots.pem", ca.RootsPEM)
	w.write("issuer.pem", ca.IssuerRootsPEM())
	w.write("plan.json", []byte(`{"kind": "certplan.plan", "version": 1, "id": "p1", "certificates": [
  {"id": "`+rolloverID+`", "names": ["`+mxName+`"], "ips": ["`+serverIP+`"], "default": true, "change": "new"}]}`))
	w.startPostfix()
	return w
}

func (w *rolloverWorld) write(name string, b []byte) {
	w.t.Helper()
	if err := os.WriteFile(filepath.Join(w.dir, name), b, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// startPostfix starts Postfix with a certificate of a test CA, its
// smtpd_tls_chain_files already the file the example hook writes.
func (w *rolloverWorld) startPostfix() {
	t := w.t
	rca, err := realmail.NewCA("before certplan")
	if err != nil {
		t.Fatal(err)
	}
	old, err := rca.Issue(mxName)
	if err != nil {
		t.Fatal(err)
	}
	w.postfix = realmail.StartPostfix(t, realmail.PostfixOptions{Default: old})
	certDir := filepath.Join(w.postfix.Dir, "certplan")
	chain := filepath.Join(certDir, "default-"+serverIP+".pem")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(chain, old.CombinedPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.postfix.Postconf(w.ctx, map[string]string{"smtpd_tls_chain_files": chain}); err != nil {
		t.Fatal(err)
	}
	if err := w.postfix.Reload(w.ctx); err != nil {
		t.Fatal(err)
	}
}

// certplan runs a command at the injected time now, asking the rig's
// validating resolver and its NSD (CERTPLAN_AUTH_PORT).
func (w *rolloverWorld) certplan(now time.Time, args ...string) result {
	w.t.Helper()
	env := map[string]string{"CERTPLAN_NOW": now.UTC().Format(time.RFC3339), "CERTPLAN_AUTH_PORT": w.authPort}
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "CERTPLAN_CONFIG" {
			return ""
		}
		return os.Getenv(k)
	}
	args = append(args, "--resolver", w.rig.Resolver, "--state-dir", filepath.Join(w.dir, "state"))
	var out, errw bytes.Buffer
	code := cli.Run(w.ctx, args, strings.NewReader(""), &out, &errw, getenv)
	return result{code, out.String(), errw.String()}
}

// apply runs issue or renew with the plan, Pebble and the Postfix hook.
func (w *rolloverWorld) apply(now time.Time, cmd string, extra ...string) result {
	w.t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "examples", "hooks", "postfix.sh"))
	if err != nil {
		w.t.Fatal(err)
	}
	hook := fmt.Sprintf("POSTFIX_CONFIG_DIR=%s POSTFIX_CERT_DIR=%s bash %s", w.postfix.ConfigDir,
		filepath.Join(w.postfix.Dir, "certplan"), script)
	args := append([]string{cmd, "--plan", filepath.Join(w.dir, "plan.json"),
		"--ca", w.ca.DirectoryURL, "--ca-roots", filepath.Join(w.dir, "roots.pem"),
		"--issuer-roots", filepath.Join(w.dir, "issuer.pem"), "--ca-file", filepath.Join(w.dir, "issuer.pem"),
		"--profile", "classic", "--agree-tos", "--http-listen", serverIP + ":" + strconv.Itoa(w.ca.HTTPPort),
		"--ports", "smtp:" + strconv.Itoa(w.postfix.SMTPPort), "--deploy-hook", hook}, extra...)
	return w.certplan(now, args...)
}

// publish makes the zone's TLSA set at _25._tcp.mx exactly hexes.
func (w *rolloverWorld) publish(hexes ...string) {
	w.t.Helper()
	var b strings.Builder
	b.WriteString("mx IN A " + serverIP + "\n")
	w.records = nil
	for _, h := range hexes {
		fmt.Fprintf(&b, "_25._tcp.mx IN TLSA 3 1 1 %s\n", h)
		w.records = append(w.records, "3 1 1 "+h)
	}
	w.rig.Update("d.test.", b.String())
}

// daneCheck is what a DANE sender does (RFC 7672 section 3): the TLSA set
// at _25._tcp.mx.d.test from the validating resolver, which must be
// validated (AD), and the served leaf's SPKI SHA-256 ("3 1 1"), with and
// without SNI, which must match one of its records.
func (w *rolloverWorld) daneCheck(step string) {
	w.t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("_25._tcp."+mxName+".", dns.TypeTLSA)
	m.SetEdns0(1232, true)
	in, _, err := new(dns.Client).Exchange(m, w.rig.Resolver)
	if err != nil {
		w.t.Fatalf("%s: TLSA: %v", step, err)
	}
	if !in.AuthenticatedData || in.Rcode != dns.RcodeSuccess {
		w.t.Fatalf("%s: TLSA answer not validated: %v", step, in)
	}
	set := map[string]bool{}
	for _, rr := range in.Answer {
		if t, ok := rr.(*dns.TLSA); ok && t.Usage == 3 && t.Selector == 1 && t.MatchingType == 1 {
			set[strings.ToLower(t.Certificate)] = true
		}
	}
	for _, sni := range []string{mxName, ""} {
		leaf, err := realmail.ServedLeaf(w.ctx, serverIP, w.postfix.SMTPPort, realmail.StartSMTP, sni)
		if err != nil {
			w.t.Fatalf("%s: served leaf (SNI %q): %v", step, sni, err)
		}
		if h := spki(leaf); !set[h] {
			w.t.Fatalf("%s: DANE would fail: Postfix serves key %s (SNI %q), TLSA has %v", step, h, sni, set)
		}
	}
}

func spki(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(h[:])
}

func (w *rolloverWorld) servedKey() string {
	w.t.Helper()
	leaf, err := realmail.ServedLeaf(w.ctx, serverIP, w.postfix.SMTPPort, realmail.StartSMTP, mxName)
	if err != nil {
		w.t.Fatal(err)
	}
	return spki(leaf)
}

func mustOK(t *testing.T, what string, r result) {
	t.Helper()
	if r.code != cli.ExitOK {
		t.Fatalf("%s: %s", what, r)
	}
}

// Issue 18, item 3: a full DANE key rollover under an injected clock
// against a signed zone (NSD, validating unbound) and real Postfix, from
// begin to finish; at no step does a DANE check of the served chain
// against the published, validated records fail.
func TestDANERolloverPostfix(t *testing.T) {
	w := newRolloverWorld(t)
	t0 := time.Now().UTC().Truncate(time.Second)

	mustOK(t, "issue", w.apply(t0, "issue"))
	cur := w.servedKey()
	w.publish(cur)
	w.daneCheck("issued, current key published")

	// begin: the next key, and both records to publish.
	r := w.certplan(t0, "rollover", "begin")
	mustOK(t, "rollover begin", r)
	wantLine(t, r.stdout, `^_25\._tcp\.mx\.d\.test\. 60 IN TLSA 3 1 1 `+cur+` ; current key: keep$`)
	m := regexp.MustCompile(`(?m)^_25\._tcp\.mx\.d\.test\. 60 IN TLSA 3 1 1 ([0-9a-f]{64}) ; next key: add$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("rollover begin: no next key record:\n%s", r.stdout)
	}
	next := m[1]

	// Not published yet: a forced renewal keeps the current key.
	mustOK(t, "issue --force before publishing", w.apply(t0, "issue", "--force"))
	if w.servedKey() != cur {
		t.Fatal("a forced renewal changed the key before the next key's record was published")
	}
	w.daneCheck("forced renewal before publishing")

	// Published beside the current one: seen at t1, ready two TTLs later.
	w.publish(cur, next)
	t1 := t0.Add(time.Minute)
	r = w.certplan(t1, "rollover", "status")
	mustOK(t, "rollover status", r)
	wantLine(t, r.stdout, `^`+rolloverID+`: waiting until `+regexp.QuoteMeta(t1.Add(2*zoneTTL*time.Second).Format(time.RFC3339))+` \(two TTLs of 60s\): the next key's records are validated and on 1 of 1 authoritative servers since `)
	almost := t1.Add(2*zoneTTL*time.Second - time.Second)
	if r := w.apply(almost, "renew", "--no-jitter"); r.code != cli.ExitOK || r.stdout != "" {
		t.Fatalf("renew a second before two TTLs: %s", r)
	}
	mustOK(t, "issue --force before two TTLs", w.apply(almost, "issue", "--force"))
	if w.servedKey() != cur {
		t.Fatal("a forced renewal switched keys before two TTLs had passed")
	}
	w.daneCheck("forced renewal before two TTLs")

	// Two TTLs: renew switches by itself.
	t2 := t1.Add(2 * zoneTTL * time.Second)
	r = w.apply(t2, "renew", "--no-jitter")
	mustOK(t, "renew at two TTLs", r)
	wantLine(t, r.stdout, `^renewed `+rolloverID+` \(the staged next key's TLSA records are validated`)
	if got := w.servedKey(); got != next {
		t.Fatalf("after the switch Postfix serves key %s, want the next key %s", got, next)
	}
	w.daneCheck("switched to the next key")

	// finish: remove the old record, keep the new one.
	r = w.certplan(t2, "rollover", "finish")
	mustOK(t, "rollover finish", r)
	wantLine(t, r.stdout, `^_25\._tcp\.mx\.d\.test\. 60 IN TLSA 3 1 1 `+cur+` ; old key: remove$`)
	wantLine(t, r.stdout, `^_25\._tcp\.mx\.d\.test\. 60 IN TLSA 3 1 1 `+next+` ; current key: keep$`)
	wantLine(t, r.stdout, `still serves an old record`)
	w.publish(next)
	w.daneCheck("old record removed")
	r = w.certplan(t2, "rollover", "finish")
	mustOK(t, "rollover finish after removal", r)
	wantLine(t, r.stdout, `the rollover is over`)
	r = w.certplan(t2, "rollover", "status")
	wantLine(t, r.stdout, `^`+rolloverID+`: no rollover$`)
}
