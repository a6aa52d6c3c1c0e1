package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certplan/certplan/bench/internal/fastdns"
	"github.com/certplan/certplan/dnscheck"
	"github.com/miekg/dns"
)

// TransportResult is dnscheck's Resolver alone on the ceiling's questions:
// Resolver.Query from as many goroutines as queries in flight, without the
// inventory's work per domain. Between the ceiling and the inventory, it
// tells what the transport costs and what the domains' logic does.
type TransportResult struct {
	Queries     int64         `json:"queries"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	QPS         float64       `json:"qps"`
	Ratio       float64       `json:"ratio_to_ceiling"`
	ClientCPUus float64       `json:"client_cpu_us_per_query"`
	// ClientUserus is the user-space part of ClientCPUus.
	ClientUserus float64 `json:"client_user_us_per_query"`
}

// transportRun asks every question of qs through a new Resolver, keeping
// the best run in res.DNS.Transport.
func (st *stages) transportRun(ctx context.Context, qs *fastdns.Queries) error {
	type question struct {
		name  string
		qtype uint16
	}
	list := make([]question, qs.Len())
	for i := range list {
		var m dns.Msg
		if err := m.Unpack(qs.Msg(i)); err != nil || len(m.Question) != 1 {
			return fmt.Errorf("transport: question %d: %v", i, err)
		}
		list[i] = question{m.Question[0].Name, m.Question[0].Qtype}
	}
	r, err := dnscheck.NewResolver(dnscheck.Config{
		Servers:     []string{st.ch.Ready.DNS},
		Timeout:     5 * time.Second,
		MaxInFlight: st.cfg.Concurrency,
	})
	if err != nil {
		return err
	}
	defer r.Close()
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	cpu0, user0, _ := selfTimes()
	start := time.Now()
	for range st.cfg.Concurrency {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(list)) || ctx.Err() != nil {
					return
				}
				if _, err := r.Query(ctx, list[i].name, list[i].qtype); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	cpu1, user1, _ := selfTimes()
	if err := ctx.Err(); err != nil {
		return err
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("transport: %d queries failed", n)
	}
	tr := &TransportResult{Queries: r.Queries(), Elapsed: el}
	tr.QPS = float64(tr.Queries) / el.Seconds()
	tr.ClientCPUus = float64((cpu1 - cpu0).Microseconds()) / float64(tr.Queries)
	tr.ClientUserus = float64((user1 - user0).Microseconds()) / float64(tr.Queries)
	st.log.logf("dns transport alone: %.0f q/s, %d queries, cpu/query: client %.1f µs (user %.1f)", tr.QPS, tr.Queries, tr.ClientCPUus, tr.ClientUserus)
	if p := st.res.DNS.Transport; p == nil || tr.QPS > p.QPS {
		st.res.DNS.Transport = tr
	}
	return nil
}
