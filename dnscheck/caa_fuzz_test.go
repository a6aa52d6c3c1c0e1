package dnscheck

import (
	"bytes"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/certplan/certplan/examples/lab/zones"
	"github.com/miekg/dns"
)

//	go test -run XXX -fuzz FuzzCAA -fuzztime 150s -parallel 1 ./dnscheck/

// FuzzCAA reads a CAA record's value (RFC 8659 §4.2) as ParseCAAValue and
// EvaluateCAA do. A value that parses is written back as issuer domain and
// parameters and parses the same; and a set of that one record lets
// Let's Encrypt issue exactly as RFC 8659 says: unless the record is
// critical with an unknown tag, when it is not an issue record (issuewild
// for a wildcard, when the record is one), or when it is and names the CA.
func FuzzCAA(f *testing.F) {
	files, _ := fs.Glob(zones.FS, "*.db")
	for _, file := range files {
		b, _ := fs.ReadFile(zones.FS, file)
		zp := dns.NewZoneParser(bytes.NewReader(b), "", file)
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			if c, ok := rr.(*dns.CAA); ok {
				f.Add(c.Flag, c.Tag, c.Value, false)
			}
		}
	}
	for _, v := range []string{"letsencrypt.org", "  LetsEncrypt.org  ", ";", "",
		"ca.test; accounturi=https://ca.test/a/1 ; ValidationMethods=http-01,DNS-01",
		"letsencrypt.org; validationmethods=dns-01", "ca.test; key", "ca.test; k=v w", "ca..test", "-ca.test"} {
		f.Add(uint8(0), "issue", v, false)
	}
	f.Add(uint8(0), "issuewild", ";", true)
	f.Add(uint8(128), "tbs", "x", false)
	f.Add(uint8(128), "iodef", "mailto:hostmaster@domain3.test", false)
	const ca = DefaultCAIdentifier
	f.Fuzz(func(t *testing.T, flag uint8, tag, value string, wildcard bool) {
		iss, perr := ParseCAAValue(tag, value)
		if perr == nil {
			again := iss.Domain
			if p := iss.paramString(); p != "" {
				again += "; " + p
			}
			back, err := ParseCAAValue(tag, again)
			if err != nil || !reflect.DeepEqual(back, iss) {
				t.Fatalf("%q parses as %+v, written %q, which parses as %+v, %v", value, iss, again, back, err)
			}
		}
		rr := &dns.CAA{Hdr: dns.RR_Header{Name: "domain2.test.", Rrtype: dns.TypeCAA, Class: dns.ClassINET}, Flag: flag, Tag: tag, Value: value}
		d := EvaluateCAA([]*dns.CAA{rr}, ca, wildcard)
		relevant := strings.EqualFold(tag, "issue") || wildcard && strings.EqualFold(tag, "issuewild")
		var want bool
		switch {
		case flag&128 != 0 && !knownCAATags[strings.ToLower(tag)]:
			want = false
		case !relevant:
			want = true
		default:
			want = perr == nil && iss.Domain == ca
		}
		if d.Allowed != want {
			t.Fatalf("CAA %d %s %q (wildcard %v): allowed %v, want %v (%s)", flag, tag, value, wildcard, d.Allowed, want, d.Reason)
		}
		if d.Allowed && relevant && len(d.Issuers) != 1 {
			t.Fatalf("allowed by %q with %d issuers", value, len(d.Issuers))
		}
	})
}
