package report

import (
	"reflect"
	"strings"
	"testing"

	"github.com/certplan/certplan/model"
)

func cov(name, ip string, port int, bs, bn, as, an, note string) model.PlanCoverage {
	return model.PlanCoverage{Name: name, IP: ip, Port: port, BeforeWithSNI: bs, BeforeWithoutSNI: bn,
		AfterWithSNI: as, AfterWithoutSNI: an, Note: note}
}

// TestBrokenRows: a name that verifies today for any client and will not
// after is broken by the plan, whatever its other rows say; rows with the
// same name, verdicts and note share one line listing their endpoints.
func TestBrokenRows(t *testing.T) {
	const ok, mm, er = model.VerdictOK, model.VerdictMismatch, model.VerdictError
	const excl = "excluded (caa-forbids): CAA at a.test allows only \"sectigo.com\""
	const sni = "SNI only: the default certificate of 127.0.0.2 has no room for it"
	const failed = "the endpoint failed today (connect: connection refused): the plan does not fix connections"
	rows := []model.PlanCoverage{
		// Excluded, works with and without SNI on two IPs and three ports.
		cov("a.a.test", "127.0.0.2", 25, ok, ok, mm, mm, excl),
		cov("a.a.test", "127.0.0.2", 587, ok, ok, mm, mm, excl),
		cov("a.a.test", "127.0.0.3", 25, ok, ok, mm, mm, excl),
		// The same reason, but today it works only with SNI here.
		cov("a.a.test", "::1", 25, ok, mm, mm, mm, excl),
		// Planned, on the default certificate today, SNI-only after.
		cov("b.b.test", "127.0.0.2", 25, ok, ok, ok, mm, sni),
		cov("b.b.test", "127.0.0.2", 993, er, er, er, er, failed),
		// Still broken on three ports of one IP: one line.
		cov("c.c.test", "127.0.0.2", 25, er, er, er, er, failed),
		cov("c.c.test", "127.0.0.2", 465, er, er, er, er, failed),
		cov("c.c.test", "127.0.0.2", 993, er, er, er, er, failed),
		cov("c.c.test", "127.0.0.3", 25, mm, mm, ok, ok, ""),
		// Fixed, and fine.
		cov("d.d.test", "127.0.0.2", 25, ok, mm, ok, ok, ""),
		cov("e.e.test", "127.0.0.2", 25, ok, ok, ok, ok, ""),
	}
	byPlan, still := brokenRows(rows)
	type line struct{ name, eps, lost, note string }
	var gotBy, gotStill []line
	for _, g := range byPlan {
		gotBy = append(gotBy, line{g.Name, g.Endpoints, g.Lost(), g.Note})
	}
	for _, g := range still {
		gotStill = append(gotStill, line{g.Name, g.Endpoints, "", g.Note})
	}
	wantBy := []line{
		{"a.a.test", "127.0.0.2:25,587, 127.0.0.3:25", "all clients", excl},
		{"a.a.test", "[::1]:25", "clients with SNI", excl},
		{"b.b.test", "127.0.0.2:25", "clients without SNI", sni},
	}
	wantStill := []line{
		{"b.b.test", "127.0.0.2:993", "", failed},
		{"c.c.test", "127.0.0.2:25,465,993", "", failed},
	}
	if !reflect.DeepEqual(gotBy, wantBy) {
		t.Errorf("broken by the plan:\ngot  %q\nwant %q", gotBy, wantBy)
	}
	if !reflect.DeepEqual(gotStill, wantStill) {
		t.Errorf("still broken:\ngot  %q\nwant %q", gotStill, wantStill)
	}

	p := &model.Plan{ID: "x", Coverage: rows}
	s := Summarize(p)
	if s.Regressed != 2 || s.Fixed != 1 || s.StillBroken != 1 || s.AlreadyOK != 1 ||
		!reflect.DeepEqual(s.BrokenByPlan, []string{"a.a.test", "b.b.test"}) {
		t.Errorf("summary %+v", s)
	}
	txt := string(Text(p, nil))
	for _, want := range []string{
		"BROKEN BY THE PLAN: 2 names that clients verify today will fail once the plan is deployed: a.a.test, b.b.test",
		"a.a.test on 127.0.0.2:25,587, 127.0.0.3:25: all clients verify today, after the plan they get a name mismatch; " + excl,
		"b.b.test on 127.0.0.2:25: clients without SNI verify today, after the plan they get a name mismatch; " + sni,
		"c.c.test  127.0.0.2:25,465,993  error/error -> error/error",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("text lacks %q:\n%s", want, txt)
		}
	}
	if n := strings.Count(txt, failed); n != 2 {
		t.Errorf("the connection failure is said %d times, want 2 (once per name):\n%s", n, txt)
	}
	if md := string(Markdown(p, nil)); !strings.Contains(md, "## Broken by the plan") || !strings.Contains(md, "| a.a.test | 127.0.0.2:25,587, 127.0.0.3:25 | all clients | mismatch / mismatch |") {
		t.Errorf("markdown lacks the broken-by-the-plan table:\n%s", md)
	}
	h := string(HTML(p, nil))
	for _, want := range []string{"<h2>Broken by the plan</h2>", "<td>clients without SNI</td>", "127.0.0.2:25,465,993"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

func TestListSome(t *testing.T) {
	if got := listSome([]string{"a", "b", "c"}, 2); got != "a, b and 1 more" {
		t.Errorf("got %q", got)
	}
	if got := listSome([]string{"a", "b"}, 2); got != "a, b" {
		t.Errorf("got %q", got)
	}
}
