// Package e2e runs certplan end to end through its real command line
// (internal/cli.Run, in-process) against real parts only: Postfix and
// Dovecot (internal/realmail) on 127.0.0.2, an authoritative DNS server
// (internal/dnstest) serving the hosted domains' zone files, and Pebble
// (internal/pebbletest) validating HTTP-01 through that DNS. Deployment goes
// through the example hooks in examples/hooks, exactly as an administrator
// would wire them with --deploy-hook.
//
// wildcard_test.go is issue 19's end to end: 300 domains on one IP, a
// default certificate with wildcard names issued through DNS-01 and
// checked with openssl without SNI.
//
// The tests skip when Postfix or Dovecot cannot run here, and fail instead
// when CERTPLAN_REQUIRE_INTEGRATION=1 (as in CI).
package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/cli"
	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/internal/pebbletest"
	"github.com/certplan/certplan/internal/realmail"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
	"github.com/certplan/certplan/store"
)

// hostname is the shared server's own name: must-cover, on today's
// cPanel-like default certificate, and on the planned default certificate.
const hostname = "server.main-domain.test"

// serverIP is where Postfix, Dovecot and the HTTP-01 listener run.
const serverIP = realmail.DefaultIP

// mailPort is one port of the mail servers, as probed.
type mailPort struct {
	port     int
	protocol string // model.Proto*
	starttls string // realmail dialect for openssl s_client
}

// world is everything one end-to-end run needs.
type world struct {
	t   *testing.T // the running test or subtest: helpers report to it
	ctx context.Context

	dns      *dnstest.Server
	zonesDir string

	ca         *pebbletest.CA
	caCancel   context.CancelFunc
	rootsFile  string // Pebble's ACME server TLS root: --ca-roots
	issuerFile string // Pebble's issuing root: --ca-file
	httpListen string

	pf *realmail.Postfix
	dc *realmail.Dovecot

	// The hooks' files, as the one-time configuration names them.
	pfCertDir, pfMapSrc  string
	dcCertDir, dcSNIConf string

	stateDir string
	ports    []mailPort
	prober   *probe.Prober

	// Today's certificates, from a CA nobody trusts: a cPanel-like default
	// with the server's hostname only, and SNI certificates per domain.
	oldDefault, oldDomain2 realmail.Cert
}

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// newWorld starts DNS, Pebble, Postfix and Dovecot, with the mail servers
// serving today's certificates.
func newWorld(t *testing.T) *world {
	t.Helper()
	realmail.RequirePostfix(t)
	realmail.RequireDovecot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	w := &world{t: t, ctx: ctx}
	work := t.TempDir()

	// DNS: the hosted zones, and "test." so that other names get NXDOMAIN.
	w.dns = dnstest.New()
	if err := w.dns.AddZone("test.", ""); err != nil {
		t.Fatal(err)
	}
	w.zonesDir = filepath.Join(work, "zones")
	if err := os.Mkdir(w.zonesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "zones", "*.db"))
	if err != nil || len(files) == 0 {
		t.Fatalf("zone fixtures: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		w.addZone(f)
	}
	if err := w.dns.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.dns.Close() })

	// Pebble, validating through that DNS.
	caCtx, caCancel := context.WithCancel(context.Background())
	w.caCancel = caCancel
	// Besides Let's Encrypt's profiles, one whose name limit is below what
	// the plan puts on a certificate: the CA rejects such an order.
	profiles := pebbletest.DefaultProfiles()
	profiles["small"] = pebbletest.Profile{Description: "at most 3 names", Validity: 90 * 24 * time.Hour, MaxNames: 3}
	w.ca, err = pebbletest.Start(caCtx, pebbletest.Options{DNSAddr: w.dns.Addr(), Profiles: profiles})
	if err != nil {
		caCancel()
		t.Fatalf("pebble: %v", err)
	}
	t.Cleanup(func() { caCancel(); w.ca.Close() })
	w.rootsFile = filepath.Join(work, "acme-roots.pem")
	w.issuerFile = filepath.Join(work, "acme-issuer.pem")
	writeFile(t, w.rootsFile, w.ca.RootsPEM, 0o644)
	writeFile(t, w.issuerFile, w.ca.IssuerRootsPEM(), 0o644)
	w.httpListen = serverIP + ":" + strconv.Itoa(w.ca.HTTPPort)

	// Today's certificates.
	oldCA, err := realmail.NewCA("cPanel-like test CA")
	if err != nil {
		t.Fatal(err)
	}
	if w.oldDefault, err = oldCA.Issue(hostname); err != nil {
		t.Fatal(err)
	}
	if w.oldDomain2, err = oldCA.Issue("mail.domain2.test", "smtp.domain2.test"); err != nil {
		t.Fatal(err)
	}
	oldDomain3, err := oldCA.Issue("mail.domain3.test")
	if err != nil {
		t.Fatal(err)
	}
	sni := map[string]realmail.Cert{
		"mail.domain2.test": w.oldDomain2,
		"smtp.domain2.test": w.oldDomain2,
		"mail.domain3.test": oldDomain3,
	}

	hookDir := filepath.Join(work, "dovecot-certplan")
	w.dcCertDir = filepath.Join(hookDir, "certs")
	w.dcSNIConf = filepath.Join(hookDir, "99-certplan-sni.conf")
	w.pf = realmail.StartPostfix(t, realmail.PostfixOptions{Default: w.oldDefault, SNI: sni, Submission: true})
	w.dc = realmail.StartDovecot(t, realmail.DovecotOptions{Default: w.oldDefault, SNI: sni, IncludeTry: w.dcSNIConf})
	w.pfCertDir = filepath.Join(w.pf.Dir, "certplan")
	w.pfMapSrc = filepath.Join(w.pf.ConfigDir, "certplan-sni")
	w.ports = []mailPort{
		{w.pf.SMTPPort, model.ProtoSMTP, realmail.StartSMTP},
		{w.pf.SubmissionPort, model.ProtoSubmission, realmail.StartSMTP},
		{w.dc.IMAPSPort, model.ProtoIMAPS, realmail.ImplicitTLS},
		{w.dc.IMAPPort, model.ProtoIMAP, realmail.StartIMAP},
	}
	w.stateDir = filepath.Join(work, "state")

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(w.ca.IssuerRootsPEM())
	pool.AppendCertsFromPEM(oldCA.PEM)
	w.prober = probe.New(probe.Config{Roots: pool, Timeout: 10 * time.Second})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postfix maillog (end):\n%s", lastLines(w.pf.Log(), 30))
			t.Logf("dovecot log (end):\n%s", lastLines(w.dc.Log(), 30))
		}
	})
	return w
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
}

