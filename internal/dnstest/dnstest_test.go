package dnstest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const zone = `$ORIGIN d.test.
$TTL 300
@        IN SOA ns.d.test. hostmaster.d.test. 1 3600 600 86400 60
@        IN MX  10 mail.d.test.
mail     IN A   127.0.0.2
alias    IN CNAME mail
outside  IN CNAME host.elsewhere.test.
a.b.c    IN A   127.0.0.3
big      IN TXT "` + "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" + `"
big      IN TXT "1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      IN TXT "2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      IN TXT "3123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      IN TXT "4123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      IN TXT "5123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
`

func start(t *testing.T) *Server {
	t.Helper()
	s := New()
	if err := s.AddZone("d.test", zone); err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ask(t *testing.T, s *Server, net, name string, qt uint16) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 300 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qt)
	r, _, err := c.ExchangeContext(context.Background(), m, s.Addr())
	return r, err
}

func TestAnswers(t *testing.T) {
	s := start(t)
	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		rcode   int
		answers int
	}{
		{"A", "mail.d.test", dns.TypeA, dns.RcodeSuccess, 1},
		{"MX", "d.test", dns.TypeMX, dns.RcodeSuccess, 1},
		{"case-insensitive", "MAIL.D.Test", dns.TypeA, dns.RcodeSuccess, 1},
		{"CNAME chased in zone", "alias.d.test", dns.TypeA, dns.RcodeSuccess, 2},
		{"CNAME out of zone", "outside.d.test", dns.TypeA, dns.RcodeSuccess, 1},
		{"NODATA", "mail.d.test", dns.TypeAAAA, dns.RcodeSuccess, 0},
		{"empty non-terminal", "b.c.d.test", dns.TypeA, dns.RcodeSuccess, 0},
		{"NXDOMAIN", "nope.d.test", dns.TypeA, dns.RcodeNameError, 0},
		{"not our zone", "other.test", dns.TypeA, dns.RcodeRefused, 0},
		{"SOA", "d.test", dns.TypeSOA, dns.RcodeSuccess, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ask(t, s, "udp", tt.qname, tt.qtype)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tt.rcode || len(r.Answer) != tt.answers {
				t.Fatalf("got rcode %s, %d answers, want %s, %d:\n%v", dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tt.rcode], tt.answers, r)
			}
		})
	}
	if got := s.QueryCount("mail.d.test", dns.TypeA); got != 2 {
		t.Errorf("QueryCount(mail.d.test, A) = %d, want 2", got)
	}
}

func TestTruncationAndTCP(t *testing.T) {
	s := start(t)
	r, err := ask(t, s, "udp", "big.d.test", dns.TypeTXT)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated {
		t.Fatalf("600-byte answer over 512-byte UDP: want TC set, got %v", r)
	}
	r, err = ask(t, s, "tcp", "big.d.test", dns.TypeTXT)
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != 6 {
		t.Fatalf("over TCP: got TC=%v, %d answers, want all 6", r.Truncated, len(r.Answer))
	}
}

func TestFaults(t *testing.T) {
	s := start(t)
	s.SetFault("mail.d.test", FaultServfail)
	if r, err := ask(t, s, "udp", "mail.d.test", dns.TypeA); err != nil || r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("servfail: got %v, %v", r, err)
	}
	s.SetFault("mail.d.test", FaultRefused)
	if r, err := ask(t, s, "udp", "mail.d.test", dns.TypeA); err != nil || r.Rcode != dns.RcodeRefused {
		t.Fatalf("refused: got %v, %v", r, err)
	}
	s.SetFault("mail.d.test", FaultDrop)
	if _, err := ask(t, s, "udp", "mail.d.test", dns.TypeA); err == nil {
		t.Fatal("drop: want a timeout, got an answer")
	}
	s.SetFault("mail.d.test", FaultTruncate)
	if r, err := ask(t, s, "udp", "mail.d.test", dns.TypeA); err != nil || !r.Truncated {
		t.Fatalf("truncate over UDP: got %v, %v", r, err)
	}
	if r, err := ask(t, s, "tcp", "mail.d.test", dns.TypeA); err != nil || len(r.Answer) != 1 {
		t.Fatalf("truncate, then TCP: got %v, %v", r, err)
	}
	s.SetFault("mail.d.test", FaultNone)
	if r, err := ask(t, s, "udp", "mail.d.test", dns.TypeA); err != nil || len(r.Answer) != 1 {
		t.Fatalf("cleared: got %v, %v", r, err)
	}
}

