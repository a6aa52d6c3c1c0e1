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
	// The ceiling asks what the inventory asks, within a few percent.
	if d := float64(inv.Queries) / float64(res.DNS.Questions); d < 0.9 || d > 1.1 {
		t.Errorf("inventory asked %d queries, the ceiling's list has %d: the mixes differ", inv.Queries, res.DNS.Questions)
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
