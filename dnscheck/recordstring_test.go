package dnscheck

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestRecordStringFastPath checks recordString's MX and SRV shortcut
// against the presentation format miekg/dns prints, for plain names and for
// names that need escapes (which take the general path).
func TestRecordStringFastPath(t *testing.T) {
	viaString := func(rr dns.RR) string {
		parts := strings.SplitN(rr.String(), "\t", 5)
		return strings.ToLower(rr.Header().Name) + " " + parts[3] + " " + parts[4]
	}
	recs := []string{
		"example.test. 300 IN MX 10 mail.example.test.",
		"Example.TEST. 300 IN MX 0 MX1.Hoster.test.",
		"example.test. 300 IN MX 0 .",
		"example.test. 300 IN MX 65535 a-b_c.example.test.",
		`example.test. 300 IN MX 5 we\.ird.example.test.`,
		`example.test. 300 IN MX 5 sp\032ace.example.test.`,
		`example.test. 300 IN MX 5 \200bin.example.test.`,
		`ex\(am\)ple.test. 300 IN MX 5 mail.example.test.`,
		"_submission._tcp.example.test. 300 IN SRV 0 1 587 mail.example.test.",
		"_IMAPS._tcp.Example.test. 300 IN SRV 65535 65535 65535 IMAP.example.test.",
		"_imaps._tcp.example.test. 300 IN SRV 0 0 0 .",
		`_imaps._tcp.example.test. 300 IN SRV 0 0 993 semi\;colon.example.test.`,
		"*.example.test. 300 IN MX 1 *.mx.test.",
	}
	for _, s := range recs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got, want := recordString(rr), viaString(rr); got != want {
			t.Errorf("recordString(%s) = %q, want %q", s, got, want)
		}
	}
	// And as read from the wire, where miekg/dns escapes the names itself.
	for _, s := range recs {
		rr, _ := dns.NewRR(s)
		buf := make([]byte, 512)
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			t.Fatalf("pack %s: %v", s, err)
		}
		back, _, err := dns.UnpackRR(buf[:n], 0)
		if err != nil {
			t.Fatalf("unpack %s: %v", s, err)
		}
		if got, want := recordString(back), viaString(back); got != want {
			t.Errorf("recordString(unpacked %s) = %q, want %q", s, got, want)
		}
	}
}
