package realmail

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// hooksDir is examples/hooks, from this file.
func hooksDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "hooks")
}

// deployment is one certificate as certplan hands it to a deploy hook.
type deployment struct {
	id         string
	cert       Cert
	names      []string
	defaultIPs []string
	change     string // CERTPLAN_CHANGE; "" for a deploy
}

// retired is d as certplan hands it to the hooks when the plan no longer has it.
func (d deployment) retired() deployment {
	d.change = "retired"
	return d
}

// runHook runs a deploy hook the way certplan does: the certificate in a
// state directory and the CERTPLAN_* variables, plus the hook's own.
func runHook(t *testing.T, hook string, d deployment, extra map[string]string) (string, error) {
	t.Helper()
	certDir := filepath.Join(t.TempDir(), d.id)
	if err := d.cert.WriteCertDir(certDir); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin:"+os.Getenv("PATH"),
		"CERTPLAN_CERT_DIR="+certDir,
		"CERTPLAN_CERT_ID="+d.id,
		"CERTPLAN_NAMES="+strings.Join(d.names, " "),
		"CERTPLAN_DEFAULT_IPS="+strings.Join(d.defaultIPs, " "),
		"CERTPLAN_CHANGE="+d.change,
	)
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(hooksDir(t), hook))
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mustHook(t *testing.T, hook string, d deployment, extra map[string]string) string {
	t.Helper()
	out, err := runHook(t, hook, d, extra)
	if err != nil {
		t.Fatalf("%s for %s: %v\n%s", hook, d.id, err, out)
	}
	return out
}

// noTemporaries fails t if a hook left a staged file (".name.XXXXXX") in dir.
func noTemporaries(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(info.Name(), ".") && info.Name() != "." {
			t.Errorf("temporary file left behind: %s", path)
		}
		return nil
	})
}

func TestHooksSyntax(t *testing.T) {
	for _, hook := range []string{"postfix.sh", "dovecot.sh", "exim.sh", "cpanel.sh"} {
		t.Run(hook, func(t *testing.T) {
			path := filepath.Join(hooksDir(t), hook)
			if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
				t.Fatalf("bash -n %s: %v\n%s", hook, err, out)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&0o111 == 0 {
				t.Errorf("%s is not executable", hook)
			}
			b, _ := os.ReadFile(path)
			if !bytes.Contains(b, []byte("set -euo pipefail")) {
				t.Errorf("%s lacks set -euo pipefail", hook)
			}
			if sc, err := exec.LookPath("shellcheck"); err == nil {
				if out, err := exec.Command(sc, "-s", "bash", path).CombinedOutput(); err != nil {
					t.Errorf("shellcheck %s:\n%s", hook, out)
				}
			}
		})
	}
}

