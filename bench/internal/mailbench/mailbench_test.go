package mailbench

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
)

func servers(t testing.TB) []Target {
	t.Helper()
	ca, err := mailtest.NewCA("bench test CA")
	if err != nil {
		t.Fatal(err)
	}
	certs := mailtest.NewCerts(ca.MustIssue("default.bench.test"), ca.MustIssue("mail.d1.test"), ca.MustIssue("mail.d2.test"))
	var ts []Target
	for _, p := range []string{model.ProtoSMTP, model.ProtoSubmission, model.ProtoSMTPS} {
		s, err := mailtest.Start(mailtest.Config{Addr: "127.0.0.2:0", Protocol: p, Certs: certs})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		for _, sni := range []string{"", "mail.d1.test", "mail.d2.test"} {
			ts = append(ts, Target{IP: s.IP(), Port: s.Port(), Protocol: p, SNI: sni})
		}
	}
	return ts
}

func TestCeiling(t *testing.T) {
	ts := servers(t)
	var many []Target
	for range 10 {
		many = append(many, ts...)
	}
	r := Ceiling(context.Background(), many, 8, 5*time.Second)
	if r.Handshakes != int64(len(many)) || r.Failed != 0 || r.PerSecond <= 0 {
		t.Fatalf("%+v, want %d handshakes", r, len(many))
	}
}

func TestCeilingFailures(t *testing.T) {
	// A STARTTLS port that refuses STARTTLS, and a closed port: failures
	// are counted, not hidden.
	s, err := mailtest.Start(mailtest.Config{Addr: "127.0.0.2:0", Protocol: model.ProtoSMTP, Mode: mailtest.RefuseSTARTTLS,
		Certs: mailtest.NewCerts(&tls.Certificate{})})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := Ceiling(context.Background(), []Target{{IP: s.IP(), Port: s.Port(), Protocol: model.ProtoSMTP}, {IP: "127.0.0.2", Port: 1, Protocol: model.ProtoSMTPS}}, 2, 2*time.Second)
	if r.Failed != 2 || r.Handshakes != 0 || r.FirstError == "" {
		t.Fatalf("%+v, want 2 failures", r)
	}
}

func BenchmarkCeiling(b *testing.B) {
	ts := servers(b)
	var many []Target
	for range 30 {
		many = append(many, ts...)
	}
	b.ResetTimer()
	var n int64
	var el time.Duration
	for range b.N {
		r := Ceiling(context.Background(), many, 64, 5*time.Second)
		if r.Failed != 0 {
			b.Fatal(r.FirstError)
		}
		n += r.Handshakes
		el += r.Elapsed
	}
	b.ReportMetric(float64(n)/el.Seconds(), "handshakes/s")
}
