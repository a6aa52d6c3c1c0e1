package mtasts

import (
	"reflect"
	"strings"
	"testing"

	"github.com/certplan/certplan/model"
)

func TestParsePolicy(t *testing.T) {
	for _, c := range []struct {
		in   string
		want *model.MTASTSPolicy
	}{
		{"version: STSv1\r\nmode: enforce\r\nmx: mail.d.test\r\nmx: *.MX.d.test.\r\nmax_age: 604800\r\n",
			&model.MTASTSPolicy{Mode: "enforce", MaxAge: 604800, MX: []string{"mail.d.test", "*.mx.d.test"}}},
		// LF, no final newline, spaces, an extension and a blank line.
		{"version:STSv1\nmode:   testing  \n\nfuture_key: anything: at all\nmx: mail.d.test\nmax_age: 0",
			&model.MTASTSPolicy{Mode: "testing", MaxAge: 0, MX: []string{"mail.d.test"}}},
		{"version: STSv1\nmode: none\nmax_age: 31557600\n",
			&model.MTASTSPolicy{Mode: "none", MaxAge: 31557600}},
	} {
		got, err := ParsePolicy([]byte(c.in))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParsePolicy(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestParsePolicyErrors(t *testing.T) {
	const head = "version: STSv1\nmode: enforce\n"
	for _, c := range []struct{ in, err string }{
		{"", "policy: no version line"},
		{"<html>\n", `policy line 1: "<html>" is not "key: value"`},
		{"version: STSv2\n", `policy line 1: version "STSv2" is not STSv1`},
		{"Version: STSv1\nmode: none\nmax_age: 1\n", "policy: no version line"}, // keys are case-sensitive
		{head + "mode: testing\n", "policy line 3: a second mode (the first is on line 2)"},
		{"version: STSv1\nmode: enforcing\n", `policy line 2: mode "enforcing" is not enforce, testing or none`},
		{head + "mx: mail.d.test\n", "policy: no max_age line"},
		{head + "max_age: 86400\n", "policy: mode enforce and no mx line"},
		{head + "max_age: -1\n", `policy line 3: max_age "-1" is not a number of seconds`},
		{head + "max_age: 1d\n", `policy line 3: max_age "1d" is not a number of seconds`},
		{head + "max_age: 31557601\n", "policy line 3: max_age 31557601 is more than 31557600 (a year)"},
		{head + "max_age: 12345678901\n", `policy line 3: max_age "12345678901" is not a number of seconds`},
		{head + "mx:\n", "policy line 3: mx with no host"},
		{head + "mx: mail*.d.test\n", `policy line 3: mx "mail*.d.test": a wildcard only as "*." and one left-most label`},
		{head + "mx: *.*.d.test\n", `policy line 3: mx "*.*.d.test": a wildcard only as "*." and one left-most label`},
		{head + "mx: mail_1.d.test\n", `policy line 3: mx "mail_1.d.test": `},
		{head + "mx mail.d.test\n", `policy line 3: "mx mail.d.test" is not "key: value"`},
		{"mode: none\nmax_age: 1\n", "policy: no version line"},
	} {
		p, err := ParsePolicy([]byte(c.in))
		if err == nil || !strings.HasPrefix(err.Error(), c.err) || p != nil {
			t.Errorf("ParsePolicy(%q) = %+v, %v; want error %q", c.in, p, err, c.err)
		}
	}
}

func TestFormatPolicy(t *testing.T) {
	p := &model.MTASTSPolicy{Mode: "enforce", MaxAge: 86400, MX: []string{"mail.d.test", "*.mx.d.test"}}
	b := FormatPolicy(p)
	if want := "version: STSv1\r\nmode: enforce\r\nmx: mail.d.test\r\nmx: *.mx.d.test\r\nmax_age: 86400\r\n"; string(b) != want {
		t.Errorf("FormatPolicy = %q, want %q", b, want)
	}
	if got, err := ParsePolicy(b); err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("ParsePolicy(FormatPolicy(p)) = %+v, %v", got, err)
	}
}

// FuzzParsePolicy checks that any input gives a valid policy or an error
// naming where, never a panic, and that a policy read is written back as
// the same policy.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		"version: STSv1\r\nmode: enforce\r\nmx: mail.d.test\r\nmx: *.mx.d.test\r\nmax_age: 604800\r\n",
		"version: STSv1\nmode: none\nmax_age: 0",
		"version:STSv1\nmode:testing\nx-ext: 1\nmx:xn--bcher-kva.test\nmax_age:31557600\n",
		"version: STSv1\nmode: enforce\nmode: none\n",
		"mx: *.\n",
		"\r\n\r\n:\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			if p != nil || !strings.HasPrefix(err.Error(), "policy") {
				t.Fatalf("error %q with policy %+v", err, p)
			}
			return
		}
		switch {
		case p.Mode != "enforce" && p.Mode != "testing" && p.Mode != "none":
			t.Fatalf("mode %q", p.Mode)
		case p.MaxAge < 0 || p.MaxAge > MaxMaxAge:
			t.Fatalf("max_age %d", p.MaxAge)
		case len(p.MX) == 0 && p.Mode != "none":
			t.Fatalf("mode %s without mx", p.Mode)
		}
		again, err := ParsePolicy(FormatPolicy(p))
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("%+v written and read again: %+v, %v", p, again, err)
		}
	})
}
