package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
)

// TestPlanRefusedDANE: renew --repack would move the DANE-pinned
// mx.d.test off its SNI certificate onto the default, whose key (read from
// the state directory) its TLSA records do not pin: refused, exit 1, with
// the exact record to publish on a hint line of its own. Nothing is
// ordered (a dry run against no CA: the refusal comes first).
func TestPlanRefusedDANE(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Lock(); err != nil {
		t.Fatal(err)
	}
	ca, err := mailtest.NewCA("dane test CA")
	if err != nil {
		t.Fatal(err)
	}
	var defSPKI string
	for id, names := range map[string][]string{"default-127.0.0.2": {"mail.d.test", "mail.e.test"}, "sni-d.test": {"mx.d.test"}} {
		leaf := ca.MustIssue(names...)
		key, _ := mailtest.KeyPEM(leaf)
		c, err := st.SaveCert(id, store.Files{KeyPEM: key, CertPEM: mailtest.CertPEM(leaf)}, store.Meta{Names: names})
		if err != nil {
			t.Fatal(err)
		}
		if id == "default-127.0.0.2" {
			defSPKI = c.Meta.SPKISHA256
		}
	}
	ip := []string{"127.0.0.2"}
	if err := st.SavePlan(&model.Plan{Header: model.Header{Kind: model.KindPlan, Version: model.Version}, Certificates: []model.PlannedCert{
		{ID: "default-127.0.0.2", Names: []string{"mail.d.test", "mail.e.test"}, IPs: ip, Default: true},
		{ID: "sni-d.test", Names: []string{"mx.d.test"}, IPs: ip}}}); err != nil {
		t.Fatal(err)
	}
	st.Unlock()

	inv := `{"kind": "certplan.inventory", "version": 1, "server_ips": ["127.0.0.2"], "ca_identifier": "letsencrypt.org",
 "names": [
  {"name": "mail.d.test", "roles": ["mail"], "domains": ["d.test"], "addresses": ["127.0.0.2"], "here": "all", "caa_ok": true, "caa": {}},
  {"name": "mail.e.test", "roles": ["mail"], "domains": ["e.test"], "addresses": ["127.0.0.2"], "here": "all", "caa_ok": true, "caa": {}},
  {"name": "mx.d.test", "roles": ["mx"], "domains": ["d.test"], "addresses": ["127.0.0.2"], "here": "all", "caa_ok": true, "caa": {},
   "tlsa_dnssec": "secure", "tlsa": [{"usage": 3, "selector": 1, "matching_type": 1, "data": "` + strings.Repeat("ab", 32) + `"}]}],
 "domains": [{"domain": "d.test", "error": "", "names": ["mail.d.test", "mx.d.test"]}, {"domain": "e.test", "error": "", "names": ["mail.e.test"]}],
 "stats": {"domains": 2}}`
	invFile := filepath.Join(dir, "inv.json")
	if err := os.WriteFile(invFile, []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		var out, errw bytes.Buffer
		code := Run(context.Background(), append([]string{"renew", "--dry-run", "--state-dir", state, "--inventory", invFile,
			"--ca", "https://127.0.0.1:9/dir", "--max-names", "2"}, args...), strings.NewReader(""), &out, &errw, func(string) string { return "" })
		return code, errw.String()
	}
	code, errw := run("--repack")
	if code != ExitFailure {
		t.Fatalf("exit %d, want %d:\n%s", code, ExitFailure, errw)
	}
	for _, re := range []string{
		`(?m)^certplan: error: plan refused: mx\.d\.test would move to default-127\.0\.0\.2 \(from sni-d\.test\), whose key its TLSA records do not pin \(validated TLSA records at _25\._tcp\.mx\.d\.test\): it would stop mail from senders that check them$`,
		`(?m)^certplan: hint: publish these TLSA records beside the current ones \(RFC 7671 §8\.1\), wait two TTLs, then plan again:$`,
		`(?m)^  _25\._tcp\.mx\.d\.test\. IN TLSA 3 1 1 ` + defSPKI + `$`,
		`(?m)^certplan: hint: or plan without --repack`,
	} {
		if !regexp.MustCompile(re).MatchString(errw) {
			t.Errorf("stderr does not match %s:\n%s", re, errw)
		}
	}
}

// TestCARoots: Let's Encrypt's roots are found in the system bundle by
// subject; an unknown CA has none.
func TestCARoots(t *testing.T) {
	if _, err := os.Stat(caBundle); err != nil {
		t.Skipf("no system bundle: %v", err)
	}
	var got []string
	for _, c := range caRoots("letsencrypt.org") {
		got = append(got, c.Subject.CommonName)
	}
	slices.Sort(got)
	if strings.Join(got, ",") != "ISRG Root X1,ISRG Root X2" {
		t.Errorf("roots %v, want ISRG Root X1 and X2", got)
	}
	if r := caRoots("example.test"); r != nil {
		t.Errorf("unknown CA: %v", r)
	}
}
