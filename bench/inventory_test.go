package main

import "testing"

// checkInventory checks the DNS stages that run certplan's inventory.
func checkInventory(t *testing.T, cfg config, res *Results) {
	t.Helper()
	inv := res.DNS.Inventory
	if inv == nil {
		t.Fatal("inventory: not run")
	}
	// Every domain inventoried; only the world's NXDOMAIN domains fail.
	if inv.Domains != cfg.Domains || inv.DomainsFailed != inv.FailedWant || inv.Names == 0 {
		t.Errorf("inventory: %d domains, %d failed (want %d, %d), %d names", inv.Domains, inv.DomainsFailed, cfg.Domains, inv.FailedWant, inv.Names)
	}
	if inv.Queries == 0 || inv.QPS <= 0 || inv.DomainsPerSec <= 0 || inv.Ratio <= 0 || inv.PeakHeap == 0 || inv.PeakRSS == 0 {
		t.Errorf("inventory: %+v, want positive rates and memory", inv)
	}
	if inv.TCP == 0 {
		t.Error("inventory: no query went over TCP; the world has answers too large for UDP")
	}
	// The ceiling asks what the inventory asks: the same questions of
	// each type, but for retries (over TCP, or of a query lost on a busy
	// machine) on either side.
	for typ, n := range res.DNS.CeilingByType {
		slack := inv.TCP + res.DNS.Ceiling.Truncated + n/200
		if m := inv.ByType[typ]; m < n-slack || m > n+slack {
			t.Errorf("inventory asked %d %s questions, the ceiling %d: the mixes differ (inventory %v, ceiling %v)", m, typ, n, inv.ByType, res.DNS.CeilingByType)
		}
	}
	if len(inv.ByType) != len(res.DNS.CeilingByType) {
		t.Errorf("inventory asked %v, the ceiling %v", inv.ByType, res.DNS.CeilingByType)
	}
	// Issue 20: at most 15 questions a domain (those DANE added apart),
	// and the cut of SRV owners under an NXDOMAIN finds the same as asking
	// them all, in fewer.
	if q := float64(inv.Queries-inv.DANEQueries) / float64(inv.Domains); q > 15 || inv.DANEQueries == 0 {
		t.Errorf("inventory: %.2f questions a domain (and %d for DANE), want at most 15 (and some)", q, inv.DANEQueries)
	}
	if c := res.DNS.Cut; c == nil || !c.Same || c.Queries >= c.QueriesNoCut || c.Domains != cfg.Domains {
		t.Errorf("SRV cut: %+v, want the same finds in fewer questions on all %d domains", c, cfg.Domains)
	}
	d := res.DNS.Drop
	if d == nil {
		t.Fatal("dropped queries: not run")
	}
	if d.Dead != cfg.DeadZones || d.Failed < d.Dead || d.Elapsed <= 0 || d.LiveEmittedBy <= 0 || d.FirstDeadEmitted <= 0 {
		t.Errorf("dropped queries: %+v, want %d silent domains failing", d, cfg.DeadZones)
	}
	q := res.DNS.QPSCap
	if q == nil {
		t.Fatal("--qps: not run")
	}
	if q.Queries == 0 || q.QPS <= 0 || q.QPS > q.Cap*1.1 {
		t.Errorf("--qps: %+v, want a positive rate under the cap", q)
	}
}
