package dnscheck

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/miekg/dns"
)

// blackHole is a UDP socket on loopback that reads queries and never answers.
func blackHole(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}

func TestRetryOnNextServer(t *testing.T) {
	s := invServer(t)
	hole := blackHole(t)
	r := newTestResolver(t, s, Config{Servers: []string{hole, s.Addr()}, Timeout: 100 * time.Millisecond, Retries: 1})
	for _, name := range []string{"mail.d1.test", "mail.caa.test", "mta-sts.d1.test", "mx.shared.test"} {
		ans, err := r.Lookup(context.Background(), name, dns.TypeA)
		if err != nil || len(ans.Records) != 1 {
			t.Errorf("%s: %v %v", name, ans, err)
		}
	}
	// Half the queries went to the black hole first, then were retried.
	if r.Queries() <= 4 {
		t.Errorf("%d queries sent, want retries", r.Queries())
	}
}

func TestTimeoutError(t *testing.T) {
	hole := blackHole(t)
	r := newTestResolver(t, nil, Config{Servers: []string{hole}, Timeout: 50 * time.Millisecond, Retries: 2})
	start := time.Now()
	_, err := r.Lookup(context.Background(), "x.test", dns.TypeA)
	var qe *QueryError
	if !errors.As(err, &qe) || !qe.Timeout() || !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want a timeout QueryError", err)
	}
	if !strings.HasPrefix(err.Error(), "A x.test: no answer from "+hole+" after 3 tries of 50ms") {
		t.Errorf("message %q", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > time.Second {
		t.Errorf("took %s, want about 3 × 50ms", d)
	}
	if r.Queries() != 3 {
		t.Errorf("%d queries, want 3", r.Queries())
	}
}

func TestServfailTriesNextServer(t *testing.T) {
	bad := invServer(t)
	bad.SetFault("mail.d1.test", dnstest.FaultServfail)
	good := invServer(t)
	r := newTestResolver(t, nil, Config{Servers: []string{bad.Addr(), good.Addr()}, Retries: 1})
	for i := 0; i < 4; i++ {
		m, srv, err := r.Exchange(context.Background(), "mail.d1.test", dns.TypeA)
		if err != nil || m.Rcode != dns.RcodeSuccess || srv != good.Addr() {
			t.Fatalf("try %d: %v from %s, %v", i, m, srv, err)
		}
	}
	// Queries alternate between the servers; those sent to the failing one
	// first were asked again of the other.
	if n := bad.QueryCount("mail.d1.test", dns.TypeA); n != 2 {
		t.Errorf("failing server asked %d times, want 2", n)
	}
	// With one server, SERVFAIL is the answer.
	r1 := newTestResolver(t, bad, Config{})
	if m, _, err := r1.Exchange(context.Background(), "mail.d1.test", dns.TypeA); err != nil || m.Rcode != dns.RcodeServerFailure {
		t.Errorf("one server: %v, %v", m, err)
	}
}

func TestConnectionRefusedFailsFast(t *testing.T) {
	// A port nobody listens on: the ICMP error ends the try at once.
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	addr := pc.LocalAddr().String()
	pc.Close()
	r := newTestResolver(t, nil, Config{Servers: []string{addr}, Timeout: 2 * time.Second, Retries: 1})
	start := time.Now()
	_, err := r.Lookup(context.Background(), "x.test", dns.TypeA)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err %v, want connection refused", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s, want well under the timeout", d)
	}
}

// spoofer answers every query first with replies that must be ignored (a
// wrong ID, a wrong question, a query instead of a reply), then with the
// real answer.
func spoofer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			send := func(m *dns.Msg) {
				b, _ := m.Pack()
				pc.WriteTo(b, from)
			}
			answer := func(name string, ip string) *dns.Msg {
				m := new(dns.Msg)
				m.SetReply(q)
				rr, _ := dns.NewRR(name + " 60 IN A " + ip)
				m.Answer = append(m.Answer, rr)
				return m
			}
			m := answer(q.Question[0].Name, "127.0.0.66")
			m.Id++
			send(m) // wrong ID
			m = answer(q.Question[0].Name, "127.0.0.66")
			m.Question[0].Name = "other.test."
			send(m) // wrong question
			m = answer(q.Question[0].Name, "127.0.0.66")
			m.Question[0].Qtype = dns.TypeAAAA
			send(m) // wrong type
			m = answer(q.Question[0].Name, "127.0.0.66")
			m.Response = false
			send(m) // not a reply
			send(answer(strings.ToUpper(q.Question[0].Name), "127.0.0.9"))
		}
	}()
	return pc.LocalAddr().String()
}

