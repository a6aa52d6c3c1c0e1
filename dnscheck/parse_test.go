package dnscheck

import (
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestParseReplyAddrFastPath checks that replies parsed with unpackAddr's
// shortcut for A and AAAA records give the records miekg/dns unpacks,
// owners equal without regard to case, whether the shortcut applies
// (owner compressed to the question) or not (CNAME chains, owners written
// out, other types).
func TestParseReplyAddrFastPath(t *testing.T) {
	cases := []struct {
		q     string
		qtype uint16
		rrs   []string
		compr bool
	}{
		{"mail.example.test.", dns.TypeA, []string{"mail.example.test. 300 IN A 127.0.0.10"}, true},
		{"mail.example.test.", dns.TypeA, []string{"MAIL.Example.test. 60 IN A 127.0.0.10", "mail.example.test. 60 IN A 127.0.0.11"}, true},
		{"mail.example.test.", dns.TypeAAAA, []string{"mail.example.test. 300 IN AAAA ::1", "mail.example.test. 300 IN AAAA 2001:db8::ff"}, true},
		{"mail.example.test.", dns.TypeA, []string{"mail.example.test. 300 IN CNAME example.test.", "example.test. 300 IN A 127.0.0.12"}, true},
		{"mail.example.test.", dns.TypeA, []string{"mail.example.test. 300 IN A 127.0.0.10"}, false},
		{"mail.example.test.", dns.TypeA, []string{"mail.example.test. 300 CH A 127.0.0.10"}, true},
		{"example.test.", dns.TypeMX, []string{"example.test. 300 IN MX 10 mail.example.test."}, true},
		{"example.test.", dns.TypeA, nil, true},
	}
	for _, c := range cases {
		m := new(dns.Msg)
		m.SetQuestion(c.q, c.qtype)
		m.Response = true
		for _, s := range c.rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				t.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		m.Compress = c.compr
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		qend := 12 + len(c.q) + 1 + 4
		rep := parseReply(b, qend, c.q, false)
		if rep.err != nil {
			t.Fatalf("%v: %v", c.rrs, rep.err)
		}
		want := new(dns.Msg)
		if err := want.Unpack(b); err != nil {
			t.Fatal(err)
		}
		if len(rep.answer) != len(want.Answer) {
			t.Fatalf("%v: %d records, want %d", c.rrs, len(rep.answer), len(want.Answer))
		}
		for i, got := range rep.answer {
			w := want.Answer[i]
			if !strings.EqualFold(got.Header().Name, w.Header().Name) {
				t.Errorf("%v: owner %q, want %q", c.rrs, got.Header().Name, w.Header().Name)
			}
			gh, wh := *got.Header(), *w.Header()
			gh.Name, wh.Name = "", ""
			if gh != wh || !dns.IsDuplicate(withName(got, "x."), withName(w, "x.")) {
				t.Errorf("%v: record %d is %v, want %v", c.rrs, i, got, w)
			}
		}
	}
	// A truncated address is malformed, as miekg/dns says.
	m := new(dns.Msg)
	m.SetQuestion("a.test.", dns.TypeA)
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "a.test.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(127, 0, 0, 1)}}
	m.Compress = true
	b, _ := m.Pack()
	if rep := parseReply(b[:len(b)-2], 12+len("a.test.")+1+4, "a.test.", false); rep.err == nil && len(rep.answer) > 0 {
		t.Errorf("a cut A record parsed as %v", rep.answer)
	}
}

func withName(rr dns.RR, name string) dns.RR {
	c := dns.Copy(rr)
	c.Header().Name = name
	return c
}
