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
		rep := parseReply(b, qend, c.q, false, false)
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
	if rep := parseReply(b[:len(b)-2], 12+len("a.test.")+1+4, "a.test.", false, false); rep.err == nil && len(rep.answer) > 0 {
		t.Errorf("a cut A record parsed as %v", rep.answer)
	}
}

func withName(rr dns.RR, name string) dns.RR {
	c := dns.Copy(rr)
	c.Header().Name = name
	return c
}

// TestDNSSECBits: the DO bit is set in the OPT record of TLSA and DNSKEY
// questions only (RFC 3225), as miekg/dns reads it; the AD bit of a reply
// (RFC 4035 §3.2.3) and, for those questions, the TTL of the SOA in the
// authority section (RFC 2308 §5) are read as miekg/dns reads them, by the
// fast parse and the whole one.
func TestDNSSECBits(t *testing.T) {
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeCAA, dns.TypeTXT, dns.TypeSRV, dns.TypeTLSA, dns.TypeDNSKEY} {
		const name = "_25._tcp.mx.signed.test."
		q, qend, err := packQuery(make([]byte, 512), name, qtype, 1232)
		if err != nil {
			t.Fatal(err)
		}
		var qm dns.Msg
		if err := qm.Unpack(q); err != nil {
			t.Fatal(err)
		}
		want := qtype == dns.TypeTLSA || qtype == dns.TypeDNSKEY
		if opt := qm.IsEdns0(); opt == nil || opt.Do() != want {
			t.Errorf("%s query: OPT %v, want DO %v", dns.TypeToString[qtype], qm.IsEdns0(), want)
		}
		for _, ad := range []bool{false, true} {
			m := new(dns.Msg)
			m.SetQuestion(name, qtype)
			m.Response, m.AuthenticatedData, m.Rcode = true, ad, dns.RcodeNameError
			soa, _ := dns.NewRR("signed.test. 42 IN SOA ns1.signed.test. hostmaster.signed.test. 1 60 60 600 42")
			nsec, _ := dns.NewRR("signed.test. 42 IN NSEC zz.signed.test. SOA NS NSEC")
			m.Ns = []dns.RR{nsec, soa}
			m.SetEdns0(1232, true)
			b, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			var back dns.Msg
			if err := back.Unpack(b); err != nil {
				t.Fatal(err)
			}
			wantTTL := uint32(0)
			if want {
				wantTTL = 42
			}
			for _, whole := range []bool{false, true} {
				rep := parseReply(b, qend, name, whole, q[qend+7]&0x80 != 0)
				if rep.err != nil || rep.ad != back.AuthenticatedData || rep.ad != ad || rep.negTTL != wantTTL || rep.rcode != dns.RcodeNameError {
					t.Errorf("%s reply, AD %v, whole %v: parsed AD %v, SOA TTL %d, rcode %d, err %v; want AD %v, TTL %d",
						dns.TypeToString[qtype], ad, whole, rep.ad, rep.negTTL, rep.rcode, rep.err, ad, wantTTL)
				}
			}
		}
	}
}