// Issue 5: a certificate deployed through examples/hooks/postfix.sh is
// what a real Postfix serves, with and without SNI, after first deployment
// and after renewal; a broken certificate is refused and changes nothing.
func TestPostfixHookDeploy(t *testing.T) {
	t.Parallel()
	old := issue(t, "server.main-domain.test")
	p := StartPostfix(t, PostfixOptions{Default: old, Submission: true})
	ctx := context.Background()
	certDir := filepath.Join(p.Dir, "certplan")
	mapSrc := filepath.Join(p.ConfigDir, "certplan-sni")
	env := map[string]string{
		"POSTFIX_CONFIG_DIR": p.ConfigDir,
		"POSTFIX_CERT_DIR":   certDir,
		"POSTFIX_SNI_MAP":    "hash:" + mapSrc,
	}
	def := deployment{id: "main", cert: issue(t, "server.main-domain.test", "mail.main-domain.test"),
		names: []string{"server.main-domain.test", "mail.main-domain.test"}, defaultIPs: []string{p.IP}}
	sni := deployment{id: "domain2", cert: issue(t, "mail.domain2.test", "smtp.domain2.test", "*.domain3.test"),
		names: []string{"mail.domain2.test", "smtp.domain2.test", "*.domain3.test"}}

	// An SNI table entry of a name certplan does not manage (an admin's)
	// stays through every deploy (issue 13, item 6).
	adminFile := filepath.Join(p.Dir, "admin-domain5.pem")
	if err := os.WriteFile(adminFile, issue(t, "mail.domain5.test").CombinedPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	adminLine := "mail.domain5.test " + adminFile + "\n"
	if err := os.WriteFile(mapSrc, []byte(adminLine), 0o600); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if b, _ := os.ReadFile(mapSrc); !strings.Contains(string(b), adminLine) {
			t.Errorf("the admin's SNI table entry is gone:\n%s", b)
		}
	}()

	// First deployment, before main.cf names the hook's files: the hook
	// says so, and the old certificate is still served.
	out := mustHook(t, "postfix.sh", def, env)
	if !strings.Contains(out, "tls_server_sni_maps") {
		t.Errorf("no warning about tls_server_sni_maps:\n%s", out)
	}
	mustHook(t, "postfix.sh", sni, env)
	wantServed(t, p.IP, p.SMTPPort, StartSMTP, "", old)

	// The administrator's one-time change.
	if err := p.Postconf(ctx, map[string]string{
		"smtpd_tls_chain_files": filepath.Join(certDir, "default-"+p.IP+".pem"),
		"tls_server_sni_maps":   "hash:" + mapSrc,
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(want map[string]Cert) {
		t.Helper()
		names := make([]string, 0, len(want))
		for n := range want {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, port := range []int{p.SMTPPort, p.SubmissionPort} {
			for _, n := range names {
				wantServed(t, p.IP, port, StartSMTP, n, want[n])
			}
		}
	}
	check(map[string]Cert{
		"":                        def.cert,
		"server.main-domain.test": def.cert,
		"mail.main-domain.test":   def.cert,
		"mail.domain2.test":       sni.cert,
		"smtp.domain2.test":       sni.cert,
		"imap.domain3.test":       sni.cert, // *.domain3.test
		"unknown.test":            def.cert,
	})

	// Renewal: new keys, and smtp.domain2.test moves to its own certificate.
	def.cert = issue(t, "server.main-domain.test", "mail.main-domain.test")
	mustHook(t, "postfix.sh", def, env)
	sni2 := deployment{id: "smtp-domain2", cert: issue(t, "smtp.domain2.test"), names: []string{"smtp.domain2.test"}}
	mustHook(t, "postfix.sh", sni2, env)
	check(map[string]Cert{
		"":                      def.cert,
		"mail.main-domain.test": def.cert,
		"mail.domain2.test":     sni.cert,
		"smtp.domain2.test":     sni2.cert,
	})
	b, err := os.ReadFile(mapSrc)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "smtp.domain2.test "); got != 1 {
		t.Errorf("smtp.domain2.test has %d lines in the SNI table, want 1:\n%s", got, b)
	}

	// A key that does not match the certificate: refused, nothing changes.
	bad := def
	other := issue(t, "server.main-domain.test", "mail.main-domain.test")
	bad.cert.KeyPEM = other.KeyPEM
	out, err = runHook(t, "postfix.sh", bad, env)
	if err == nil || !strings.Contains(out, "does not match") {
		t.Errorf("mismatched key: err %v, output:\n%s", err, out)
	}
	// A certificate that does not cover a name it is deployed for.
	short := deployment{id: "domain2", cert: issue(t, "mail.domain2.test"), names: []string{"mail.domain2.test", "smtp.domain2.test"}}
	out, err = runHook(t, "postfix.sh", short, env)
	if err == nil || !strings.Contains(out, "does not cover smtp.domain2.test") {
		t.Errorf("uncovered name: err %v, output:\n%s", err, out)
	}
	check(map[string]Cert{"": def.cert, "mail.domain2.test": sni.cert, "smtp.domain2.test": sni2.cert})

	// Private keys stay private: the certificate files and the indexed
	// table (postmap -F stores the files' contents) are 0600.
	for _, f := range []string{filepath.Join(certDir, "main.pem"), filepath.Join(certDir, "default-"+p.IP+".pem"), mapSrc + ".db"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}

	// domain2 is retired (its domain left; smtp.domain2.test moved to its
	// own certificate before): its table entries go, except the one that
	// points at the other certificate, and clients asking for its names
	// get the default.
	out = mustHook(t, "postfix.sh", sni.retired(), env)
	if !strings.Contains(out, "retired domain2: removed 2 SNI table entries") {
		t.Errorf("retirement output:\n%s", out)
	}
	check(map[string]Cert{
		"":                  def.cert,
		"mail.domain2.test": def.cert,
		"imap.domain3.test": def.cert,
		"smtp.domain2.test": sni2.cert,
	})
	b, err = os.ReadFile(mapSrc)
	if err != nil {
		t.Fatal(err)
	}
	if want := "smtp.domain2.test " + filepath.Join(certDir, "smtp-domain2.pem") + "\n"; !strings.Contains(string(b), want) || strings.Contains(string(b), "/domain2.pem") ||
		strings.Contains(string(b), "mail.domain2.test") || strings.Contains(string(b), "domain3") {
		t.Errorf("SNI table after the retirement:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(certDir, "domain2.pem")); !os.IsNotExist(err) {
		t.Errorf("the retired certificate's file is still there (%v)", err)
	}
	// Run again (a retirement whose later hook failed is retried): nothing
	// more to remove.
	if out := mustHook(t, "postfix.sh", sni.retired(), env); !strings.Contains(out, "removed 0 SNI table entries") {
		t.Errorf("second retirement:\n%s", out)
	}
	// A retired default certificate leaves the default file main.cf names.
	out = mustHook(t, "postfix.sh", def.retired(), env)
	if !strings.Contains(out, "kept default-<ip>.pem for "+p.IP) {
		t.Errorf("default retirement output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(certDir, "default-"+p.IP+".pem")); err != nil {
		t.Errorf("the default certificate file: %v", err)
	}
	check(map[string]Cert{"": def.cert, "smtp.domain2.test": sni2.cert})

	noTemporaries(t, certDir)
	noTemporaries(t, p.ConfigDir)
	if t.Failed() {
		t.Logf("maillog:\n%s", p.Log())
	}
}

// Issue 5, Dovecot: examples/hooks/dovecot.sh writes local_name blocks and
// the default certificate, and reloads; IMAP STARTTLS and IMAPS serve them.
func TestDovecotHookDeploy(t *testing.T) {
	t.Parallel()
	hookDir := t.TempDir()
	sniConf := filepath.Join(hookDir, "certplan-sni.conf")
	certDir := filepath.Join(hookDir, "certs")
	old := issue(t, "server.main-domain.test")
	d := StartDovecot(t, DovecotOptions{Default: old, IncludeTry: sniConf})
	ctx := context.Background()
	env := map[string]string{
		"DOVECOT_CONFIG":   d.ConfigFile,
		"DOVECOT_CERT_DIR": certDir,
		"DOVECOT_SNI_CONF": sniConf,
	}
	def := deployment{id: "main", cert: issue(t, "server.main-domain.test", "mail.main-domain.test"),
		names: []string{"server.main-domain.test", "mail.main-domain.test"}, defaultIPs: []string{d.IP}}
	sni := deployment{id: "domain2", cert: issue(t, "mail.domain2.test", "imap.domain2.test", "*.domain3.test"),
		names: []string{"mail.domain2.test", "imap.domain2.test", "*.domain3.test"}}
	mustHook(t, "dovecot.sh", def, env)
	mustHook(t, "dovecot.sh", sni, env)
	// SNI works at once (the include was there); the default changes when
	// the administrator points ssl_cert at the hook's file.
	wantServed(t, d.IP, d.IMAPSPort, ImplicitTLS, "mail.domain2.test", sni.cert)
	wantServed(t, d.IP, d.IMAPSPort, ImplicitTLS, "", old)
	if err := d.UseDefaultFiles(ctx, filepath.Join(certDir, "default-"+d.IP+".crt"), filepath.Join(certDir, "default-"+d.IP+".key")); err != nil {
		t.Fatal(err)
	}
	check := func(want map[string]Cert) {
		t.Helper()
		for _, port := range []struct {
			port     int
			starttls string
		}{{d.IMAPPort, StartIMAP}, {d.IMAPSPort, ImplicitTLS}} {
			for n, c := range want {
				wantServed(t, d.IP, port.port, port.starttls, n, c)
			}
		}
	}
	check(map[string]Cert{
		"":                      def.cert,
		"mail.main-domain.test": def.cert,
		"mail.domain2.test":     sni.cert,
		"imap.domain2.test":     sni.cert,
		"mail.domain3.test":     sni.cert,
		"unknown.test":          def.cert,
	})

	// Renewal, and imap.domain2.test moves to a certificate of its own.
	def.cert = issue(t, "server.main-domain.test", "mail.main-domain.test")
	mustHook(t, "dovecot.sh", def, env)
	sni.cert = issue(t, "mail.domain2.test", "*.domain3.test")
	sni.names = []string{"mail.domain2.test", "*.domain3.test"}
	mustHook(t, "dovecot.sh", sni, env)
	imap := deployment{id: "imap-domain2", cert: issue(t, "imap.domain2.test"), names: []string{"imap.domain2.test"}}
	mustHook(t, "dovecot.sh", imap, env)
	check(map[string]Cert{
		"":                  def.cert,
		"mail.domain2.test": sni.cert,
		"mail.domain3.test": sni.cert,
		"imap.domain2.test": imap.cert,
	})
	b, err := os.ReadFile(sniConf)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "local_name imap.domain2.test "); got != 1 {
		t.Errorf("imap.domain2.test has %d local_name blocks, want 1:\n%s", got, b)
	}

	// Refused: a key that does not match.
	bad := imap
	bad.cert.KeyPEM = def.cert.KeyPEM
	out, err := runHook(t, "dovecot.sh", bad, env)
	if err == nil || !strings.Contains(out, "does not match") {
		t.Errorf("mismatched key: err %v, output:\n%s", err, out)
	}
	// A new SNI-only certificate joins the others.
	more := deployment{id: "domain9", cert: issue(t, "mail.domain9.test"), names: []string{"mail.domain9.test"}}
	mustHook(t, "dovecot.sh", more, env)
	check(map[string]Cert{"": def.cert, "mail.domain9.test": more.cert, "imap.domain2.test": imap.cert})

	// domain2 is retired (imap.domain2.test moved to its own certificate
	// before): its blocks go, the one another certificate wrote stays, and
	// clients asking for its names get the default.
	out = mustHook(t, "dovecot.sh", sni.retired(), env)
	if !strings.Contains(out, "retired domain2: removed 2 local_name blocks") {
		t.Errorf("retirement output:\n%s", out)
	}
	check(map[string]Cert{
		"":                  def.cert,
		"mail.domain2.test": def.cert,
		"mail.domain3.test": def.cert,
		"imap.domain2.test": imap.cert,
		"mail.domain9.test": more.cert,
	})
	b, err = os.ReadFile(sniConf)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "/domain2.crt") || strings.Contains(string(b), "domain3") || !strings.Contains(string(b), "local_name imap.domain2.test {") {
		t.Errorf("local_name blocks after the retirement:\n%s", b)
	}
	for _, f := range []string{"domain2.crt", "domain2.key"} {
		if _, err := os.Stat(filepath.Join(certDir, f)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", f, err)
		}
	}
	out = mustHook(t, "dovecot.sh", def.retired(), env)
	if !strings.Contains(out, "kept default-<ip>.crt and .key for "+d.IP) {
		t.Errorf("default retirement output:\n%s", out)
	}
	check(map[string]Cert{"": def.cert, "imap.domain2.test": imap.cert})
	noTemporaries(t, hookDir)
	if t.Failed() {
		t.Logf("dovecot log:\n%s", d.Log())
	}
}

// examples/hooks/exim.sh cannot meet a real Exim here (Debian's exim4 and
// postfix exclude each other), but its file handling is real: the files
// and links the Exim configuration in its header reads.
func TestEximHookFiles(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "exim")
	env := map[string]string{"EXIM_CERT_DIR": dir, "EXIM_GROUP": "mail"}
	def := deployment{id: "main", cert: issue(t, "server.main-domain.test"), names: []string{"server.main-domain.test"}, defaultIPs: []string{"127.0.0.2", "127.0.0.3"}}
	sni := deployment{id: "domain2", cert: issue(t, "mail.domain2.test", "smtp.domain2.test", "*.domain3.test"),
		names: []string{"mail.domain2.test", "smtp.domain2.test", "*.domain3.test"}}
	// SNI files of names certplan does not manage (cPanel's, an admin's)
	// stay through every deploy and retirement (issue 13, item 6).
	unmanaged := map[string]string{"sni/mail.domain3.test.pem": "", "sni/mail.broken-dns.test.pem": "../admin.pem"}
	if err := os.MkdirAll(filepath.Join(dir, "sni"), 0o750); err != nil {
		t.Fatal(err)
	}
	for f, target := range unmanaged {
		var err error
		if target == "" {
			err = os.WriteFile(filepath.Join(dir, f), []byte("admin's"), 0o640)
		} else {
			err = os.Symlink(target, filepath.Join(dir, f))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for f := range unmanaged {
			if _, err := os.Lstat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s, not certplan's, is gone: %v", f, err)
			}
		}
	}()
	mustHook(t, "exim.sh", def, env)
	mustHook(t, "exim.sh", sni, env)
	want := map[string][]byte{
		"default-127.0.0.2.pem":     def.cert.CombinedPEM(),
		"default-127.0.0.3.pem":     def.cert.CombinedPEM(),
		"sni/mail.domain2.test.pem": sni.cert.CombinedPEM(),
		"sni/smtp.domain2.test.pem": sni.cert.CombinedPEM(),
		"sni/_.domain3.test.pem":    sni.cert.CombinedPEM(),
	}
	for f, data := range want {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Error(err)
			continue
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s does not hold the deployed key and chain", f)
		}
	}
	// Renewal without smtp.domain2.test: its link goes.
	sni.cert = issue(t, "mail.domain2.test", "*.domain3.test")
	sni.names = []string{"mail.domain2.test", "*.domain3.test"}
	mustHook(t, "exim.sh", sni, env)
	if _, err := os.Lstat(filepath.Join(dir, "sni", "smtp.domain2.test.pem")); !os.IsNotExist(err) {
		t.Errorf("sni/smtp.domain2.test.pem still there after the name left the certificate (%v)", err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "sni", "mail.domain2.test.pem"))
	if !bytes.Equal(got, sni.cert.CombinedPEM()) {
		t.Error("sni/mail.domain2.test.pem does not hold the renewed certificate")
	}
	fi, err := os.Stat(filepath.Join(dir, "main.pem"))
	if err == nil && fi.Mode().Perm() != 0o640 {
		t.Errorf("main.pem has mode %v, want 0640", fi.Mode().Perm())
	}

	// smtp.domain2.test comes back on a certificate of its own; then
	// domain2 is retired: its links go, the other certificate's stays.
	smtp := deployment{id: "smtp-domain2", cert: issue(t, "smtp.domain2.test"), names: []string{"smtp.domain2.test"}}
	mustHook(t, "exim.sh", smtp, env)
	out := mustHook(t, "exim.sh", sni.retired(), env)
	if !strings.Contains(out, "retired domain2: removed 2 sni links") {
		t.Errorf("retirement output:\n%s", out)
	}
	for _, f := range []string{"sni/mail.domain2.test.pem", "sni/_.domain3.test.pem", "domain2.pem"} {
		if _, err := os.Lstat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s is still there after the retirement (%v)", f, err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "sni", "smtp.domain2.test.pem")); !bytes.Equal(got, smtp.cert.CombinedPEM()) {
		t.Error("sni/smtp.domain2.test.pem does not hold its own certificate after domain2's retirement")
	}
	// A retired default keeps the default files tls_certificate names.
	mustHook(t, "exim.sh", def.retired(), env)
	for _, f := range []string{"default-127.0.0.2.pem", "default-127.0.0.3.pem"} {
		if got, _ := os.ReadFile(filepath.Join(dir, f)); !bytes.Equal(got, def.cert.CombinedPEM()) {
			t.Errorf("%s changed after the default's retirement", f)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "main.pem")); !os.IsNotExist(err) {
		t.Errorf("main.pem is still there after the retirement (%v)", err)
	}
	noTemporaries(t, dir)
}

