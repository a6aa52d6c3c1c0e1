package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
)

// checkFixture is a state dir with one issued certificate that a mail
// listener on 127.0.0.2 serves, as after "certplan issue".
type checkFixture struct {
	dir, caFile, ports string
	certs              *mailtest.Certs
	ca                 *mailtest.CA
}

func newCheckFixture(t *testing.T, names []string, notAfter time.Time) *checkFixture {
	t.Helper()
	f := &checkFixture{dir: t.TempDir()}
	ca, err := mailtest.NewCA("check test CA")
	if err != nil {
		t.Fatal(err)
	}
	f.ca = ca
	f.caFile = filepath.Join(f.dir, "ca.pem")
	if err := ca.WriteCertPEM(f.caFile); err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(mailtest.CertSpec{Names: names, NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(f.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Lock(); err != nil {
		t.Fatal(err)
	}
	defer st.Unlock()
	key, _ := mailtest.KeyPEM(leaf)
	if _, err := st.SaveCert("default-127.0.0.2", store.Files{KeyPEM: key, CertPEM: mailtest.CertPEM(leaf)},
		store.Meta{ID: "default-127.0.0.2", Names: names, Serial: leaf.Leaf.SerialNumber.Text(16),
			NotBefore: leaf.Leaf.NotBefore, NotAfter: leaf.Leaf.NotAfter}); err != nil {
		t.Fatal(err)
	}
	if err := st.SavePlan(&model.Plan{Header: model.Header{Kind: model.KindPlan, Version: model.Version},
		Certificates: []model.PlannedCert{{ID: "default-127.0.0.2", Names: names, IPs: []string{"127.0.0.2"}, Default: true}}}); err != nil {
		t.Fatal(err)
	}
	f.certs = mailtest.NewCerts(leaf)
	srv, err := mailtest.Start(mailtest.Config{Addr: "127.0.0.2:0", Protocol: model.ProtoSMTPS, Certs: f.certs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	f.ports = "smtps:" + strconv.Itoa(srv.Port())
	return f
}

func (f *checkFixture) run(t *testing.T, now string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errw bytes.Buffer
	env := func(k string) string {
		if k == "CERTPLAN_NOW" {
			return now
		}
		return ""
	}
	base := []string{"check", "--state-dir", filepath.Join(f.dir, "state"), "--ports", f.ports, "--ca-file", f.caFile, "--timeout", "3s"}
	code = Run(context.Background(), append(base, args...), strings.NewReader(""), &out, &errw, env)
	return code, out.String(), errw.String()
}

func TestCheck(t *testing.T) {
	notAfter := time.Now().Add(60 * 24 * time.Hour).Truncate(time.Second)
	names := []string{"mail.domain2.test", "server.main-domain.test"}
	f := newCheckFixture(t, names, notAfter)
	now := time.Now().UTC().Format(time.RFC3339)

	code, out, errw := f.run(t, now)
	if code != 0 || !strings.HasPrefix(out, "CERTPLAN OK - 1 certificates, next expiry in 60 days (default-127.0.0.2)") ||
		!strings.Contains(out, "every name verifies with and without SNI") {
		t.Fatalf("fresh: exit %d\n%s%s", code, out, errw)
	}

	// 10 days before expiry: WARNING, and the metrics say so.
	prom := filepath.Join(f.dir, "certplan.prom")
	code, out, _ = f.run(t, notAfter.Add(-10*24*time.Hour).UTC().Format(time.RFC3339), "--prom-file", prom)
	if code != 1 || !strings.Contains(out, "WARNING: default-127.0.0.2: expires in 10.0 days") {
		t.Errorf("10 days left: exit %d\n%s", code, out)
	}
	b, err := os.ReadFile(prom)
	if err != nil || !strings.Contains(string(b), "certplan_check_status 1\n") ||
		!strings.Contains(string(b), `certplan_name_verified{name="mail.domain2.test",ip="127.0.0.2",port="`) {
		t.Errorf("prom file: %v\n%s", err, b)
	}

	// The server starts serving another certificate: CRITICAL for the names it lacks.
	other, _ := f.ca.Issue(mailtest.CertSpec{Names: []string{"server.main-domain.test"}})
	f.certs.Set(other)
	code, out, _ = f.run(t, now)
	if code != 2 || !strings.Contains(out, "CRITICAL: mail.domain2.test on 127.0.0.2:") || !strings.Contains(out, "without SNI: mismatch") {
		t.Errorf("wrong certificate served: exit %d\n%s", code, out)
	}
	// Without probing, the dates alone are fine.
	if code, out, _ = f.run(t, now, "--no-probe"); code != 0 {
		t.Errorf("--no-probe: exit %d\n%s", code, out)
	}
	// JSON for machines.
	if code, out, _ = f.run(t, now, "--no-probe", "--format", "json"); code != 0 || !strings.Contains(out, `"status": "OK"`) {
		t.Errorf("json: exit %d\n%s", code, out)
	}
}

func TestCheckUnknown(t *testing.T) {
	var out, errw bytes.Buffer
	code := Run(context.Background(), []string{"check", "--state-dir", filepath.Join(t.TempDir(), "nope")}, strings.NewReader(""), &out, &errw, func(string) string { return "" })
	if code != 3 || !strings.Contains(errw.String(), "certplan: error: state dir") || !strings.Contains(errw.String(), `hint: run "certplan issue" first`) {
		t.Errorf("missing state dir: exit %d, stderr %q", code, errw.String())
	}
	errw.Reset()
	code = Run(context.Background(), []string{"check", "--warning-days", "soon"}, strings.NewReader(""), &out, &errw, func(string) string { return "" })
	if code != 3 {
		t.Errorf("bad flag: exit %d, want 3 (UNKNOWN); stderr %q", code, errw.String())
	}
}
