package emit

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certplan/certplan/model"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// perIPPlan: two IPs with their own default certificates, an SNI
// certificate on both with a wildcard, and one on the second IP only.
func perIPPlan() *model.Plan {
	return &model.Plan{ID: "p1", Certificates: []model.PlannedCert{
		{ID: "default-127.0.0.2", Names: []string{"server.main-domain.test", "mail.client1.test"}, IPs: []string{"127.0.0.2"}, Default: true},
		{ID: "default-127.0.0.3", Names: []string{"mx.hoster.test"}, IPs: []string{"127.0.0.3"}, Default: true},
		{ID: "sni-domain2.test", Names: []string{"*.domain3.test", "mail.domain2.test"}, IPs: []string{"127.0.0.2", "127.0.0.3"}},
		{ID: "sni-domain4.test", Names: []string{"Mail.Domain4.test"}, IPs: []string{"127.0.0.3"}},
	}}
}

// sharedPlan: one default certificate for both IPs (--default-cert shared).
func sharedPlan() *model.Plan {
	return &model.Plan{ID: "p2", Certificates: []model.PlannedCert{
		{ID: "default", Names: []string{"server.main-domain.test", "mx.hoster.test"}, IPs: []string{"127.0.0.2", "127.0.0.3"}, Default: true},
		{ID: "sni-domain2.test", Names: []string{"mail.domain2.test"}, IPs: []string{"127.0.0.2", "127.0.0.3"}},
	}}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./emit -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./emit -update rewrites it); got:\n%s", path, got)
	}
}

func TestGolden(t *testing.T) {
	o := Options{LiveDir: "/var/lib/certplan-live"}
	o24 := o
	o24.DovecotVersion = "2.4.1 (abcdef)"
	for _, tt := range []struct {
		name string
		plan *model.Plan
	}{{"per-ip", perIPPlan()}, {"shared", sharedPlan()}} {
		t.Run(tt.name, func(t *testing.T) {
			golden(t, tt.name+"-postfix", RenderPostfix(tt.plan, o).Text())
			golden(t, tt.name+"-dovecot", RenderDovecot(tt.plan, o))
			golden(t, tt.name+"-dovecot24", RenderDovecot(tt.plan, o24))
			golden(t, tt.name+"-exim", RenderExim(tt.plan, o))
		})
	}
}

// TestRenderNamesNoID: the configuration names no certificate ID, so a
// plan that changes IDs (the same names and IPs) emits the same text.
func TestRenderNamesNoID(t *testing.T) {
	o := Options{LiveDir: "/l"}
	a, b := perIPPlan(), perIPPlan()
	for i := range b.Certificates {
		b.Certificates[i].ID += "-renamed"
	}
	for _, r := range []func(*model.Plan) string{
		func(p *model.Plan) string { return RenderPostfix(p, o).Text() },
		func(p *model.Plan) string { return RenderDovecot(p, o) },
		func(p *model.Plan) string { return RenderExim(p, o) },
	} {
		if ta, tb := r(a), r(b); ta != tb || strings.Contains(ta, "default-127.0.0.2/") && strings.Contains(ta, "renamed") {
			t.Errorf("the text changes with the IDs:\n%s\n---\n%s", ta, tb)
		}
	}
}

// TestDovecotSettings: the parser that --check uses reads the emitted
// text into its nested sections.
func TestDovecotSettings(t *testing.T) {
	m := certSettings(RenderDovecot(perIPPlan(), Options{LiveDir: "/l"}))
	if got := m["local 127.0.0.3 / local_name mail.domain4.test / ssl_cert"]; got != "</l/sni/mail.domain4.test/fullchain.pem" {
		t.Errorf("got %q; all: %v", got, m)
	}
	if _, ok := m["local 127.0.0.2 / local_name mail.domain4.test / ssl_cert"]; ok {
		t.Error("mail.domain4.test, planned on 127.0.0.3 only, is served on 127.0.0.2")
	}
	if d := compareSettings(m, m, ""); len(d) != 0 {
		t.Errorf("a configuration differs from itself: %v", d)
	}
	have := map[string]string{}
	for k, v := range m {
		have[k] = v
	}
	delete(have, "local 127.0.0.2 / ssl_key")
	have["local 127.0.0.9 / ssl_cert"] = "</old"
	d := compareSettings(m, have, "")
	if len(d) != 2 || d[0].Where != "local 127.0.0.2 / ssl_key" || d[1].Where != "local 127.0.0.9 / ssl_cert" {
		t.Errorf("diffs %v", d)
	}
}
