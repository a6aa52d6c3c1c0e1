package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/cli"
	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/internal/pebbletest"
	"github.com/certplan/certplan/internal/realmail"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// Issue 19, "Done when": a host with 300 client domains on one IP. The
// default certificate, which clients without SNI get, holds at most 100
// names: planned without wildcards it covers at most 16 domains whole (six
// names each); planned with --wildcards auto ("*.dN.test" for the six
// names each domain's clients dial, one SAN) it covers at least 95 beside
// the server's own name. That plan is issued from Pebble with the
// wildcards through DNS-01 (RFC 2136 updates to the test DNS server, which
// Pebble validates through) and the server's name through HTTP-01,
// deployed to a real Postfix by examples/hooks/postfix.sh, and `openssl
// s_client -noservername -verify_hostname NAME` verifies every covered
// name and fails for names it does not cover.

const wildDomains = 300

// wildLabels are the names a hosted domain's clients dial.
var wildLabels = []string{"mail", "smtp", "imap", "pop", "autoconfig", "autodiscover"}

func wildDomain(i int) string { return "d" + strconv.Itoa(i) + ".test" }

// wildZone is a hosted domain's zone: its MX and the conventional names
// all on the server.
func wildZone(d string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s.\n$TTL 300\n", d)
	b.WriteString("@ IN SOA ns1.main-domain.test. hostmaster.main-domain.test. 1 3600 600 1209600 300\n")
	b.WriteString("@ IN NS ns1.main-domain.test.\n")
	fmt.Fprintf(&b, "@ IN MX 10 mail.%s.\n", d)
	for _, l := range wildLabels {
		fmt.Fprintf(&b, "%s IN A %s\n", l, serverIP)
	}
	return b.String()
}

// wildWorld is the 300-domain host: DNS, Pebble and Postfix with the
// deploy hook's files in place.
type wildWorld struct {
	*world
	planFile string
}

func newWildWorld(t *testing.T) *wildWorld {
	t.Helper()
	realmail.RequirePostfix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	w := &wildWorld{world: &world{t: t, ctx: ctx}}
	work := t.TempDir()

	w.dns = dnstest.New()
	if err := w.dns.AddZone("test.", ""); err != nil {
		t.Fatal(err)
	}
	w.zonesDir = filepath.Join(work, "zones")
	if err := os.Mkdir(w.zonesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	main := "$ORIGIN main-domain.test.\n@ IN SOA ns1 hostmaster 1 3600 600 1209600 300\n@ IN NS ns1\nns1 IN A " + serverIP + "\nserver IN A " + serverIP + "\n"
	if err := w.dns.AddZone("main-domain.test.", main); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= wildDomains; i++ {
		d := wildDomain(i)
		if err := w.dns.AddZone(d+".", wildZone(d)); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(w.zonesDir, d+".db"), []byte(wildZone(d)), 0o644)
	}
	if err := w.dns.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.dns.Close() })

	caCtx, caCancel := context.WithCancel(context.Background())
	var err error
	w.ca, err = pebbletest.Start(caCtx, pebbletest.Options{DNSAddr: w.dns.Addr()})
	if err != nil {
		caCancel()
		t.Fatalf("pebble: %v", err)
	}
	t.Cleanup(func() { caCancel(); w.ca.Close() })
	w.rootsFile = filepath.Join(work, "acme-roots.pem")
	w.issuerFile = filepath.Join(work, "acme-issuer.pem")
	writeFile(t, w.rootsFile, w.ca.RootsPEM, 0o644)
	writeFile(t, w.issuerFile, w.ca.IssuerRootsPEM(), 0o644)
	w.startPostfix(work)
	return w
}

