package probe_test

import (
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/names"
	"github.com/certplan/certplan/probe"
)

// A certificate for "*.d.test" and "d.test" covers the same names by every
// rule certplan uses and by the clients' (issue 19 item 2): names.Covers
// (the planner, store, apply, monitor), crypto/x509's VerifyHostname, the
// probe's MatchesName, and `openssl s_client -noservername -verify_hostname`
// against a Go TLS listener serving it. A wildcard covers one left-most
// label: not the parent itself (the apex SAN does), not two labels.
func TestWildcardSemanticsAgree(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CERTPLAN_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("openssl is required (CERTPLAN_REQUIRE_INTEGRATION=1)")
		}
		t.Skip("no openssl")
	}
	ca, err := mailtest.NewCA("certplan wildcard CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(mailtest.CertSpec{Names: []string{"*.d.test", "d.test"}})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := ca.WriteCertPEM(caFile); err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, leaf)
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"d.test", true},
		{"mail.d.test", true},
		{"a.mail.d.test", false},
		{"xn--bcher-kva.d.test", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			covers := false
			for _, san := range leaf.Leaf.DNSNames {
				covers = covers || names.Covers(san, tc.name)
			}
			got := map[string]bool{
				"names.Covers":          covers,
				"x509.VerifyHostname":   leaf.Leaf.VerifyHostname(tc.name) == nil,
				"probe.MatchesName":     probe.MatchesName(leaf.Leaf.DNSNames, tc.name),
				"openssl -noservername": opensslVerifies(t, openssl, addr, caFile, tc.name),
			}
			for who, ok := range got {
				if ok != tc.want {
					t.Errorf("%s: %s says %v, want %v", tc.name, who, ok, tc.want)
				}
			}
		})
	}
}

// serveTLS serves cert on a loopback port to every client, and returns
// the address.
func serveTLS(t *testing.T, cert *tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				c.(*tls.Conn).Handshake()
			}(c)
		}
	}()
	return ln.Addr().String()
}

// opensslVerifies reports whether openssl, sending no SNI, verifies the
// certificate served at addr for name.
func opensslVerifies(t *testing.T, openssl, addr, caFile, name string) bool {
	t.Helper()
	cmd := exec.Command(openssl, "s_client", "-noservername", "-verify_hostname", name,
		"-verify_return_error", "-CAfile", caFile, "-connect", addr)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	ok := err == nil && strings.Contains(string(out), "Verify return code: 0 (ok)")
	if !ok && !strings.Contains(string(out), "hostname mismatch") {
		t.Fatalf("openssl failed for another reason than the name (exit %v):\n%s", err, out)
	}
	return ok
}
