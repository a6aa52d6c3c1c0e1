package fastdns

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/certplan/certplan/bench/internal/synth"
)

func start(t testing.TB, n int) (*synth.World, *Server) {
	t.Helper()
	w := synth.Generate(synth.Config{Domains: n, DeadDomains: 3, Seed: 11})
	s, err := Start(w, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return w, s
}

func rrStrings(rrs []dns.RR) []string {
	var ss []string
	for _, rr := range rrs {
		ss = append(ss, strings.ToLower(rr.String()))
	}
	sort.Strings(ss)
	return ss
}

// TestAnswersMatchWorld asks every question of the inventory's mix, with
// and without EDNS, in mixed case, and compares with the world.
func TestAnswersMatchWorld(t *testing.T) {
	w, s := start(t, 300)
	qs := w.Questions(w.Domains)
	c := &dns.Client{Timeout: 2 * time.Second}
	tc := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	truncated := 0
	for i, q := range qs {
		m := new(dns.Msg)
		name := q.Name
		if i%2 == 0 {
			name = strings.ToUpper(name[:1]) + name[1:]
		}
		m.SetQuestion(name, q.Type)
		if i%3 == 0 {
			m.SetEdns0(1232, false)
		}
		r, _, err := c.Exchange(m, s.Addr())
		if err != nil {
			t.Fatalf("%s %s: %v", q.Name, dns.TypeToString[q.Type], err)
		}
		if r.Id != m.Id || r.Question[0].Name != name {
			t.Fatalf("%s: id %d question %q, want %d %q", q.Name, r.Id, r.Question[0].Name, m.Id, name)
		}
		if r.Truncated {
			truncated++
			if r, _, err = tc.Exchange(m, s.Addr()); err != nil {
				t.Fatalf("%s over tcp: %v", q.Name, err)
			}
		}
		ans, rc := w.Lookup(q.Name, q.Type)
		if r.Rcode != rc {
			t.Errorf("%s %s: rcode %d, want %d", q.Name, dns.TypeToString[q.Type], r.Rcode, rc)
		}
		if got, want := rrStrings(r.Answer), rrStrings(ans); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s %s: answer\n%v\nwant\n%v", q.Name, dns.TypeToString[q.Type], got, want)
		}
		// REFUSED (outside the world, as the DNSKEY probe of the root is):
		// no zone, no SOA.
		if len(r.Answer) == 0 && rc != dns.RcodeRefused && (len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA) {
			t.Errorf("%s %s: negative answer without SOA: %v", q.Name, dns.TypeToString[q.Type], r.Ns)
		}
	}
	st := s.Stats()
	if st.Slow != 0 || st.Prepacked == 0 || st.Negative == 0 {
		t.Errorf("stats %+v: want no slow path, some prepacked and negative answers", st)
	}
	t.Logf("%d questions, %d truncated, stats %+v", len(qs), truncated, st)
}

func TestTruncationAndDrop(t *testing.T) {
	w := synth.Generate(synth.Config{Domains: 2000, DeadDomains: 1, Seed: 5})
	s, err := Start(w, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var large string
	for o, rrs := range w.RRs {
		if len(rrs) > 30 {
			large = o
		}
	}
	if large == "" {
		t.Fatal("no large CAA set")
	}
	m := new(dns.Msg)
	m.SetQuestion(large, dns.TypeCAA)
	m.SetEdns0(1232, false)
	r, _, err := (&dns.Client{}).Exchange(m, s.Addr())
	if err != nil || !r.Truncated || len(r.Answer) != 0 {
		t.Fatalf("large answer over udp: %v %v, want truncated", r, err)
	}
	r, _, err = (&dns.Client{Net: "tcp"}).Exchange(m, s.Addr())
	if err != nil || r.Truncated || len(r.Answer) < 30 {
		t.Fatalf("large answer over tcp: %v %v", r, err)
	}
	m.SetQuestion("mail."+w.DeadDomains[0]+".", dns.TypeA)
	if _, _, err := (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(m, s.Addr()); err == nil {
		t.Fatal("dead zone answered")
	}
	if st := s.Stats(); st.Dropped != 1 || st.Truncated != 1 || st.TCP != 1 {
		t.Errorf("stats %+v: want 1 dropped, 1 truncated, 1 tcp", st)
	}
}

func TestBlast(t *testing.T) {
	w, s := start(t, 2000)
	qs := PackQueries(w.Questions(w.Domains), true)
	for _, batch := range []bool{false, true} {
		r, err := Blast(context.Background(), s.Addr(), qs, BlastOptions{InFlight: 64, Batch: batch})
		if err != nil {
			t.Fatal(err)
		}
		if r.Answered != int64(qs.Len()) || r.Lost != 0 || r.Truncated == 0 || r.NXDomain == 0 || r.QPS <= 0 {
			t.Errorf("batch=%v: %+v: want all %d answered, some truncated and NXDOMAIN", batch, r, qs.Len())
		}
		t.Logf("batch=%v: %d queries in %v: %.0f q/s", batch, r.Answered, r.Elapsed, r.QPS)
	}
}

func BenchmarkCeiling(b *testing.B) {
	w, s := start(b, 5000)
	qs := PackQueries(w.Questions(w.Domains), true)
	b.ResetTimer()
	var total int64
	var el time.Duration
	for range b.N {
		r, err := Blast(context.Background(), s.Addr(), qs, BlastOptions{InFlight: 64})
		if err != nil {
			b.Fatal(err)
		}
		total += r.Answered
		el += r.Elapsed
	}
	b.ReportMetric(float64(total)/el.Seconds(), "queries/s")
}
