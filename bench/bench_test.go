package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the harness's server child too.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	if os.Getenv(cliEnv) != "" {
		os.Exit(cliMain())
	}
	os.Exit(m.Run())
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// TestSmall runs the harness in --small mode and checks that it produced
// sane numbers: every stage ran, rates are positive, every domain was
// inventoried and every probe succeeded. It does not check the targets'
// ratios: CI machines are too noisy for that.
func TestSmall(t *testing.T) {
	var cfg config
	cfg.fill(true)
	cfg.DNSSockets = 2
	cfg.Transport = true
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := run(ctx, cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res.printTable(&out)
	t.Log("\n" + out.String())
	path := filepath.Join(t.TempDir(), "r.json")
	if err := res.writeJSON(path); err != nil {
		t.Fatal(err)
	}
	if res.Cores <= 0 || res.GoVersion == "" || res.Date == "" {
		t.Errorf("machine fields missing: %+v", res)
	}
	d := res.DNS
	if d.Questions < 10*cfg.Domains {
		t.Errorf("%d questions for %d domains, want at least 10 a domain", d.Questions, cfg.Domains)
	}
	for name, r := range map[string]struct {
		qps                   float64
		answered, lost, asked int64
	}{
		"responder": {d.Responder.QPS, d.Responder.Answered, d.Responder.Lost, d.Responder.Queries},
		"ceiling":   {d.Ceiling.QPS, d.Ceiling.Answered, d.Ceiling.Lost, d.Ceiling.Queries},
	} {
		if r.qps <= 0 || r.answered != int64(d.Questions) || r.lost != 0 {
			t.Errorf("dns %s: %+v, want every one of %d questions answered at a positive rate", name, r, d.Questions)
		}
	}
	// The Resolver alone asks every question once (more with the retries
	// over TCP of truncated answers).
	if tr := d.Transport; tr == nil || tr.Queries < int64(d.Questions) || tr.QPS <= 0 || tr.Ratio <= 0 || tr.ClientCPUus <= 0 {
		t.Errorf("dns transport: %+v, want each of %d questions asked at a positive rate", tr, d.Questions)
	}
	if d.Ceiling.Truncated == 0 {
		t.Error("dns ceiling: no answer went over TCP; the world has large CAA sets")
	}
	if c := res.TLS.Ceiling; c.PerSecond <= 0 || c.Handshakes != int64(cfg.Probes) || c.Failed != 0 {
		t.Errorf("tls ceiling: %+v, want %d handshakes at a positive rate", c, cfg.Probes)
	}
	checkInventory(t, cfg, res)
	checkProbe(t, cfg, res)
	checkPlan(t, cfg, res)
	t.Run("unbound", func(t *testing.T) { checkUnbound(t, cfg, res) })
	checkCLI(t, cfg, res)
}

// checkCLI checks the cli stage: both formats measured, the JSON
// document byte for byte model.Marshal's.
func checkCLI(t *testing.T, cfg config, res *Results) {
	if len(res.CLI) != len(cfg.CLIFormats) {
		t.Fatalf("cli: %d runs, want %d", len(res.CLI), len(cfg.CLIFormats))
	}
	for _, c := range res.CLI {
		if c.Domains != cfg.Domains || c.InventoryRSS == 0 || c.PlanRSS == 0 || c.InventoryBytes == 0 || (c.Format == "json" && !c.Marshalled) {
			t.Errorf("cli: %+v, want peak RSS measured and the JSON as model.Marshal writes it", c)
		}
	}
}

// checkUnbound checks the resolver stage: every domain inventoried
// through unbound, with the questions of the inventory against the
// responder. Without unbound it skips, unless CERTPLAN_REQUIRE_INTEGRATION=1
// (as in CI, where .ci/run installs it).
func checkUnbound(t *testing.T, cfg config, res *Results) {
	if unboundPath() == "" {
		if os.Getenv("CERTPLAN_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("unbound is not installed, and CERTPLAN_REQUIRE_INTEGRATION=1: apt-get install unbound")
		}
		t.Skip("unbound is not installed (apt-get install unbound)")
	}
	u := res.DNS.Unbound
	if u == nil {
		t.Fatal("unbound: not run")
	}
	inv := res.DNS.Inventory
	if u.Domains != cfg.UnboundDomains || u.Elapsed <= 0 || u.Failed != inv.DomainsFailed || u.UnboundCPU <= 0 {
		t.Errorf("unbound: %+v, want %d domains, %d failed (the NXDOMAIN ones)", u, cfg.UnboundDomains, inv.DomainsFailed)
	}
	// A cold cache: unbound asks the responder about as many questions
	// as certplan asks it (the answers to names shared between domains
	// come from its cache, and certplan's own cache asks them once too).
	if q := float64(u.Questions-u.DANE) / float64(u.Domains); q > 15 || u.DANE == 0 || u.Forwarded < int64(u.Questions)*9/10 {
		t.Errorf("unbound: %.2f questions a domain (want at most 15), %d forwarded for %d asked", q, u.Forwarded, u.Questions)
	}
	if u.CertplanCPU <= 0 || u.ResponderCPU <= 0 || u.ForwardedByType["A"] == 0 {
		t.Errorf("unbound: cpu certplan %s, responder %s, forwarded by type %v: want all measured", u.CertplanCPU, u.ResponderCPU, u.ForwardedByType)
	}
	// The ceiling asks synth's copy of certplan's questions: as many as
	// certplan asked (which counts a truncated answer's retry over TCP
	// too), every one answered (a loss is a question a cold unbound did
	// not answer within 5 s, which a quiet machine never sees; 1 % is room
	// for a loaded one).
	c := u.Ceiling
	if c == nil {
		t.Fatal("unbound: no ceiling")
	}
	if c.Queries+c.Truncated != int64(u.Questions) || c.Lost > c.Queries/100 || c.Answered+c.Lost != c.Queries || c.Elapsed <= 0 || c.UnboundCPU <= 0 {
		t.Errorf("unbound ceiling: %+v; want the %d questions certplan asked, answered", c, u.Questions)
	}
}
