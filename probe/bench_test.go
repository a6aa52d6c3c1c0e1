package probe_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
)

// benchScope starts listeners on 2 IPs x 4 protocols and names 125 SNI
// names on each: 1,000 (IP, port, SNI) combinations, plus the 8 without SNI.
func benchScope(b *testing.B, protos []string) (probe.Scope, *fixture) {
	f := newFixture(b)
	var scope probe.Scope
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		for _, proto := range protos {
			s := start(b, mailtest.Config{Addr: ip + ":0", Protocol: proto, Certs: f.certs})
			sv := probe.Service{IP: s.IP(), Port: s.Port(), Protocol: proto}
			scope.Services = append(scope.Services, sv)
			for i := range 1000 / (2 * len(protos)) {
				name := "mail.domain2.test"
				if i > 0 {
					name = fmt.Sprintf("mail.d%d.test", i)
				}
				scope.Names = append(scope.Names, probe.NameAt{Name: name, Service: sv})
			}
		}
	}
	return scope, f
}

// BenchmarkRun reports handshakes per second for Prober.Run over 1,000
// (IP, port, SNI) combinations on loopback, SMTP and submission with
// STARTTLS, SMTPS and IMAPS.
func BenchmarkRun(b *testing.B) {
	scope, f := benchScope(b, []string{model.ProtoSMTP, model.ProtoSubmission, model.ProtoSMTPS, model.ProtoIMAPS})
	benchRun(b, scope, f)
}

// BenchmarkRunImplicit is BenchmarkRun with implicit TLS only (SMTPS,
// IMAPS), comparable with BenchmarkBareTLS.
func BenchmarkRunImplicit(b *testing.B) {
	scope, f := benchScope(b, []string{model.ProtoSMTPS, model.ProtoIMAPS})
	benchRun(b, scope, f)
}

func benchRun(b *testing.B, scope probe.Scope, f *fixture) {
	p := probe.New(probe.Config{Roots: f.roots, Concurrency: 64})
	n := len(scope.Targets())
	b.ResetTimer()
	for b.Loop() {
		r := p.Run(context.Background(), scope, nil)
		if r.Stats.EndpointErrors != 0 {
			b.Fatalf("%d errors: %s", r.Stats.EndpointErrors, firstError(r))
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "handshakes/s")
}

func firstError(r *model.ProbeReport) string {
	for _, e := range r.Endpoints {
		if e.Error != "" {
			return e.Error
		}
	}
	return ""
}

// BenchmarkBareTLS is the floor to compare with: the same implicit-TLS
// targets, a bare crypto/tls dial and handshake, no verification.
func BenchmarkBareTLS(b *testing.B) {
	scope, _ := benchScope(b, []string{model.ProtoSMTPS, model.ProtoIMAPS})
	ts := scope.Targets()
	b.ResetTimer()
	for b.Loop() {
		next := make(chan probe.Target)
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for t := range next {
					d := net.Dialer{Timeout: 5 * time.Second}
					c, err := tls.DialWithDialer(&d, "tcp", net.JoinHostPort(t.IP, strconv.Itoa(t.Port)),
						&tls.Config{ServerName: t.SNI, InsecureSkipVerify: true})
					if err != nil {
						b.Error(err)
						continue
					}
					c.Close()
				}
			})
		}
		for _, t := range ts {
			next <- t
		}
		close(next)
		wg.Wait()
	}
	b.ReportMetric(float64(len(ts)*b.N)/b.Elapsed().Seconds(), "handshakes/s")
}