// startPostfix starts Postfix as the postfix hook's one-time configuration
// sets it up: its default certificate from the hook's file (today's,
// from a CA nobody trusts, for the server's name only) and its SNI table.
func (w *wildWorld) startPostfix(work string) {
	t := w.t
	oldCA, err := realmail.NewCA("cPanel-like test CA")
	if err != nil {
		t.Fatal(err)
	}
	old, err := oldCA.Issue(hostname)
	if err != nil {
		t.Fatal(err)
	}
	w.pfCertDir = filepath.Join(work, "postfix-certplan")
	if err := os.MkdirAll(w.pfCertDir, 0o700); err != nil {
		t.Fatal(err)
	}
	def := filepath.Join(w.pfCertDir, "default-"+serverIP+".pem")
	writeFile(t, def, old.CombinedPEM(), 0o600)
	w.pfMapSrc = filepath.Join(work, "certplan-sni")
	writeFile(t, w.pfMapSrc, nil, 0o600)
	backdate(t, w.pfMapSrc)
	w.pf = realmail.StartPostfix(t, realmail.PostfixOptions{DefaultChainFile: def, SNIMaps: "hash:" + w.pfMapSrc})
	// smtpd opens the table per connection: it exists before the first.
	if out, err := exec.Command("postmap", "-c", w.pf.ConfigDir, "-F", "hash:"+w.pfMapSrc).CombinedOutput(); err != nil {
		t.Fatalf("postmap: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postfix maillog (end):\n%s", lastLines(w.pf.Log(), 30))
		}
	})
}

func (w *wildWorld) issueArgs(stateDir string) []string {
	hook := fmt.Sprintf("PATH=/usr/sbin:/usr/bin:/sbin:/bin POSTFIX_CONFIG_DIR=%s POSTFIX_CERT_DIR=%s POSTFIX_SNI_MAP=%s %s",
		shellQuote(w.pf.ConfigDir), shellQuote(w.pfCertDir), shellQuote("hash:"+w.pfMapSrc), shellQuote(repoFile(w.t, "examples/hooks/postfix.sh")))
	return []string{"issue", "--plan", w.planFile, "--state-dir", stateDir,
		"--resolver", w.dns.Addr(), "--dns-resolver", w.dns.Addr(),
		"--ca", w.ca.DirectoryURL, "--ca-roots", w.rootsFile, "--issuer-roots", w.issuerFile, "--profile", "classic",
		"--agree-tos", "--email", "hostmaster@main-domain.test",
		"--challenge", "http-01", "--http-listen", serverIP + ":" + strconv.Itoa(w.ca.HTTPPort), "--dns-provider", "dnsupdate",
		"--ports", "smtp:" + strconv.Itoa(w.pf.SMTPPort), "--ca-file", w.issuerFile,
		"--deploy-hook", hook}
}

// verifyNoSNI runs `openssl s_client -noservername -verify_hostname NAME`
// against Postfix's SMTP port for every name, at most 8 at a time, and
// returns openssl's verdict per name ("OK", or its error line).
func (w *wildWorld) verifyNoSNI(names []string) map[string]string {
	out := make(map[string]string, len(names))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	addr := serverIP + ":" + strconv.Itoa(w.pf.SMTPPort)
	for _, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			v := opensslVerdict(w.ctx, addr, w.issuerFile, "", n)
			mu.Lock()
			out[n] = v
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

var verifyLine = regexp.MustCompile(`(?m)^(Verification: OK|Verification error: .*)$`)

// opensslVerdict is openssl's verification of what addr serves for sni
// ("": none, -noservername), for name: "OK" or the error.
func opensslVerdict(ctx context.Context, addr, caFile, sni, name string) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sniArgs := []string{"-noservername"}
	if sni != "" {
		sniArgs = []string{"-servername", sni}
	}
	args := append([]string{"s_client", "-connect", addr, "-starttls", "smtp"}, sniArgs...)
	cmd := exec.CommandContext(ctx, "openssl", append(args, "-verify_hostname", name, "-CAfile", caFile)...)
	cmd.Stdin = strings.NewReader("")
	b, err := cmd.CombinedOutput()
	m := verifyLine.FindStringSubmatch(string(b))
	switch {
	case m == nil && err != nil:
		return "openssl failed: " + err.Error() + ": " + lastLines(string(b), 3)
	case m == nil:
		return "no verification line: " + lastLines(string(b), 3)
	case m[1] == "Verification: OK":
		return "OK"
	}
	return m[1]
}

