package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/monitor"
)

// An interrupt (the root context canceled by SIGINT) is reported as such,
// not as Go's "context canceled", and leaves no --output file behind.
func TestInterruptedSaysSo(t *testing.T) {
	dns := dnstest.New()
	if err := dns.AddZone("slow.test", "@ IN MX 10 mail.slow.test.\n"); err != nil {
		t.Fatal(err)
	}
	dns.SetDelay("slow.test", 1500*time.Millisecond)
	if err := dns.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	out := filepath.Join(t.TempDir(), "inv.json")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := Run(ctx, []string{"inventory", "--resolver", dns.Addr(), "-o", out, "slow.test"},
		strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v to stop after the interrupt", d)
	}
	if code != ExitFailure {
		t.Errorf("exit %d, want %d", code, ExitFailure)
	}
	if got := stderr.String(); !strings.Contains(got, "certplan: error: interrupted\n") || strings.Contains(got, "context canceled") {
		t.Errorf("stderr %q, want \"certplan: error: interrupted\" and no \"context canceled\"", got)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s exists after the interrupt (err %v)", out, err)
	}
}

// A renewal that would drop names the certificates cover while some domains
// fail their lookups says so on stderr, naming both; without failed domains,
// or without dropped names, it says nothing.
func TestWarnDroppedWhileFailing(t *testing.T) {
	prev := &model.Plan{Certificates: []model.PlannedCert{
		{ID: "default-127.0.0.2", Names: []string{"mail.a.test", "mail.b.test", "mail.host.test"}},
	}}
	next := &model.Plan{Certificates: []model.PlannedCert{
		{ID: "default-127.0.0.2", Names: []string{"mail.a.test", "mail.host.test"}},
	}}
	failed := &model.Inventory{
		Domains: []model.Domain{{Domain: "a.test"}, {Domain: "b.test", Error: "MX b.test: SERVFAIL from 127.0.0.1:53"}},
		Stats:   model.InventoryStats{Domains: 2, DomainsFailed: 1},
	}
	fine := &model.Inventory{Domains: []model.Domain{{Domain: "a.test"}}, Stats: model.InventoryStats{Domains: 1}}
	for _, tt := range []struct {
		name       string
		inv        *model.Inventory
		prev, plan *model.Plan
		want       string
	}{
		{"dropped while failing", failed, prev, next, "certplan: warning: 1 domains failed their DNS lookups (b.test), and 1 names the certificates cover now leave them (mail.b.test)"},
		{"no failed domain", fine, prev, next, ""},
		{"nothing dropped", failed, prev, prev, ""},
		{"no previous plan", failed, nil, next, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			warnDroppedWhileFailing(&globals{Stderr: &stderr}, tt.inv, tt.prev, tt.plan)
			if got := stderr.String(); tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("stderr %q, want %q", got, tt.want)
			}
		})
	}
}

// When verification finds the new certificates not served, the hint names
// the likely cause: no deploy hook, or hooks that do not reload.
func TestNotServedHint(t *testing.T) {
	for _, tt := range []struct {
		name  string
		hooks []string
		want  string
	}{
		{"no hook", nil, "no --deploy-hook was given"},
		{"hooks", []string{"/etc/certplan/hooks/postfix.sh"}, "the deploy hooks ran, but the servers still serve other certificates"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := notServedHint(tt.hooks, "/var/lib/certplan"); !strings.Contains(got, tt.want) {
				t.Errorf("hint %q, want one with %q", got, tt.want)
			}
		})
	}
}

