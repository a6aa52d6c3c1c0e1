package apply

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
)

// TestRegressionReported: names certplan does not manage that clients
// verify today are probed before and after the deploy. One with its own SNI
// certificate (own.d.test) stays as it is; one that only today's default
// certificate listed (legacy.d.test, an excluded name) fails once the
// plan's default replaces it, and the report names it (ResultPartial: the
// CLI exits 3).
func TestRegressionReported(t *testing.T) {
	e := newEnv(t)
	legacyCA, err := mailtest.NewCA("legacy CA")
	if err != nil {
		t.Fatal(err)
	}
	for file, names := range map[string][]string{
		"default.pem": {"server.d.test", "legacy.d.test"},
		"own.pem":     {"own.d.test"},
	} {
		c := legacyCA.MustIssue(names...)
		key, err := mailtest.KeyPEM(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.deployDir, file), append(key, mailtest.CertPEM(c)...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(sni string, c *mailtest.CA) {
		p := probe.New(probe.Config{Timeout: 3 * time.Second})
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			ep, err := p.Probe(t.Context(), probe.Target{IP: "127.0.0.2", Port: e.mail.Port(), Protocol: model.ProtoSMTPS, SNI: sni})
			if err == nil && ep.Leaf != nil && ep.Leaf.Issuer == c.Cert.Subject.String() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("SNI %q: the legacy certificate is not served: %+v %v", sni, ep, err)
			}
		}
	}
	waitFor("legacy.d.test", legacyCA)
	waitFor("own.d.test", legacyCA)

	p := plan("p1", defCert("mail.d.test"))
	p.Policy.ServerIPs = []string{"127.0.0.2"}
	for _, n := range []string{"legacy.d.test", "own.d.test"} {
		p.Coverage = append(p.Coverage, model.PlanCoverage{Name: n, IP: "127.0.0.2", Port: e.mail.Port()})
	}
	r := e.run(p, ModeIssue, func(o *Options) {
		roots, _ := e.ca.IssuerPool()
		roots.AddCert(legacyCA.Cert)
		o.Verify.Prober = probe.New(probe.Config{Roots: roots, Timeout: 3 * time.Second, Now: o.Now})
	})
	checkVerified(t, r, 1)
	if r.Result() != ResultPartial {
		t.Errorf("result %v, want partial", r.Result())
	}
	got := map[string]bool{}
	for _, g := range r.Regressed {
		got[g.Name+map[bool]string{true: " with SNI", false: " without SNI"}[g.SNI]] = true
		if g.Before != model.VerdictOK || g.After != model.VerdictMismatch || g.Port != e.mail.Port() || g.IP != "127.0.0.2" {
			t.Errorf("regression: %+v", g)
		}
	}
	if len(got) != 2 || !got["legacy.d.test with SNI"] || !got["legacy.d.test without SNI"] {
		t.Errorf("regressed: %+v, want legacy.d.test with and without SNI", r.Regressed)
	}
}