func TestUpdate(t *testing.T) {
	s := start(t)
	add, _ := dns.NewRR(`_acme-challenge.mail.d.test. 60 IN TXT "token"`)
	m := new(dns.Msg)
	m.SetUpdate("d.test.")
	m.Insert([]dns.RR{add})
	c := &dns.Client{Timeout: time.Second}
	if r, _, err := c.Exchange(m, s.Addr()); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("update: %v %v", r, err)
	}
	if r, err := ask(t, s, "tcp", "_acme-challenge.mail.d.test", dns.TypeTXT); err != nil || len(r.Answer) != 1 {
		t.Fatalf("after insert: got %v, %v", r, err)
	}
	m = new(dns.Msg)
	m.SetUpdate("d.test.")
	m.Remove([]dns.RR{add})
	if r, _, err := c.Exchange(m, s.Addr()); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("delete: %v %v", r, err)
	}
	if r, err := ask(t, s, "tcp", "_acme-challenge.mail.d.test", dns.TypeTXT); err != nil || len(r.Answer) != 0 {
		t.Fatalf("after delete: got %v, %v", r, err)
	}
}

// With an update key, an update must be signed with it (RFC 8945): one
// unsigned or signed with another secret is refused (NOTAUTH) and changes
// nothing; a signed one is applied, and the answer is signed.
func TestUpdateTSIG(t *testing.T) {
	const key, secret = "certplan-key.", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="
	s := New()
	if err := s.AddZone("d.test", zone); err != nil {
		t.Fatal(err)
	}
	s.SetUpdateKey(key, secret)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	add, _ := dns.NewRR(`_acme-challenge.mail.d.test. 60 IN TXT "token"`)
	send := func(secretUsed string) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetUpdate("d.test.")
		m.Insert([]dns.RR{add})
		c := &dns.Client{Net: "tcp", Timeout: time.Second}
		if secretUsed != "" {
			m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
			c.TsigSecret = map[string]string{key: secretUsed}
		}
		r, _, err := c.Exchange(m, s.Addr())
		return r, err
	}
	if r, err := send(""); err != nil || r.Rcode != dns.RcodeNotAuth {
		t.Fatalf("unsigned: %v %v", r, err)
	}
	if r, _ := send("b3RoZXItc2VjcmV0"); r != nil && r.Rcode == dns.RcodeSuccess {
		t.Fatalf("wrong secret: %v", r)
	}
	if r, err := ask(t, s, "tcp", "_acme-challenge.mail.d.test", dns.TypeTXT); err != nil || len(r.Answer) != 0 {
		t.Fatalf("refused updates changed the zone: %v, %v", r, err)
	}
	r, err := send(secret)
	if err != nil || r.Rcode != dns.RcodeSuccess || r.IsTsig() == nil {
		t.Fatalf("signed: %v %v", r, err)
	}
	if r, err := ask(t, s, "tcp", "_acme-challenge.mail.d.test", dns.TypeTXT); err != nil || len(r.Answer) != 1 {
		t.Fatalf("after the signed update: %v, %v", r, err)
	}
}

const wildZone = `$ORIGIN w.test.
$TTL 300
@          IN MX 10 mail.w.test.
*          IN A     127.0.0.2
*          IN TXT   "wild"
mail       IN A     127.0.0.3
txtonly    IN TXT   "here"
a.b        IN A     127.0.0.4
*.sub      IN CNAME target.w.test.
target     IN A     127.0.0.5
*.out      IN CNAME host.elsewhere.test.
`