// The Nagios perfdata's min_days_left is the least days left, negative for
// an expired certificate, whatever the order of the certificates.
func TestCheckPerfdataMinDaysLeft(t *testing.T) {
	for _, tt := range []struct {
		name string
		days []float64
		want string
	}{
		{"expired first", []float64{-3, 50}, " min_days_left=-3.0\n"},
		{"expired last", []float64{50, -3}, " min_days_left=-3.0\n"},
		{"all expired", []float64{-1, -3}, " min_days_left=-3.0\n"},
		{"all valid", []float64{20, 50}, " min_days_left=20.0\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := monitor.Result{Status: monitor.Critical, Summary: "x"}
			for i, d := range tt.days {
				r.Certs = append(r.Certs, monitor.CertReport{ID: fmt.Sprint("c", i), Issued: true, DaysLeft: d})
			}
			var b strings.Builder
			writeCheckText(&b, r)
			if first, _, _ := strings.Cut(b.String(), "\n"); !strings.HasSuffix(first+"\n", tt.want) {
				t.Errorf("status line %q, want it to end in %q", first, tt.want)
			}
		})
	}
}

// Planning inline must not take most names off the certificates unless the
// admin says so: "certplan issue new.test" (one domain instead of every
// source) would otherwise reissue the host's certificates with new.test's
// names alone.
func TestCoverageGuard(t *testing.T) {
	names := func(prefix string, n int) []string {
		var out []string
		for i := 0; i < n; i++ {
			out = append(out, fmt.Sprintf("%s%02d.test", prefix, i))
		}
		return out
	}
	prev := &model.Plan{Certificates: []model.PlannedCert{
		{ID: "default-127.0.0.2", Names: names("mail.client", 10)},
		{ID: "default-127.0.0.3", Names: names("smtp.client", 10)},
	}}
	plan := func(keep int) *model.Plan {
		return &model.Plan{Certificates: []model.PlannedCert{{ID: "default-127.0.0.2", Names: names("mail.client", keep)}}}
	}
	for _, tt := range []struct {
		name    string
		plan    *model.Plan
		allow   bool
		wantErr string
	}{
		{"one domain instead of all", plan(1), false, "the new plan drops 19 of the 20 names the applied certificates cover (mail.client01.test,"},
		{"half dropped", plan(10), false, ""},
		{"said so", plan(1), true, ""},
		{"nothing dropped", prev, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := coverageGuard(&applyOptions{allowReduced: tt.allow}, prev, tt.plan)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
	if err := coverageGuard(&applyOptions{}, nil, plan(1)); err != nil {
		t.Errorf("first issue (no applied plan): %v", err)
	}
}

// An interrupted probe writes no report: the handshakes cut short would read
// as timeouts, and a plan made from the file would believe them.
func TestProbeInterruptedWritesNothing(t *testing.T) {
	s, err := mailtest.Start(mailtest.Config{Addr: "127.0.0.2:0", Protocol: model.ProtoSMTP, Mode: mailtest.Silent})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := filepath.Join(t.TempDir(), "probe.json")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	var stdout, stderr bytes.Buffer
	code := Run(ctx, []string{"probe", "--timeout", "30s", "--format", "json", "-o", out, "--target", "smtp:" + s.Addr(), "--sni", "mail.example.test"},
		strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	if code != ExitFailure || !strings.Contains(stderr.String(), "certplan: error: interrupted") {
		t.Errorf("exit %d, stderr %q; want %d and \"interrupted\"", code, stderr.String(), ExitFailure)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s written after the interrupt (err %v)", out, err)
	}
}

// An interrupted check is Nagios UNKNOWN (3), not WARNING (1).
func TestCheckInterruptedIsUnknown(t *testing.T) {
	f := newCheckFixture(t, []string{"mail.domain2.test"}, time.Now().Add(60*24*time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errw bytes.Buffer
	code := Run(ctx, []string{"check", "--state-dir", filepath.Join(f.dir, "state"), "--ports", f.ports, "--ca-file", f.caFile},
		strings.NewReader(""), &out, &errw, func(string) string { return "" })
	if code != 3 || !strings.Contains(errw.String(), "certplan: error: interrupted") {
		t.Errorf("exit %d, stderr %q; want 3 and \"interrupted\"", code, errw.String())
	}
}
