package model

import (
	"strconv"
	"strings"
	"testing"
)

func TestDANEPin(t *testing.T) {
	ee := []TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: "ab"}}
	ta := []TLSA{{Usage: 2, Selector: 1, MatchingType: 1, Data: "cd"}}
	for _, c := range []struct {
		name string
		n    Name
		want string
	}{
		{"no records", Name{Name: "mx.d.test", TLSADNSSEC: DNSSECSecure}, PinNone},
		{"lookup failed", Name{Name: "mx.d.test", TLSAError: "SERVFAIL"}, PinUnknown},
		{"secure EE", Name{Name: "mx.d.test", TLSA: ee, TLSADNSSEC: DNSSECSecure}, PinKey},
		{"secure TA", Name{Name: "mx.d.test", TLSA: ta, TLSADNSSEC: DNSSECSecure}, PinCA},
		{"secure both", Name{Name: "mx.d.test", TLSA: append(ta, ee...), TLSADNSSEC: DNSSECSecure}, PinKey},
		{"insecure zone", Name{Name: "mx.d.test", TLSA: ee, TLSADNSSEC: DNSSECInsecure}, PinNone},
		{"not validated", Name{Name: "mx.d.test", TLSA: ee, TLSADNSSEC: DNSSECUnknown}, PinUnknown},
		{"old inventory", Name{Name: "mx.d.test", TLSA: ee}, PinUnknown},
	} {
		if got, why := c.n.DANEPin(); got != c.want || (got != PinNone && why == "") {
			t.Errorf("%s: DANEPin() = %q, %q; want %q with a reason", c.name, got, why, c.want)
		}
	}
}

func TestMTASTSMatchesMX(t *testing.T) {
	p := MTASTSPolicy{Mode: MTASTSEnforce, MX: []string{"mx1.d.test", "*.mail.d.test"}}
	for host, want := range map[string]bool{"mx1.d.test": true, "a.mail.d.test": true, "mail.d.test": false, "a.b.mail.d.test": false, "mx2.d.test": false} {
		if got := p.MatchesMX(host); got != want {
			t.Errorf("MatchesMX(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestPortTLSADANEPin(t *testing.T) {
	ee := []TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: "ab"}}
	for _, c := range []struct {
		pt   PortTLSA
		want string
	}{
		{PortTLSA{Port: 587, Records: ee, DNSSEC: DNSSECSecure}, PinKey},
		{PortTLSA{Port: 587, Records: ee, DNSSEC: DNSSECInsecure}, PinNone},
		{PortTLSA{Port: 465, Error: "SERVFAIL"}, PinUnknown},
	} {
		got, why := c.pt.DANEPin("smtp.d.test")
		if got != c.want {
			t.Errorf("%+v: DANEPin = %q, want %q", c.pt, got, c.want)
		}
		if got != PinNone && !strings.Contains(why, "_"+strconv.Itoa(c.pt.Port)+"._tcp.smtp.d.test") {
			t.Errorf("%+v: reason %q does not name the owner", c.pt, why)
		}
	}
}
