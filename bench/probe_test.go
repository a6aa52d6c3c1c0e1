package main

import "testing"

// checkProbe checks the probe stages.
func checkProbe(t *testing.T, cfg config, res *Results) {
	t.Helper()
	p := res.TLS.Probe
	if p == nil {
		t.Fatal("probe: not run")
	}
	if p.Endpoints != cfg.Probes || p.Errors != 0 || p.PerSecond <= 0 || p.Ratio <= 0 {
		t.Errorf("probe: %+v, want %d endpoints without error at a positive rate", p, cfg.Probes)
	}
	if p.CoverageOK != p.CoverageAll || p.CoverageAll == 0 {
		t.Errorf("probe: %d of %d coverage rows verify with SNI, want all", p.CoverageOK, p.CoverageAll)
	}
	if len(res.TLS.Dead) == 0 {
		t.Fatal("dead hosts: not run")
	}
	for _, d := range res.TLS.Dead {
		// Every dead host times out. A live one may too when the machine
		// is shared (handshakes over the 1 s timeout: seen at load 25),
		// which says nothing of the probe; one that errors otherwise does.
		if d.Endpoints != cfg.DeadProbes || d.Dead != cfg.DeadProbes/10 || d.TimedOut < d.Dead || d.LiveErrors != 0 {
			t.Errorf("dead hosts: %+v, want %d endpoints, a tenth timing out, no live errors", d, cfg.DeadProbes)
		}
		if d.TimedOut > d.Dead {
			t.Logf("dead hosts: %d live endpoints timed out too (a loaded machine)", d.TimedOut-d.Dead)
		}
		// In parallel, not in series; the exact bound is for quiet machines.
		if d.Elapsed >= d.InSeries/2 {
			t.Errorf("dead hosts: %s, want well under the %s it takes in series", d.Elapsed, d.InSeries)
		}
	}
}

// checkPlan checks the planning stage.
func checkPlan(t *testing.T, cfg config, res *Results) {
	t.Helper()
	if len(res.Plan) != len(cfg.PlanNames) {
		t.Fatalf("plan: %d runs, want %d", len(res.Plan), len(cfg.PlanNames))
	}
	for i, p := range res.Plan {
		// Every name fits in 100-name certificates over 4 IPs.
		if p.Names != cfg.PlanNames[i] || p.Elapsed <= 0 || p.Certificates < p.Names/100 {
			t.Errorf("plan: %+v, want %d names in at least %d certificates", p, cfg.PlanNames[i], cfg.PlanNames[i]/100)
		}
	}
}