// addZone serves a zone file and adds it to the hosted zones directory: a
// customer's domain set up on the server.
func (w *world) addZone(file string) {
	w.t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.dns.AddZone(dnstest.ZoneFileOrigin(file, string(b)), string(b)); err != nil {
		w.t.Fatal(err)
	}
	writeFile(w.t, filepath.Join(w.zonesDir, filepath.Base(file)), b, 0o644)
}

// handOver is what an administrator does once, after reading the hooks'
// headers: copy today's certificates to where the hooks keep theirs, and
// point Postfix (smtpd_tls_chain_files, tls_server_sni_maps) and Dovecot
// (ssl_cert, ssl_key, and the included local_name file) at them. Clients
// see no change.
func (w *world) handOver() {
	t := w.t
	t.Helper()
	// Postfix: the default certificate, and an SNI table with today's
	// entries, in the hook's format (an indexed table built with -F).
	if err := os.MkdirAll(w.pfCertDir, 0o700); err != nil {
		t.Fatal(err)
	}
	pfDefault := filepath.Join(w.pfCertDir, "default-"+serverIP+".pem")
	writeFile(t, pfDefault, w.oldDefault.CombinedPEM(), 0o600)
	old2 := filepath.Join(w.pfCertDir, "cpanel-domain2.pem")
	writeFile(t, old2, w.oldDomain2.CombinedPEM(), 0o600)
	writeFile(t, w.pfMapSrc, []byte(fmt.Sprintf("mail.domain2.test %s\nsmtp.domain2.test %s\n", old2, old2)), 0o600)
	backdate(t, w.pfMapSrc)
	if out, err := exec.CommandContext(w.ctx, "postmap", "-c", w.pf.ConfigDir, "-F", "hash:"+w.pfMapSrc).CombinedOutput(); err != nil {
		t.Fatalf("postmap: %v\n%s", err, out)
	}
	os.Chmod(w.pfMapSrc+".db", 0o600)
	if err := w.pf.Postconf(w.ctx, map[string]string{
		"smtpd_tls_chain_files": pfDefault,
		"tls_server_sni_maps":   "hash:" + w.pfMapSrc,
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.pf.Reload(w.ctx); err != nil {
		t.Fatal(err)
	}

	// Dovecot: the default certificate from the hook's files; today's
	// local_name blocks move into the file the hook maintains (the
	// instance's own ones go, or Dovecot would see each name twice).
	if err := os.MkdirAll(w.dcCertDir, 0o700); err != nil {
		t.Fatal(err)
	}
	dcCrt := filepath.Join(w.dcCertDir, "default-"+serverIP+".crt")
	dcKey := filepath.Join(w.dcCertDir, "default-"+serverIP+".key")
	writeFile(t, dcKey, w.oldDefault.KeyPEM, 0o600)
	writeFile(t, dcCrt, w.oldDefault.ChainPEM, 0o644)
	crt2 := filepath.Join(w.dcCertDir, "cpanel-domain2.crt")
	key2 := filepath.Join(w.dcCertDir, "cpanel-domain2.key")
	writeFile(t, key2, w.oldDomain2.KeyPEM, 0o600)
	writeFile(t, crt2, w.oldDomain2.ChainPEM, 0o644)
	var conf strings.Builder
	for _, n := range []string{"mail.domain2.test", "smtp.domain2.test"} {
		fmt.Fprintf(&conf, "# certplan cpanel-domain2 %s\nlocal_name %s {\n  ssl_cert = <%s\n  ssl_key = <%s\n}\n", n, n, crt2, key2)
	}
	writeFile(t, w.dcSNIConf, []byte(conf.String()), 0o644)
	if err := w.dc.SetSNI(w.ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.dc.UseDefaultFiles(w.ctx, dcCrt, dcKey); err != nil {
		t.Fatal(err)
	}
}

// backdate: Postfix re-reads a file modified within the last second.
func backdate(t *testing.T, path string) {
	t.Helper()
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

// hooks are the --deploy-hook commands: the example hooks with the
// settings their headers describe.
func (w *world) hooks() []string {
	path := "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
	return []string{
		fmt.Sprintf("%s POSTFIX_CONFIG_DIR=%s POSTFIX_CERT_DIR=%s POSTFIX_SNI_MAP=%s %s", path,
			shellQuote(w.pf.ConfigDir), shellQuote(w.pfCertDir), shellQuote("hash:"+w.pfMapSrc),
			shellQuote(repoFile(w.t, "examples/hooks/postfix.sh"))),
		fmt.Sprintf("%s DOVECOT_CONFIG=%s DOVECOT_CERT_DIR=%s DOVECOT_SNI_CONF=%s %s", path,
			shellQuote(w.dc.ConfigFile), shellQuote(w.dcCertDir), shellQuote(w.dcSNIConf),
			shellQuote(repoFile(w.t, "examples/hooks/dovecot.sh"))),
	}
}

func (w *world) portsFlag() string {
	var items []string
	for _, p := range w.ports {
		items = append(items, p.protocol+":"+strconv.Itoa(p.port))
	}
	return strings.Join(items, ",")
}

// applyArgs are the flags of issue and renew.
func (w *world) applyArgs(cmd string, extra ...string) []string {
	args := []string{cmd,
		"--zones", w.zonesDir, "--server-ip", serverIP, "--resolver", w.dns.Addr(),
		"--hostname", hostname,
		"--ca", w.ca.DirectoryURL, "--ca-roots", w.rootsFile,
		"--issuer-roots", w.issuerFile, "--profile", "classic",
		"--agree-tos", "--email", "hostmaster@main-domain.test",
		"--http-listen", w.httpListen, "--state-dir", w.stateDir,
		"--ports", w.portsFlag(), "--ca-file", w.issuerFile,
	}
	for _, h := range w.hooks() {
		args = append(args, "--deploy-hook", h)
	}
	return append(args, extra...)
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// certplan runs the real command in-process; now, when set, is
// CERTPLAN_NOW. No configuration file from the environment applies.
func (w *world) certplan(now time.Time, args ...string) result {
	w.t.Helper()
	getenv := func(k string) string {
		switch k {
		case "CERTPLAN_NOW":
			if now.IsZero() {
				return ""
			}
			return now.UTC().Format(time.RFC3339)
		case "CERTPLAN_CONFIG":
			return ""
		}
		return os.Getenv(k)
	}
	var out, errw bytes.Buffer
	start := time.Now()
	code := cli.Run(w.ctx, args, strings.NewReader(""), &out, &errw, getenv)
	w.t.Logf("certplan %s: exit %d in %v", args[0], code, time.Since(start).Round(time.Millisecond))
	return result{code, out.String(), errw.String()}
}

// current reads a certificate from the state directory.
func (w *world) current(id string) *store.Cert {
	w.t.Helper()
	st, err := store.Open(w.stateDir)
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := st.LoadCert(id)
	if err != nil {
		w.t.Fatalf("state: %v", err)
	}
	return c
}

// served checks, with certplan's probe and with openssl s_client, that
// every port presents want for sni ("" for none). A reload may leave an old
// process for a moment: openssl waits up to 10 s for the change.
func (w *world) served(want *x509.Certificate, snis ...string) {
	w.t.Helper()
	for _, p := range w.ports {
		for _, sni := range snis {
			wctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
			err := realmail.WaitServed(wctx, serverIP, p.port, p.starttls, sni, want)
			cancel()
			if err != nil {
				w.t.Errorf("openssl: %v", err)
				continue
			}
			ep, err := w.prober.Probe(w.ctx, probe.Target{IP: serverIP, Port: p.port, Protocol: p.protocol, SNI: sni})
			if err != nil {
				w.t.Errorf("probe %s:%d (%s, sni %q): %v", serverIP, p.port, p.protocol, sni, err)
				continue
			}
			if got := probe.CertInfo(want); ep.Leaf == nil || ep.Leaf.Serial != got.Serial || ep.Leaf.SPKISHA256 != got.SPKISHA256 {
				w.t.Errorf("probe %s:%d (%s, sni %q): serves %+v, want serial %s", serverIP, p.port, p.protocol, sni, ep.Leaf, got.Serial)
			}
			if !ep.Trusted {
				w.t.Errorf("probe %s:%d (%s, sni %q): not trusted: %s", serverIP, p.port, p.protocol, sni, ep.TrustError)
			}
		}
	}
}

// hookFiles checks what the hooks left where the one-time configuration
// points: c as the default certificate of both servers, and SNI entries
// for c's names instead of today's ones.
func (w *world) hookFiles(c *store.Cert) {
	t := w.t
	t.Helper()
	combined, err := os.ReadFile(c.Path("combined.pem"))
	if err != nil {
		t.Fatal(err)
	}
	fullchain, err := os.ReadFile(c.Path("fullchain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string][]byte{
		filepath.Join(w.pfCertDir, "default-"+serverIP+".pem"): combined,
		filepath.Join(w.dcCertDir, "default-"+serverIP+".crt"): fullchain,
	} {
		got, err := os.ReadFile(file)
		if err != nil {
			t.Error(err)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s does not hold certificate %s", file, c.Meta.Serial)
		}
	}
	for _, file := range []string{w.pfMapSrc, w.dcSNIConf} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, n := range c.Meta.Names {
			if !strings.Contains(string(b), n+" ") {
				t.Errorf("%s has no entry for %s:\n%s", file, n, b)
			}
		}
		if strings.Contains(string(b), "cpanel-domain2") {
			t.Errorf("%s still names today's certificate for domain2.test:\n%s", file, b)
		}
	}
}

// covers fails the test unless c lists every name.
func covers(t *testing.T, c *x509.Certificate, names ...string) {
	t.Helper()
	for _, n := range names {
		if !probe.MatchesName(c.DNSNames, n) {
			t.Errorf("certificate %x names %v, lacks %s", c.SerialNumber, c.DNSNames, n)
		}
	}
}

func wantLine(t *testing.T, out, re string) {
	t.Helper()
	if !regexp.MustCompile(`(?m)` + re).MatchString(out) {
		t.Errorf("output lacks a line matching %s:\n%s", re, out)
	}
}

// plan reads the applied plan from the state directory.
func (w *world) plan() *model.Plan {
	w.t.Helper()
	st, err := store.Open(w.stateDir)
	if err != nil {
		w.t.Fatal(err)
	}
	p, err := st.LoadPlan()
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}