// TestWildcards: RFC 4592. A wildcard answers for names that do not exist,
// with the name asked as owner; not for names that exist with other types
// (NODATA), nor below an existing name (its closest encloser has no
// wildcard), nor for empty non-terminals. A wildcard CNAME is chased.
func TestWildcards(t *testing.T) {
	s := New()
	if err := s.AddZone("w.test", wildZone); err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tests := []struct {
		name  string
		qname string
		qtype uint16
		rcode int
		want  []string // answers: "owner type rdata"
	}{
		{"synthesised", "smtp.w.test", dns.TypeA, dns.RcodeSuccess, []string{"smtp.w.test. A 127.0.0.2"}},
		{"synthesised other type", "imap.w.test", dns.TypeTXT, dns.RcodeSuccess, []string{`imap.w.test. TXT "wild"`}},
		{"wildcard without the type: NODATA", "imap.w.test", dns.TypeAAAA, dns.RcodeSuccess, nil},
		{"deeper name", "x.y.w.test", dns.TypeA, dns.RcodeSuccess, []string{"x.y.w.test. A 127.0.0.2"}},
		{"explicit record wins", "mail.w.test", dns.TypeA, dns.RcodeSuccess, []string{"mail.w.test. A 127.0.0.3"}},
		{"existing name, other type: NODATA", "txtonly.w.test", dns.TypeA, dns.RcodeSuccess, nil},
		{"empty non-terminal: NODATA", "b.w.test", dns.TypeA, dns.RcodeSuccess, nil},
		{"below an existing name without a wildcard", "x.mail.w.test", dns.TypeA, dns.RcodeNameError, nil},
		{"below an empty non-terminal", "x.b.w.test", dns.TypeA, dns.RcodeNameError, nil},
		{"the apex is not matched", "w.test", dns.TypeA, dns.RcodeSuccess, nil},
		{"wildcard CNAME chased", "pop.sub.w.test", dns.TypeA, dns.RcodeSuccess,
			[]string{"pop.sub.w.test. CNAME target.w.test.", "target.w.test. A 127.0.0.5"}},
		{"wildcard CNAME out of zone", "pop.out.w.test", dns.TypeA, dns.RcodeSuccess,
			[]string{"pop.out.w.test. CNAME host.elsewhere.test."}},
		{"wildcard CNAME asked as CNAME", "pop.sub.w.test", dns.TypeCNAME, dns.RcodeSuccess,
			[]string{"pop.sub.w.test. CNAME target.w.test."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ask(t, s, "udp", tt.qname, tt.qtype)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, rr := range r.Answer {
				h := rr.Header()
				got = append(got, h.Name+" "+dns.TypeToString[h.Rrtype]+" "+strings.TrimPrefix(rr.String(), h.String()))
			}
			if r.Rcode != tt.rcode || !slices.Equal(got, tt.want) {
				t.Fatalf("got %s %q, want %s %q", dns.RcodeToString[r.Rcode], got, dns.RcodeToString[tt.rcode], tt.want)
			}
			if len(got) == 0 && (len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA) {
				t.Errorf("no SOA in the authority section: %v", r.Ns)
			}
		})
	}
}

// A fault for one type leaves the name's other types answered.
func TestFaultType(t *testing.T) {
	s := start(t)
	s.SetFaultType("mail.d.test", dns.TypeAAAA, FaultServfail)
	if r, err := ask(t, s, "udp", "mail.d.test", dns.TypeAAAA); err != nil || r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("AAAA: %v %v", r, err)
	}
	if r, err := ask(t, s, "udp", "mail.d.test", dns.TypeA); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("A: %v %v", r, err)
	}
	s.SetFaultType("mail.d.test", dns.TypeAAAA, FaultNone)
	if r, err := ask(t, s, "udp", "mail.d.test", dns.TypeAAAA); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("AAAA after clearing: %v %v", r, err)
	}
	if got := s.QueryCounts()["mail.d.test. AAAA"]; got != 2 {
		t.Errorf("QueryCounts: %d AAAA queries, want 2", got)
	}
}
