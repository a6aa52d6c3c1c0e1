package monitor

import (
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/model"
)

func TestSenderFindings(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c := Cert{ID: "default-127.0.0.2", Names: []string{"mx.d.test"}, Issued: true, Serial: "01",
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(89 * 24 * time.Hour)}
	row := func(dane, sts string) model.Coverage {
		return model.Coverage{Name: "mx.d.test", IP: "127.0.0.2", Port: 25, WithSNI: "ok", WithoutSNI: "ok",
			DANE: dane, DANEDetail: "dane why", MTASTS: sts, MTASTSDetail: "d.test why"}
	}
	for _, tt := range []struct {
		name      string
		row       model.Coverage
		status    Status
		summary   string
		refusedMX int
	}{
		{"both ok", row("ok", "ok"), OK, "DANE and MTA-STS senders accept every MX", 0},
		{"nothing to validate", row("none", "none"), OK, "DANE and MTA-STS senders accept every MX", 0},
		{"no verdicts (no inventory)", row("", ""), OK, "every name verifies with and without SNI", 0},
		{"DANE refuses", row("fail", "ok"), Critical, "mx.d.test on 127.0.0.2:25: DANE senders refuse delivery (dane why)", 1},
		{"DANE unknown", row("unknown", "none"), Warning, "mx.d.test on 127.0.0.2:25: DANE state unknown (dane why)", 0},
		{"enforce refuses", row("none", "fail"), Critical, "mx.d.test on 127.0.0.2:25: MTA-STS senders refuse delivery (d.test why)", 1},
		{"testing fails", row("ok", "warn"), Warning, `mx.d.test on 127.0.0.2:25: MTA-STS senders report a failure ("enforce" would refuse delivery) (d.test why)`, 0},
		{"both refuse", row("fail", "fail"), Critical, "2 problems: mx.d.test on 127.0.0.2:25: DANE senders refuse delivery (dane why); ...", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Evaluate(now, []Cert{c}, []model.Coverage{tt.row}, nil, DefaultThresholds)
			if r.Status != tt.status || !strings.Contains(r.Summary, tt.summary) || r.RefusedMX != tt.refusedMX {
				t.Errorf("got %s %q refused %d, want %s with %q refused %d", r.Status, r.Summary, r.RefusedMX, tt.status, tt.summary, tt.refusedMX)
			}
			if tt.row.DANE == "" && strings.Contains(r.Summary, "senders accept") {
				t.Errorf("summary claims sender verdicts that were not made: %q", r.Summary)
			}
		})
	}
}

func TestWritePromSenders(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c := Cert{ID: "a", Issued: true, NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour)}
	cov := []model.Coverage{
		{Name: "mx1.d.test", IP: "127.0.0.2", Port: 25, WithSNI: "ok", WithoutSNI: "ok", DANE: "fail", MTASTS: "ok"},
		{Name: "mx2.d.test", IP: "127.0.0.2", Port: 25, WithSNI: "ok", WithoutSNI: "ok", DANE: "none", MTASTS: "warn"},
		{Name: "imap.d.test", IP: "127.0.0.2", Port: 993, WithSNI: "ok", WithoutSNI: "ok"},
	}
	var b strings.Builder
	if err := WriteProm(&b, Evaluate(now, []Cert{c}, cov, nil, DefaultThresholds), now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`certplan_mx_dane{name="mx1.d.test",ip="127.0.0.2",port="25",verdict="fail"} 1` + "\n",
		`certplan_mx_dane{name="mx2.d.test",ip="127.0.0.2",port="25",verdict="none"} 1` + "\n",
		`certplan_mx_mta_sts{name="mx2.d.test",ip="127.0.0.2",port="25",verdict="warn"} 1` + "\n",
		"certplan_mx_refused 1\n",
		"# TYPE certplan_mx_dane gauge\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `name="imap.d.test",ip="127.0.0.2",port="993",verdict`) {
		t.Errorf("a non-MX row has a sender series:\n%s", out)
	}
	// Without sender verdicts, no sender metrics (older outputs unchanged).
	b.Reset()
	_ = WriteProm(&b, Evaluate(now, []Cert{c}, cov[2:], nil, DefaultThresholds), now)
	if strings.Contains(b.String(), "certplan_mx_") {
		t.Errorf("sender metrics without sender verdicts:\n%s", b.String())
	}
}