// planFromZones runs `certplan plan` on the 300 zones, with extra flags,
// and returns the plan (in w.planFile).
func (w *wildWorld) planFromZones(extra ...string) *model.Plan {
	w.t.Helper()
	out := filepath.Join(w.t.TempDir(), "plan.json")
	w.planFile = out
	args := append([]string{"plan", "--zones", w.zonesDir, "--server-ip", serverIP, "--hostname", hostname,
		"--resolver", w.dns.Addr(), "--no-probe", "--profile", "classic", "--format", "json", "-o", out}, extra...)
	if r := w.certplan(time.Time{}, args...); r.code != cli.ExitOK {
		w.t.Fatalf("certplan plan: %s", r)
	}
	var p model.Plan
	if err := json.Unmarshal(mustRead(w.t, out), &p); err != nil {
		w.t.Fatal(err)
	}
	return &p
}

// coveredDomains counts the domains whose six names the default
// certificate of serverIP covers (names.Covers, RFC 6125).
func coveredDomains(p *model.Plan) int {
	var def []string
	for _, c := range p.Certificates {
		if c.Default && slices.Contains(c.IPs, serverIP) {
			def = c.Names
		}
	}
	n := 0
	for i := 1; i <= wildDomains; i++ {
		all := true
		for _, l := range wildLabels {
			host := l + "." + wildDomain(i)
			all = all && slices.ContainsFunc(def, func(name string) bool { return names.Covers(name, host) })
		}
		if all {
			n++
		}
	}
	return n
}

func TestWildcardDefaultCertificate300Domains(t *testing.T) {
	start := time.Now()
	w := newWildWorld(t)
	t.Setenv("DNSUPDATE_NAMESERVER", w.dns.Addr())
	t.Logf("setup: %v", time.Since(start).Round(time.Millisecond))

	// Without wildcards, six names a domain: at most 16 domains fit in
	// 100 names beside the server's own (the planner puts every domain's
	// MX host first, so fewer are whole).
	if n := coveredDomains(w.planFromZones()); n > 16 {
		t.Errorf("without wildcards the default certificate covers %d domains whole, want at most 16", n)
	} else {
		t.Logf("without wildcards: %d domains fully covered without SNI", n)
	}
	// With --wildcards auto and the DNS-01 provider that issue uses.
	plan := w.planFromZones("--wildcards", "auto", "--dns-provider", "dnsupdate")
	n := coveredDomains(plan)
	if n < 95 {
		t.Fatalf("with --wildcards auto the default certificate covers %d domains whole, want at least 95", n)
	}
	t.Logf("with --wildcards auto: %d domains fully covered without SNI, %d certificates", n, len(plan.Certificates))

	w.issue(plan)
	covered, uncovered, sniOnly := wildNames(plan)
	w.checkServed(covered, uncovered, sniOnly)
	t.Logf("total: %v", time.Since(start).Round(time.Millisecond))
}

