package main

import (
	"context"
	"runtime"
	"time"

	"github.com/certplan/certplan/planner"
)

// planStages plans each size of PlanNames over the four server IPs.
func (st *stages) planStages(ctx context.Context) error {
	cfg, res, log := st.cfg, st.res, st.log
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range cfg.PlanNames {
		if err := ctx.Err(); err != nil {
			return err
		}
		inv := planInventory(n, mailIPs)
		best := PlanResult{Names: n}
		// Runs are short and noisy: the best of a few.
		for rep := 0; rep < cfg.Reps+1; rep++ {
			runtime.GC()
			stop := func() {}
			if rep == 0 && n == cfg.PlanNames[len(cfg.PlanNames)-1] {
				stop = profile(cfg.CPUProfile, "plan")
			}
			mw := watchMemory()
			start := time.Now()
			plan, err := planner.Plan(inv, nil, planner.Policy{ServerIPs: mailIPs, Hostname: "server.hosting1.test"}, nil, now)
			el := time.Since(start)
			heap, _ := mw.Stop()
			stop()
			if err != nil {
				return err
			}
			if best.Elapsed == 0 || el < best.Elapsed {
				best.Elapsed, best.Certificates = el, len(plan.Certificates)
			}
			best.PeakHeap = max(best.PeakHeap, heap)
		}
		log.logf("certplan plan: %d names over %d IPs in %s, %d certificates", n, len(mailIPs), dur(best.Elapsed), best.Certificates)
		res.Plan = append(res.Plan, best)
	}
	return nil
}
