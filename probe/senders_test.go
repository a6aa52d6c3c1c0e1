package probe_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/dane"
	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
)

// TestMXSenderVerdicts probes MX hosts on a Go SMTP listener whose served
// keys match, or do not match, their TLSA sets, under MTA-STS policies in
// each mode, and checks what DANE and MTA-STS senders would do.
func TestMXSenderVerdicts(t *testing.T) {
	ca, err := mailtest.NewCA("sender verdicts CA")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	leaf := func(names ...string) *tls.Certificate { return ca.MustIssue(names...) }
	mx1, mx2, mx3 := leaf("mx1.d.test"), leaf("mx2.d.test"), leaf("mx3.d.test")
	// mx2 sends its issuer too, so that "2 x x" has something to match.
	mx2.Certificate = append(mx2.Certificate, ca.Cert.Raw)
	rotated := leaf("mx3.d.test") // a new key whose record nobody published
	certs := mailtest.NewCerts(leaf("*.d.test"), mx1, mx2, mx3)
	smtp := start(t, mailtest.Config{Addr: "127.0.0.2:0", Protocol: model.ProtoSMTP, Certs: certs})
	imaps := start(t, mailtest.Config{Addr: "127.0.0.2:0", Protocol: model.ProtoIMAPS, Certs: certs})

	ee := func(c *tls.Certificate) []model.TLSA {
		return []model.TLSA{dane.Record(c.Leaf, dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256)}
	}
	mxName := func(name, domain string, tlsa []model.TLSA, dnssec string) model.Name {
		return model.Name{Name: name, Roles: []string{model.RoleMX}, Domains: []string{domain},
			Sources:   []model.Source{{Domain: domain, Role: model.RoleMX, Record: domain + ". MX 10 " + name + "."}},
			Addresses: []string{"127.0.0.2"}, Here: model.HereAll, TLSA: tlsa, TLSADNSSEC: dnssec}
	}
	unknown := mxName("mx6.d.test", "f.test", nil, "")
	unknown.TLSAError = "SERVFAIL"
	policy := func(mode string, mx ...string) *model.MTASTS {
		return &model.MTASTS{TXT: "v=STSv1; id=1", ID: "1", Policy: &model.MTASTSPolicy{Mode: mode, MaxAge: 86400, MX: mx}}
	}
	inv := &model.Inventory{
		ServerIPs: []string{"127.0.0.2"},
		Resolver:  model.ResolverValidating,
		Names: []model.Name{
			mxName("mx1.d.test", "a.test", ee(mx1), model.DNSSECSecure),
			mxName("mx2.d.test", "b.test", []model.TLSA{dane.Record(ca.Cert, dane.DANETA, dane.SelectorCert, dane.MatchSHA256)}, model.DNSSECSecure),
			mxName("mx3.d.test", "c.test", ee(rotated), model.DNSSECSecure),
			mxName("mx4.d.test", "e.test", ee(rotated), model.DNSSECInsecure),
			mxName("mx5.d.test", "g.test", ee(rotated), model.DNSSECUnknown),
			unknown,
			mxName("mx7.elsewhere.test", "h.test", nil, model.DNSSECSecure),
		},
		Domains: []model.Domain{
			{Domain: "a.test", MTASTS: policy(model.MTASTSEnforce, "mx1.d.test")},
			{Domain: "b.test", MTASTS: policy(model.MTASTSEnforce, "mx9.d.test")},
			{Domain: "c.test", MTASTS: policy(model.MTASTSTesting, "*.d.test")},
			{Domain: "e.test", MTASTS: &model.MTASTS{TXT: "v=STSv1; id=2", ID: "2", PolicyError: "fetch: connection refused"}},
			{Domain: "h.test", MTASTS: policy(model.MTASTSTesting, "*.elsewhere.test")},
		},
	}
	ports := []probe.Port{{Protocol: model.ProtoSMTP, Port: smtp.Port()}, {Protocol: model.ProtoIMAPS, Port: imaps.Port()}}
	r := probe.New(probe.Config{Roots: roots}).Run(context.Background(), probe.InventoryScope(inv, ports), nil)

	want := map[string]struct{ dane, daneDetail, sts, stsDetail string }{
		"mx1.d.test":         {"ok", "the leaf matches 3 1 1", "ok", "a.test (enforce): ok"},
		"mx2.d.test":         {"ok", "2 0 1", "fail", "b.test (enforce): the policy's mx patterns (mx9.d.test) do not match mx2.d.test"},
		"mx3.d.test":         {"fail", "the leaf's record would be 3 1 1 " + ee(mx3)[0].Data, "ok", "c.test (testing): ok"},
		"mx4.d.test":         {"none", "no secure TLSA records", "none", "e.test: policy not fetched: fetch: connection refused"},
		"mx5.d.test":         {"unknown", "were not validated", "none", ""},
		"mx6.d.test":         {"unknown", "lookup of _25._tcp.mx6.d.test failed: SERVFAIL", "none", ""},
		"mx7.elsewhere.test": {"none", "", "warn", "h.test (testing): certificate with SNI: mismatch; certificate without SNI: mismatch"},
	}
	seen := 0
	for _, c := range r.Coverage {
		if c.Protocol != model.ProtoSMTP {
			if c.DANE != "" || c.MTASTS != "" {
				t.Errorf("%s %s: sender verdicts on a non-SMTP row: %q %q", c.Name, c.Protocol, c.DANE, c.MTASTS)
			}
			continue
		}
		w, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected row %s", c.Name)
			continue
		}
		seen++
		if c.DANE != w.dane || !strings.Contains(c.DANEDetail, w.daneDetail) {
			t.Errorf("%s: dane %q (%s), want %q with %q", c.Name, c.DANE, c.DANEDetail, w.dane, w.daneDetail)
		}
		if c.MTASTS != w.sts || !strings.Contains(c.MTASTSDetail, w.stsDetail) {
			t.Errorf("%s: mta-sts %q (%s), want %q with %q", c.Name, c.MTASTS, c.MTASTSDetail, w.sts, w.stsDetail)
		}
	}
	if seen != len(want) {
		t.Errorf("%d SMTP rows, want %d", seen, len(want))
	}
	if r.Stats.Refused != 2 {
		t.Errorf("stats.refused = %d, want 2 (mx2 by MTA-STS, mx3 by DANE)", r.Stats.Refused)
	}
}

