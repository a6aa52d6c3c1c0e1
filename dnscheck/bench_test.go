package dnscheck

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/miekg/dns"
)

// benchServer serves n hosted domains shaped like a shared host's: a third
// use the server's name as MX, the others their own mail.D; every domain
// has mail, smtp and autoconfig; every fourth has submission SRV records.
func benchServer(b *testing.B, n int) (*dnstest.Server, []string) {
	b.Helper()
	s := dnstest.New()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(s.AddZone("test.", ""))
	must(s.AddZone("host.test.", "server IN A 127.0.0.2\n_25._tcp.server IN TLSA 3 1 1 abcdef\n"))
	domains := make([]string, n)
	var z strings.Builder
	for i := range domains {
		d := fmt.Sprintf("c%05d.test", i)
		domains[i] = d
		z.Reset()
		if i%3 == 0 {
			z.WriteString("@ IN MX 10 server.host.test.\n")
		} else {
			z.WriteString("@ IN MX 10 mail\n")
		}
		z.WriteString("mail IN A 127.0.0.2\nsmtp IN A 127.0.0.3\nautoconfig IN CNAME mail\n")
		if i%4 == 0 {
			z.WriteString("_submission._tcp IN SRV 0 1 587 smtp\n_imaps._tcp IN SRV 0 1 993 mail\n")
		}
		must(s.AddZone(d+".", z.String()))
	}
	must(s.Start("127.0.0.1:0"))
	b.Cleanup(func() { s.Close() })
	return s, domains
}

// BenchmarkInventory10k runs the inventory of 10,000 domains against the
// in-process server on loopback.
func BenchmarkInventory10k(b *testing.B) {
	s, domains := benchServer(b, 10000)
	b.ResetTimer()
	var queries int64
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		r, err := NewResolver(Config{Servers: []string{s.Addr()}, Timeout: 2 * time.Second, MaxInFlight: 128})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		inv, err := r.Inventory(context.Background(), domains, Options{ServerIPs: serverIPs})
		elapsed += time.Since(start)
		r.Close()
		if err != nil {
			b.Fatal(err)
		}
		if inv.Stats.DomainsFailed != 0 || inv.Stats.Domains != len(domains) {
			b.Fatalf("stats %+v", inv.Stats)
		}
		queries += int64(inv.Stats.Queries)
	}
	b.ReportMetric(float64(len(domains)*b.N)/elapsed.Seconds(), "domains/s")
	b.ReportMetric(float64(queries)/elapsed.Seconds(), "queries/s")
	b.ReportMetric(float64(queries)/float64(b.N*len(domains)), "queries/domain")
}

// BenchmarkExchange sends uncached queries through the Resolver from many
// goroutines: the client's raw rate.
func BenchmarkExchange(b *testing.B) {
	s, _ := benchServer(b, 10)
	r, err := NewResolver(Config{Servers: []string{s.Addr()}, MaxInFlight: 128})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := r.Exchange(context.Background(), "mail.c00001.test", dns.TypeA); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
}

// BenchmarkRawLoop is the baseline for BenchmarkExchange: 64 goroutines,
// each with its own persistent UDP socket, sending a query and reading the
// reply in a loop, with no matching, retries or cache.
func BenchmarkRawLoop(b *testing.B) {
	s, _ := benchServer(b, 10)
	q := new(dns.Msg)
	q.SetQuestion("mail.c00001.test.", dns.TypeA)
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c, err := dns.Dial("udp", s.Addr())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		for pb.Next() {
			if err := c.WriteMsg(q); err != nil {
				b.Error(err)
				return
			}
			if _, err := c.ReadMsg(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
}