func TestSpoofedRepliesIgnored(t *testing.T) {
	addr := spoofer(t)
	r := newTestResolver(t, nil, Config{Servers: []string{addr}, Conns: 1})
	for _, name := range []string{"a.test", "b.test", "c.test"} {
		ans, err := r.Lookup(context.Background(), name, dns.TypeA)
		if err != nil || len(ans.Records) != 1 || ans.Records[0].(*dns.A).A.String() != "127.0.0.9" {
			t.Errorf("%s: %v %v", name, ans.Records, err)
		}
	}
}

func TestQPSCap(t *testing.T) {
	s := invServer(t)
	r := newTestResolver(t, s, Config{QPS: 100})
	start := time.Now()
	for i := 0; i < 20; i++ {
		if _, _, err := r.Exchange(context.Background(), "mail.d1.test", dns.TypeA); err != nil {
			t.Fatal(err)
		}
	}
	// 20 queries at 100/s: about 0.2 s less the 50 ms burst.
	if d := time.Since(start); d < 120*time.Millisecond {
		t.Errorf("20 queries at 100 qps took %s", d)
	}
}

func TestCacheNotPoisonedByCancel(t *testing.T) {
	s := invServer(t)
	s.SetDelay("mail.d1.test", 200*time.Millisecond)
	r := newTestResolver(t, s, Config{Timeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.Query(ctx, "mail.d1.test", dns.TypeA); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want deadline exceeded", err)
	}
	resp, err := r.Query(context.Background(), "mail.d1.test", dns.TypeA)
	if err != nil || len(resp.Answer) != 1 {
		t.Errorf("after a cancelled query: %v %v", resp, err)
	}
}

func TestClosed(t *testing.T) {
	s := invServer(t)
	r := newTestResolver(t, s, Config{})
	r.Close()
	if _, err := r.Lookup(context.Background(), "mail.d1.test", dns.TypeA); err == nil {
		t.Error("lookup after Close succeeded")
	}
}

func TestServerAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1:53"},
		{"127.0.0.1:5353", "127.0.0.1:5353"},
		{"::1", "[::1]:53"},
		{"[::1]:5353", "[::1]:5353"},
		{"[::1]", "[::1]:53"},
	}
	for _, tt := range tests {
		if got, err := serverAddr(tt.in); err != nil || got != tt.want {
			t.Errorf("serverAddr(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"127.0.0.1:0", "127.0.0.1:x", ":53"} {
		if _, err := serverAddr(bad); err == nil {
			t.Errorf("serverAddr(%q) succeeded", bad)
		}
	}
}

func TestSystemResolvers(t *testing.T) {
	p := t.TempDir() + "/resolv.conf"
	if err := os.WriteFile(p, []byte("# comment\nnameserver 127.0.0.53\nnameserver ::1\noptions edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := SystemResolvers(p)
	if err != nil || strings.Join(got, " ") != "127.0.0.53:53 [::1]:53" {
		t.Errorf("got %v, %v", got, err)
	}
	if err := os.WriteFile(p, []byte("search test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := SystemResolvers(p); err == nil || !strings.Contains(err.Error(), "no nameserver") {
		t.Errorf("err %v", err)
	}
}

// TestPackName: the fast path packs what dns.PackDomainName packs, and
// leaves to it the names it does not handle.
func TestPackName(t *testing.T) {
	long := strings.Repeat("a", 63)
	names := []string{"a.", "mail.example.test.", "_submission._tcp.d.test.", "xn--bcher-kva.test.",
		long + ".test.", strings.Repeat(long+".", 3) + "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu.",
		`a\.b.test.`, `a\032b.test.`, ".", "a..b.", strings.Repeat("a", 64) + ".test.", "no-dot", "",
		strings.Repeat(long+".", 4)}
	for _, n := range names {
		want := make([]byte, 512)
		wantOff, wantErr := dns.PackDomainName(n, want, 12, nil, false)
		got := make([]byte, 512)
		off, ok := packName(got, 12, n)
		if !ok {
			continue // dns.PackDomainName's to do
		}
		if wantErr != nil {
			t.Errorf("%q: packName took a name dns.PackDomainName refuses: %v", n, wantErr)
			continue
		}
		if off != wantOff || !bytes.Equal(got[:off], want[:wantOff]) {
			t.Errorf("%q: packName wrote %x, want %x", n, got[12:off], want[12:wantOff])
		}
	}
	// The common names take the fast path.
	for _, n := range []string{"mail.example.test.", "_25._tcp.mx.hoster.test."} {
		if _, ok := packName(make([]byte, 512), 12, n); !ok {
			t.Errorf("%q: not packed by the fast path", n)
		}
	}
	// No room: refused, not written past the end.
	if _, ok := packName(make([]byte, 20), 12, "mail.example.test."); ok {
		t.Error("packed a name into a buffer too small")
	}
}