// TestSenderVerdictsJSON: rows without sender verdicts keep the JSON of
// reports from before; a report read back cannot match DANE again.
func TestSenderVerdictsJSON(t *testing.T) {
	b, err := json.Marshal(model.Coverage{Name: "imap.d.test", WithSNI: "ok", WithoutSNI: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Contains(s, "dane") || strings.Contains(s, "mta_sts") {
		t.Errorf("new fields not omitted: %s", s)
	}
	ci := model.CertInfo{SubjectCN: "mx.d.test"}
	ep := &model.Endpoint{Leaf: &ci, Chain: []model.CertInfo{ci}}
	mx := probe.MX{Pin: model.PinKey, TLSA: []model.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: strings.Repeat("ab", 32)}}}
	if v, d := probe.DANEVerdict(ep, "mx.d.test", mx, time.Now()); v != model.SenderUnknown || !strings.Contains(d, "read back") {
		t.Errorf("read back: %q %q", v, d)
	}
	failed := &model.Endpoint{Error: "ehlo: server does not offer STARTTLS", ErrorKind: model.ErrorKindNoSTARTTLS}
	if v, d := probe.DANEVerdict(failed, "mx.d.test", mx, time.Now()); v != model.SenderFail || !strings.Contains(d, "mandatory") {
		t.Errorf("no STARTTLS: %q %q", v, d)
	}
}
