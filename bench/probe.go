package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/certplan/certplan/bench/internal/mailbench"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
)

// The probe stages; inventory.go and plan.go hold the others.

// scopeOf turns targets into the probe scope whose Targets are exactly
// them: each service without SNI, each (name, service) with.
func scopeOf(ts []mailbench.Target) probe.Scope {
	var s probe.Scope
	for _, t := range ts {
		svc := probe.Service{IP: t.IP, Port: t.Port, Protocol: t.Protocol}
		if t.SNI == "" {
			s.Services = append(s.Services, svc)
		} else {
			s.Names = append(s.Names, probe.NameAt{Name: t.SNI, Service: svc})
		}
	}
	return s
}

func (st *stages) prober(concurrency int, timeout time.Duration) (*probe.Prober, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(st.ch.Ready.CAPEM)) {
		return nil, errors.New("bench: the child's CA certificate does not parse")
	}
	return probe.New(probe.Config{Roots: roots, Timeout: timeout, Concurrency: concurrency}), nil
}

// probeRun probes ts with a new Prober, as one certplan run would.
func (st *stages) probeRun(ctx context.Context, ts []mailbench.Target, concurrency int, timeout time.Duration) (*model.ProbeReport, time.Duration, error) {
	p, err := st.prober(concurrency, timeout)
	if err != nil {
		return nil, 0, err
	}
	scope := scopeOf(ts)
	if n := len(scope.Targets()); n != len(ts) {
		return nil, 0, fmt.Errorf("bench: scope of %d targets makes %d handshakes", len(ts), n)
	}
	start := time.Now()
	rep := p.Run(ctx, scope, nil)
	return rep, time.Since(start), nil
}

func (st *stages) probeStages(ctx context.Context) error {
	cfg, res, log := st.cfg, st.res, st.log
	ts := probeTargets(st.ch.Ready, cfg.Probes)
	res.TLS.Targets = len(ts)
	// A warm-up: the servers' first handshakes are slower (goroutine
	// stacks, buffers, session ticket keys).
	if w := mailbench.Ceiling(ctx, ts[:min(len(ts), 1000)], cfg.Concurrency, 10*time.Second); w.Failed > 0 {
		return fmt.Errorf("tls warm-up: %d handshakes failed: %s", w.Failed, w.FirstError)
	}
	// Ceiling and probe alternate, so that a burst of load from elsewhere
	// on the machine hits both alike; the best run of each is kept. Runs
	// are short: one more than for DNS.
	for rep := 0; rep < cfg.Reps+1; rep++ {
		if err := st.tlsCeiling(ctx, ts); err != nil {
			return err
		}
		stop := func() {}
		if rep == 0 {
			stop = profile(cfg.CPUProfile, "probe")
		}
		cpu0 := selfCPU()
		r, el, err := st.probeRun(ctx, ts, cfg.Concurrency, 10*time.Second)
		cpu := float64((selfCPU() - cpu0).Microseconds()) / float64(max(len(ts), 1))
		stop()
		if err != nil {
			return err
		}
		pr := &ProbeResult{Endpoints: len(r.Endpoints), Elapsed: el, PerSecond: float64(len(r.Endpoints)) / el.Seconds(), CoverageAll: len(r.Coverage)}
		for _, e := range r.Endpoints {
			if e.Error != "" {
				pr.Errors++
				if pr.FirstError == "" {
					pr.FirstError = e.Error
				}
			}
		}
		for _, c := range r.Coverage {
			if c.WithSNI == model.VerdictOK {
				pr.CoverageOK++
			}
		}
		pr.ClientCPUus = cpu
		log.logf("certplan probe (%d at once): %d endpoints, %.0f/s, client cpu %.0f µs each, %d errors %s", cfg.Concurrency, pr.Endpoints, pr.PerSecond, cpu, pr.Errors, pr.FirstError)
		res.TLS.ProbeRuns = append(res.TLS.ProbeRuns, pr.PerSecond)
		if p := res.TLS.Probe; p == nil || pr.PerSecond > p.PerSecond {
			if p != nil {
				pr.ClientCPUus = min(pr.ClientCPUus, p.ClientCPUus)
			}
			res.TLS.Probe = pr
		} else {
			p.ClientCPUus = min(pr.ClientCPUus, p.ClientCPUus)
		}
	}
	if c := res.TLS.Ceiling.PerSecond; c > 0 {
		res.TLS.Probe.Ratio = res.TLS.Probe.PerSecond / c
	}
	return st.deadHosts(ctx)
}

// deadHosts probes DeadProbes endpoints of which a tenth accept and never
// answer: first the live ones alone, then all together.
func (st *stages) deadHosts(ctx context.Context) error {
	cfg, res, log := st.cfg, st.res, st.log
	ready := st.ch.Ready
	nDead := cfg.DeadProbes / 10
	live := probeTargets(ready, cfg.DeadProbes-nDead)
	dead := append([]mailbench.Target(nil), ready.Tarpits...)
	for i := 0; len(dead) < nDead; i++ {
		t := ready.Tarpits[i%len(ready.Tarpits)]
		t.SNI = ready.SNINames[i/len(ready.Tarpits)]
		dead = append(dead, t)
	}
	dead = dead[:nDead]
	all := append(append([]mailbench.Target(nil), live...), dead...)
	concs := []int{cfg.Concurrency}
	if nDead > cfg.Concurrency {
		c := cfg.Concurrency
		for c < nDead {
			c *= 2
		}
		concs = append(concs, c)
	}
	for _, conc := range concs {
		r, liveTime, err := st.probeRun(ctx, live, conc, cfg.DeadTimeout)
		if err != nil {
			return err
		}
		dr := DeadResult{Concurrency: conc, Endpoints: len(all), Dead: nDead, Timeout: cfg.DeadTimeout, LiveTime: liveTime}
		for _, e := range r.Endpoints {
			if e.Error != "" {
				dr.LiveErrors++
			}
		}
		r, el, err := st.probeRun(ctx, all, conc, cfg.DeadTimeout)
		if err != nil {
			return err
		}
		dr.Elapsed = el
		for _, e := range r.Endpoints {
			if e.ErrorKind == model.ErrorKindTimeout {
				dr.TimedOut++
			}
		}
		dr.Waves = (nDead + conc - 1) / conc
		dr.Bound = time.Duration(dr.Waves)*dr.Timeout + liveTime*12/10 + 250*time.Millisecond
		dr.InSeries = time.Duration(nDead)*dr.Timeout + liveTime
		dr.WithinBound = dr.Elapsed <= dr.Bound && dr.TimedOut == nDead && dr.LiveErrors == 0
		log.logf("probe with dead hosts (%d at once): %d endpoints, %d dead: %s (live alone %s, bound %s)", conc, len(all), nDead, dur(el), dur(liveTime), dur(dr.Bound))
		res.TLS.Dead = append(res.TLS.Dead, dr)
	}
	return nil
}
