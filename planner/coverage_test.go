package planner

import (
	"strings"
	"testing"

	"github.com/certplan/certplan/model"
)

func TestCoverage(t *testing.T) {
	inv := overLimitInventory()
	elsewhere := nm("mail.gone.test", []string{"gone.test"}, []string{"127.0.0.77"}, model.RoleMail)
	elsewhere.Here = model.HereNone
	inv.Names = append(inv.Names, elsewhere)
	row := func(name string, port int, with, without string) model.Coverage {
		return model.Coverage{Name: name, IP: "127.0.0.2", Port: port, Protocol: "smtp", WithSNI: with, WithoutSNI: without}
	}
	ok, mm, er := model.VerdictOK, model.VerdictMismatch, model.VerdictError
	pr := &model.ProbeReport{Header: model.Header{Kind: model.KindProbe, Version: 1}, Coverage: []model.Coverage{
		row("smtp.a.test", 25, ok, mm),                                                // default: fixed
		row("mail.a.test", 25, ok, mm),                                                // SNI only: still broken without SNI
		row("mail.gone.test", 25, ok, ok),                                             // excluded: works today, not after
		row("unknown.test", 25, mm, mm),                                               // not in the inventory
		row("mx.hoster.test", 587, er, er),                                            // endpoint down
		{Name: "smtp.b.test", IP: "127.0.0.3", Port: 25, WithSNI: mm, WithoutSNI: mm}, // not planned on that IP
	}}
	pr.Coverage[4].WithSNIDetail = "connection refused"
	p := mustPlan(t, inv, pr, Policy{MaxNames: 4}, nil)
	want := []struct {
		name       string
		with, wout string
		note       string
	}{
		{"mail.a.test", ok, mm, "SNI only"},
		{"mail.gone.test", mm, mm, "excluded (points-elsewhere)"},
		{"mx.hoster.test", er, er, "connection refused"},
		{"smtp.a.test", ok, ok, ""},
		{"smtp.b.test", mm, mm, "not planned on 127.0.0.3"},
		{"unknown.test", mm, mm, "not in the inventory"},
	}
	if len(p.Coverage) != len(want) {
		t.Fatalf("got %d rows, want %d", len(p.Coverage), len(want))
	}
	for i, w := range want {
		c := p.Coverage[i]
		if c.Name != w.name || c.AfterWithSNI != w.with || c.AfterWithoutSNI != w.wout || (w.note == "") != (c.Note == "") || !strings.Contains(c.Note, w.note) {
			t.Errorf("row %d: got %+v, want %+v", i, c, w)
		}
	}
	b, _ := model.Marshal(p)
	golden(t, "coverage", b)
}

// An excluded name that clients verify today through its own SNI
// certificate (cPanel's "Mail SNI", an Exim sni/ file) is not certplan's:
// no hook of it touches that certificate, so the plan predicts it stays
// as it is. One verified only through today's default certificate loses
// it when the plan's default replaces it, and the plan says so.
func TestCoverageUnmanagedLeftAsIs(t *testing.T) {
	inv := overLimitInventory()
	forbidden := nm("mail.caa.test", []string{"caa.test"}, []string{"127.0.0.2"}, model.RoleMail)
	forbidden.CAAOK, forbidden.CAA = false, model.CAAVerdict{Reason: "CAA allows only sectigo.com"}
	byDefault := nm("mail.dflt.test", []string{"dflt.test"}, []string{"127.0.0.2"}, model.RoleMail)
	byDefault.CAAOK, byDefault.CAA = false, model.CAAVerdict{Reason: "CAA allows only sectigo.com"}
	inv.Names = append(inv.Names, forbidden, byDefault)
	ok, mm := model.VerdictOK, model.VerdictMismatch
	leaf := func(serial string) *model.CertInfo { return &model.CertInfo{Serial: serial} }
	ep := func(sni, serial string) model.Endpoint {
		return model.Endpoint{IP: "127.0.0.2", Port: 25, Protocol: "smtp", SNI: sni, Leaf: leaf(serial)}
	}
	pr := &model.ProbeReport{Header: model.Header{Kind: model.KindProbe, Version: 1},
		Endpoints: []model.Endpoint{ep("", "d1"), ep("mail.caa.test", "s1"), ep("mail.dflt.test", "d1"), ep("unknown.test", "s2")},
		Coverage: []model.Coverage{
			{Name: "mail.caa.test", IP: "127.0.0.2", Port: 25, Protocol: "smtp", WithSNI: ok, WithoutSNI: mm},
			{Name: "mail.dflt.test", IP: "127.0.0.2", Port: 25, Protocol: "smtp", WithSNI: ok, WithoutSNI: ok},
			{Name: "unknown.test", IP: "127.0.0.2", Port: 25, Protocol: "smtp", WithSNI: ok, WithoutSNI: ok},
		}}
	p := mustPlan(t, inv, pr, Policy{MaxNames: 4}, nil)
	want := map[string]struct{ with, wout, note string }{
		"mail.caa.test":  {ok, mm, "not managed by certplan: left as served today"},
		"mail.dflt.test": {mm, mm, "served today by the default certificate of 127.0.0.2, which the plan replaces"},
		"unknown.test":   {ok, mm, "not managed by certplan: left as served today"},
	}
	if len(p.Coverage) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(p.Coverage), len(want), p.Coverage)
	}
	for _, c := range p.Coverage {
		w := want[c.Name]
		if c.AfterWithSNI != w.with || c.AfterWithoutSNI != w.wout || !strings.Contains(c.Note, w.note) {
			t.Errorf("%s: got after %s/%s (%s), want %s/%s (%s)", c.Name, c.AfterWithSNI, c.AfterWithoutSNI, c.Note, w.with, w.wout, w.note)
		}
	}
}
