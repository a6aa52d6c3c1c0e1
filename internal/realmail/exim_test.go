package realmail

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hookEximConfig is the one-time Exim configuration that
// examples/hooks/exim.sh documents in its header, without the comment
// marks and without its CERTPLAN_DIR line (the instance defines it): the
// test runs Exim with exactly what the hook tells admins to write.
func hookEximConfig(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join(hooksDir(t), "exim.sh"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	in := false
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line, ok := strings.CutPrefix(sc.Text(), "#   ")
		switch {
		case !ok:
			in = false
		case strings.HasPrefix(line, "CERTPLAN_DIR = "):
			in = true
		case in && !strings.HasPrefix(line, "#"):
			lines = append(lines, line)
		}
	}
	if len(lines) < 4 || !strings.HasPrefix(lines[len(lines)-5], "tls_certificate = ") {
		t.Fatalf("exim.sh's header has no one-time configuration block as expected:\n%s", strings.Join(lines, "\n"))
	}
	return strings.Join(lines, "\n")
}

// The Exim hook against a real Exim (Debian's 4.96, unpacked): with the
// configuration the hook documents, every port presents the IP's default
// certificate without SNI and the name's certificate with it (wildcards
// too), and a renewal is served at the next connection without a reload.
func TestEximHookDeploy(t *testing.T) {
	t.Parallel()
	e := StartExim(t, EximOptions{TLS: hookEximConfig(t)})
	env := map[string]string{"EXIM_CERT_DIR": e.CertDir, "EXIM_GROUP": eximUser}
	def := deployment{id: "default-127.0.0.2", cert: issue(t, "server.main-domain.test", "mail.client1.test"),
		names: []string{"server.main-domain.test", "mail.client1.test"}, defaultIPs: []string{e.IP}}
	sni := deployment{id: "sni-domain2.test", cert: issue(t, "mail.domain2.test", "smtp.domain2.test", "*.domain3.test"),
		names: []string{"mail.domain2.test", "smtp.domain2.test", "*.domain3.test"}}
	mustHook(t, "exim.sh", def, env)
	mustHook(t, "exim.sh", sni, env)

	check := func(want map[string]Cert) {
		t.Helper()
		for _, port := range []struct {
			port     int
			starttls string
		}{{e.SMTPPort, "smtp"}, {e.SubmissionPort, "smtp"}, {e.SMTPSPort, ImplicitTLS}} {
			for sni, c := range want {
				wantServed(t, e.IP, port.port, port.starttls, sni, c)
			}
		}
		if t.Failed() {
			t.Fatalf("exim log:\n%s", e.Log())
		}
	}
	check(map[string]Cert{
		"":                  def.cert,
		"mail.client1.test": def.cert, // no SNI file: the IP's default
		"mail.domain2.test": sni.cert,
		"SMTP.Domain2.test": sni.cert, // SNI is matched without case
		"imap.domain3.test": sni.cert, // through sni/_.domain3.test.pem
		"a.b.domain3.test":  def.cert, // a wildcard covers one label only
		"nosuch.test":       def.cert,
		// An SNI that is no host name ("../x") never reaches the
		// expansion: Debian's Exim is built with GnuTLS, which fails
		// the handshake (alert 47); the expansion's match guards
		// builds that pass it on.
	})

	// Renewal: the next connection gets the new files, no reload.
	def.cert = issue(t, "server.main-domain.test", "mail.client1.test", "mail.client2.test")
	def.names = append(def.names, "mail.client2.test")
	mustHook(t, "exim.sh", def, env)
	check(map[string]Cert{"": def.cert, "mail.domain2.test": sni.cert})

	// The restarted daemon (a configuration change) serves the same.
	if err := e.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	check(map[string]Cert{"": def.cert, "smtp.domain2.test": sni.cert})
}
