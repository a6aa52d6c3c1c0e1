package monitor

import (
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
)

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	good := func(id string, issuedAgo time.Duration) Cert {
		nb := now.Add(-issuedAgo)
		return Cert{ID: id, Names: []string{"mail.domain2.test"}, IPs: []string{"127.0.0.2"}, Issued: true,
			Serial: "01", NotBefore: nb, NotAfter: nb.Add(90 * day)}
	}
	okRow := model.Coverage{Name: "mail.domain2.test", IP: "127.0.0.2", Port: 25, WithSNI: "ok", WithoutSNI: "ok"}
	tests := []struct {
		name    string
		certs   []Cert
		cov     []model.Coverage
		sniOnly []string
		status  Status
		summary string
	}{
		{"fresh and verified", []Cert{good("default-127.0.0.2", day)}, []model.Coverage{okRow}, nil, OK,
			"1 certificates, next expiry in 89 days (default-127.0.0.2), next renewal 2027-01-25 12:00 UTC, every name verifies with and without SNI"},
		{"nothing", nil, nil, nil, Unknown, `no certificates planned or issued: run "certplan issue" first`},
		{"planned, not issued", []Cert{{ID: "sni-domain2.test"}}, nil, nil, Critical, "sni-domain2.test: planned but not issued"},
		{"planned, first issuance failing", []Cert{{ID: "sni-domain2.test", Failures: 3, LastError: "urn:ietf:params:acme:error:rateLimited"}}, nil, nil, Critical,
			"sni-domain2.test: planned but not issued; the last 3 attempts to issue it failed: urn:ietf:params:acme:error:rateLimited"},
		{"planned, first issuance failed once", []Cert{{ID: "b", Failures: 1}}, nil, nil, Critical, "b: planned but not issued; the last attempt to issue it failed"},
		{"10 days left", []Cert{good("a", 80*day)}, nil, nil, Warning, "a: expires in 10.0 days (2026-12-07 12:00 UTC)"},
		{"3 days left", []Cert{good("a", 87*day)}, nil, nil, Critical, "a: expires in 3.0 days (2026-11-30 12:00 UTC)"},
		{"expired", []Cert{good("a", 91*day)}, nil, nil, Critical, "a: expired 2026-11-26 12:00 UTC"},
		{"renewal overdue", []Cert{good("a", 62*day)}, nil, nil, Warning, "a: renewal overdue since 2026-11-25 12:00 UTC"},
		{"ARI window still open: not overdue", []Cert{func() Cert {
			c := good("a", 62*day)
			c.ARI = &planner.Window{Start: now.Add(-day), End: now.Add(day)}
			return c
		}()}, nil, nil, OK, ""},
		{"renewal failing", []Cert{func() Cert {
			c := good("a", 61*day)
			c.Failures, c.LastError = 2, "urn:ietf:params:acme:error:rateLimited"
			return c
		}()}, nil, nil, Warning, "a: the last 2 renewal attempts failed: urn:ietf:params:acme:error:rateLimited"},
		{"mismatch without SNI", []Cert{good("a", day)}, []model.Coverage{{Name: "smtp.domain2.test", IP: "127.0.0.2", Port: 587,
			WithSNI: "ok", WithoutSNI: "mismatch", WithoutSNIDetail: "server.main-domain.test"}}, nil, Critical,
			"smtp.domain2.test on 127.0.0.2:587 without SNI: mismatch (server.main-domain.test)"},
		{"sni-only name without SNI is expected", []Cert{good("a", day)}, []model.Coverage{{Name: "smtp.domain2.test", IP: "127.0.0.2", Port: 587,
			WithSNI: "ok", WithoutSNI: "mismatch"}}, []string{"smtp.domain2.test"}, OK, ""},
		{"a name under an sni-only wildcard without SNI is expected", []Cert{good("a", day)}, []model.Coverage{{Name: "smtp.domain2.test", IP: "127.0.0.2", Port: 587,
			WithSNI: "ok", WithoutSNI: "mismatch"}}, []string{"*.domain2.test"}, OK, ""},
		{"a wildcard covers one label only", []Cert{good("a", day)}, []model.Coverage{{Name: "a.smtp.domain2.test", IP: "127.0.0.2", Port: 587,
			WithSNI: "ok", WithoutSNI: "mismatch"}}, []string{"*.domain2.test"}, Critical, ""},
		{"two problems", []Cert{good("a", 87*day)}, []model.Coverage{{Name: "x.test", IP: "127.0.0.2", Port: 993, WithSNI: "error", WithoutSNI: "error"}}, nil, Critical,
			"3 problems: a: expires in 3.0 days (2026-11-30 12:00 UTC); ..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Evaluate(now, tt.certs, tt.cov, tt.sniOnly, DefaultThresholds)
			if r.Status != tt.status {
				t.Errorf("status %s, want %s (findings %+v)", r.Status, tt.status, r.Findings)
			}
			if tt.summary != "" && r.Summary != tt.summary {
				t.Errorf("summary\n got %q\nwant %q", r.Summary, tt.summary)
			}
		})
	}
}

