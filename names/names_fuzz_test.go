package names

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"

	"github.com/certplan/certplan/examples/lab/zones"
	"github.com/miekg/dns"
)

//	go test -run XXX -fuzz FuzzNormalize -fuzztime 150s -parallel 1 ./names/

// FuzzNormalize checks what Normalize promises of a name it accepts: the
// output is lowercase ASCII letters, digits and hyphens in two or more
// labels of 1 to 63 characters (no label starts or ends with a hyphen, the
// top-level one is not all digits), at most 253 in all; normalising it
// again, in upper case or with a trailing dot, gives it back; its U-label
// form, when it has one, normalises back to it; and FromDNS reads its FQDN
// as it. A name it rejects is an *Error.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"example.test", "Mail.Example.TEST.", "  example.test \t", "bücher.test", "BÜCHER.test",
		"XN--BCHER-KVA.TEST", "bücher。test", "a-1.b2.test", strings.Repeat("a", 63) + ".test",
		"", ".", "a..test", "*.example.test", "_dmarc.example.test", "localhost", "127.0.0.1",
		"[::1]", "mail.123", "xn--zz-.test", "a\xff.test", "ﬀ.test", "ß.test", "ＥＸＡＭＰＬＥ.test",
		"xn--mnchen-3ya.test", "ا.test", "a\u200d.test",
	} {
		f.Add(s)
	}
	// Every owner name and target of the lab's zones.
	files, _ := fs.Glob(zones.FS, "*.db")
	for _, file := range files {
		b, err := fs.ReadFile(zones.FS, file)
		if err != nil {
			f.Fatal(err)
		}
		zp := dns.NewZoneParser(bytes.NewReader(b), "", file)
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			f.Add(rr.Header().Name)
			switch rr := rr.(type) {
			case *dns.MX:
				f.Add(rr.Mx)
			case *dns.CNAME:
				f.Add(rr.Target)
			case *dns.SRV:
				f.Add(rr.Target)
			}
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := Normalize(in)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Normalize(%q): error %T, want *Error", in, err)
			}
			return
		}
		checkNormal(t, in, n)
		for _, again := range []string{n, strings.ToUpper(n), n + ".", " " + n + "\n"} {
			if m, err := Normalize(again); err != nil || m != n {
				t.Fatalf("Normalize(%q) = %q; Normalize(%q) = %q, %v", in, n, again, m, err)
			}
		}
		if u := Unicode(n); u != "" {
			if m, err := Normalize(u); err != nil || m != n {
				t.Fatalf("Normalize(%q) = %q, whose U-labels %q normalise to %q, %v", in, n, u, m, err)
			}
		}
		if m := FromDNS(dns.Fqdn(strings.ToUpper(n))); m != n {
			t.Fatalf("FromDNS(%q) = %q", dns.Fqdn(n), m)
		}
	})
}

func checkNormal(t *testing.T, in, n string) {
	t.Helper()
	if len(n) > MaxNameLength {
		t.Fatalf("Normalize(%q) = %q: %d characters", in, n, len(n))
	}
	labels := strings.Split(n, ".")
	if len(labels) < 2 {
		t.Fatalf("Normalize(%q) = %q: a single label", in, n)
	}
	for _, l := range labels {
		if l == "" || len(l) > MaxLabelLength || l[0] == '-' || l[len(l)-1] == '-' {
			t.Fatalf("Normalize(%q) = %q: label %q", in, n, l)
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
				t.Fatalf("Normalize(%q) = %q: byte %q", in, n, c)
			}
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		t.Fatalf("Normalize(%q) = %q: numeric top-level label", in, n)
	}
}