// The cPanel hook against a stand-in whmapi1 (testdata/whmapi1) that checks
// the calls as cPanel documents them: a default certificate becomes the
// service certificate of Exim and Dovecot (URI-encoded crt, key and
// cabundle), each service is restarted after its install; an SNI-only
// certificate is left to AutoSSL; a failed install restarts nothing.
func TestCpanelHookServiceCertificate(t *testing.T) {
	t.Parallel()
	whm, err := filepath.Abs(filepath.Join("testdata", "whmapi1"))
	if err != nil {
		t.Fatal(err)
	}
	def := deployment{id: "default", cert: issue(t, "server.main-domain.test", "mail.domain2.test"),
		names: []string{"server.main-domain.test", "mail.domain2.test"}, defaultIPs: []string{"127.0.0.2", "127.0.0.3"}}
	calls := func(state string) string {
		b, _ := os.ReadFile(filepath.Join(state, "calls"))
		return string(b)
	}

	state := t.TempDir()
	env := map[string]string{"WHMAPI1": whm, "WHMAPI1_STATE": state}
	out := mustHook(t, "cpanel.sh", def, env)
	want := "install_service_ssl_certificate exim\nrestartservice exim\ninstall_service_ssl_certificate dovecot\nrestartservice dovecot\n"
	if got := calls(state); got != want {
		t.Errorf("whmapi1 calls:\n%s\nwant:\n%s\nhook output:\n%s", got, want, out)
	}
	for _, svc := range []string{"exim", "dovecot"} {
		for ext, data := range map[string][]byte{"crt": def.cert.LeafPEM(), "cabundle": def.cert.IssuerPEM()} {
			got, _ := os.ReadFile(filepath.Join(state, svc+"."+ext))
			if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(data)) {
				t.Errorf("%s %s as cPanel got it:\n%s", svc, ext, got)
			}
		}
	}

	// An SNI certificate: AutoSSL's names; nothing is called.
	state = t.TempDir()
	env["WHMAPI1_STATE"] = state
	sni := deployment{id: "sni-domain3.test", cert: issue(t, "mail.domain3.test"), names: []string{"mail.domain3.test"}}
	out = mustHook(t, "cpanel.sh", sni, env)
	if calls(state) != "" || !strings.Contains(out, "served by AutoSSL") {
		t.Errorf("SNI certificate: calls %q, output:\n%s", calls(state), out)
	}

	// cPanel refuses the install: the hook fails and restarts nothing.
	env["WHMAPI1_FAIL"] = "install_service_ssl_certificate"
	out, err = runHook(t, "cpanel.sh", def, env)
	if err == nil || calls(state) != "" || !strings.Contains(out, "install_service_ssl_certificate failed (WHMAPI1_FAIL)") {
		t.Errorf("refused install: err %v, calls %q, output:\n%s", err, calls(state), out)
	}
}

// examples/hooks/cpanel.sh needs a cPanel server; here it must at least
// refuse cleanly, before touching anything, when there is none.
func TestCpanelHookWithoutCpanel(t *testing.T) {
	t.Parallel()
	d := deployment{id: "main", cert: issue(t, "server.main-domain.test"), names: []string{"server.main-domain.test"}, defaultIPs: []string{"127.0.0.2"}}
	out, err := runHook(t, "cpanel.sh", d, map[string]string{"WHMAPI1": "/nonexistent/whmapi1"})
	if err == nil || !strings.Contains(out, "/nonexistent/whmapi1: not found") {
		t.Errorf("err %v, output:\n%s", err, out)
	}
	// A retirement changes nothing on cPanel, and says so.
	out, err = runHook(t, "cpanel.sh", d.retired(), map[string]string{"WHMAPI1": "/nonexistent/whmapi1"})
	if err != nil || !strings.Contains(out, "retired main: nothing to do on cPanel") {
		t.Errorf("retirement: err %v, output:\n%s", err, out)
	}
}