func TestWriteProm(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	r := Evaluate(now, []Cert{{ID: "default-127.0.0.2", Names: []string{"a.test", "b.test"}, Issued: true,
		NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour)}, {ID: `odd"id`}},
		[]model.Coverage{{Name: "a.test", IP: "127.0.0.2", Port: 25, WithSNI: "ok", WithoutSNI: "mismatch"}}, nil, DefaultThresholds)
	var b strings.Builder
	if err := WriteProm(&b, r, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"certplan_check_status 2\n",
		"certplan_check_timestamp_seconds 1795780800\n",
		`certplan_certificate_not_after_seconds{id="default-127.0.0.2"} 1803556800` + "\n",
		`certplan_certificate_issued{id="odd\"id"} 0` + "\n",
		`certplan_certificate_names{id="default-127.0.0.2"} 2` + "\n",
		`certplan_name_verified{name="a.test",ip="127.0.0.2",port="25",sni="no"} 0` + "\n",
		`certplan_name_verified{name="a.test",ip="127.0.0.2",port="25",sni="yes"} 1` + "\n",
		"certplan_broken_names 1\n",
		"# TYPE certplan_renewal_failures gauge\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	// Every sample line belongs to a declared metric.
	declared := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "TYPE" {
			declared[f[2]] = true
		} else if !strings.HasPrefix(line, "#") {
			name, _, _ := strings.Cut(strings.Fields(line)[0], "{")
			if !declared[name] {
				t.Errorf("sample before its TYPE line: %q", line)
			}
		}
	}
}

func TestAddInputErrors(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c := Cert{ID: "default-127.0.0.2", Names: []string{"mail.domain2.test"}, Issued: true, Serial: "01",
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(89 * 24 * time.Hour)}
	plan := &model.Plan{Warnings: []model.Warning{
		{Code: model.WarnSNIOnly, Name: "x.test", Message: "not an input error"},
		{Code: model.WarnInputError, Name: "/etc/userdomains", Message: `/etc/userdomains:3: "bad domain": not a domain`},
	}}
	r := Evaluate(now, []Cert{c}, nil, nil, DefaultThresholds)
	if r.Status != OK {
		t.Fatalf("before: %v", r.Status)
	}
	r.AddInputErrors(plan)
	if r.Status != Warning || len(r.Findings) != 1 {
		t.Fatalf("got %v, %+v; want one WARNING", r.Status, r.Findings)
	}
	if want := `input error: /etc/userdomains:3: "bad domain": not a domain`; r.Findings[0].Message != want || r.Summary != want {
		t.Errorf("got %q (summary %q), want %q", r.Findings[0].Message, r.Summary, want)
	}
	// A CRITICAL stays CRITICAL, and comes first.
	r = Evaluate(now, []Cert{{ID: "x"}}, nil, nil, DefaultThresholds)
	r.AddInputErrors(plan)
	if r.Status != Critical || r.Findings[0].Status != Critical {
		t.Errorf("got %v, first %+v", r.Status, r.Findings[0])
	}
}