// issue issues plan (w.planFile) and checks that the wildcards went
// through DNS-01, that DNS was never asked for "*", and that monitoring
// agrees afterwards.
func (w *wildWorld) issue(plan *model.Plan) {
	t := w.t
	stateDir := filepath.Join(t.TempDir(), "state")
	r := w.certplan(time.Time{}, w.issueArgs(stateDir)...)
	if r.code != cli.ExitOK {
		t.Fatalf("certplan issue: %s", r)
	}
	wantLine(t, r.stdout, `^default-`+regexp.QuoteMeta(serverIP)+`: issued \(issue: no certificate yet\), \d+ names, serial [0-9a-f]+, expires `)
	wantLine(t, r.stdout, `^  deploy hook .*/postfix\.sh'?: ok$`)
	wantLine(t, r.stdout, `^`+strconv.Itoa(len(plan.Certificates))+` certificates: `+strconv.Itoa(len(plan.Certificates))+` issued; verified (\d+) of (\d+) name/endpoint pairs$`)
	if n := w.dns.QueryCount("_acme-challenge."+wildDomain(1), 16 /* TXT */); n == 0 {
		t.Error("no TXT query at _acme-challenge.d1.test: the wildcard did not go through DNS-01")
	}
	if n := len(w.ca.Orders()); n != len(plan.Certificates) {
		t.Errorf("%d orders, want %d", n, len(plan.Certificates))
	}
	// The preflight looked up each wildcard's parent, never "*" itself.
	for k := range w.dns.QueryCounts() {
		if strings.Contains(k, "*") {
			t.Errorf("DNS was asked for %s", k)
		}
	}
	if n := w.dns.QueryCount(wildDomain(1), 257 /* CAA */); n == 0 {
		t.Error("no CAA query for d1.test: the preflight did not check the wildcard's parent")
	}
	t.Logf("certplan issue:\n%s", lastLines(r.stdout, 3))
	rc := w.certplan(time.Time{}, "check", "--state-dir", stateDir, "--ports", "smtp:"+strconv.Itoa(w.pf.SMTPPort), "--ca-file", w.issuerFile)
	if rc.code != cli.ExitOK || !strings.HasPrefix(rc.stdout, "CERTPLAN OK") {
		t.Errorf("certplan check: %s", rc)
	}
}

// wildNames are, from plan: the names clients dial that the default
// certificate covers (the server's own, and the six names of each domain
// whose wildcard is on it); names it does not cover (a domain on another
// certificate, a wildcard's parent itself, a name two labels below a
// wildcard: RFC 6125 section 6.4.3); and a domain's names on another
// certificate, which clients with SNI get.
func wildNames(plan *model.Plan) (covered, uncovered, sniOnly []string) {
	var def []string
	for _, c := range plan.Certificates {
		if c.Default {
			def = c.Names
		}
	}
	for _, n := range def {
		covered = append(covered, plan.DialNames(n)...)
	}
	other, wild := "", ""
	for i := 1; i <= wildDomains; i++ {
		d := wildDomain(i)
		switch {
		case !slices.Contains(def, "*."+d):
			sniOnly = append(sniOnly, "mail."+d, "autodiscover."+d)
			other = cmp.Or(other, d)
		default:
			wild = cmp.Or(wild, d)
		}
	}
	if other != "" {
		uncovered = append(uncovered, "mail."+other, "smtp."+other)
	}
	if wild != "" {
		uncovered = append(uncovered, wild, "a.mail."+wild)
	}
	return covered, uncovered, sniOnly[:min(len(sniOnly), 20)]
}

// checkServed asks openssl what Postfix serves: every covered name
// verifies without SNI, every uncovered name does not, and the sampled
// names of other certificates verify with SNI.
func (w *wildWorld) checkServed(covered, uncovered, sniOnly []string) {
	t := w.t
	vstart := time.Now()
	got := w.verifyNoSNI(append(append([]string{}, covered...), uncovered...))
	t.Logf("openssl: %d names verified without SNI in %v", len(got), time.Since(vstart).Round(time.Millisecond))
	bad := 0
	for _, n := range covered {
		if got[n] != "OK" {
			if bad++; bad <= 10 {
				t.Errorf("openssl -noservername -verify_hostname %s: %s", n, got[n])
			}
		}
	}
	if bad > 10 {
		t.Errorf("... and %d more covered names fail", bad-10)
	}
	t.Logf("verified without SNI: %d names", len(covered)-bad)
	for _, n := range uncovered {
		if !strings.Contains(got[n], "hostname mismatch") {
			t.Errorf("openssl -noservername -verify_hostname %s: %q, want a hostname mismatch", n, got[n])
		}
	}
	addr := serverIP + ":" + strconv.Itoa(w.pf.SMTPPort)
	for _, n := range sniOnly {
		if v := opensslVerdict(w.ctx, addr, w.issuerFile, n, n); v != "OK" {
			t.Errorf("openssl -servername %s -verify_hostname %s: %s", n, n, v)
		}
	}
}
