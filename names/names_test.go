package names

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	tests := []struct {
		name, in, want string
		err            string // substring of the error; "" when valid
	}{
		{"plain", "example.test", "example.test", ""},
		{"uppercase", "Mail.Example.TEST", "mail.example.test", ""},
		{"trailing dot", "example.test.", "example.test", ""},
		{"spaces trimmed", "  example.test \t", "example.test", ""},
		{"IDN to A-label", "bücher.test", "xn--bcher-kva.test", ""},
		{"IDN uppercase", "BÜCHER.test", "xn--bcher-kva.test", ""},
		{"A-label kept", "xn--bcher-kva.test", "xn--bcher-kva.test", ""},
		{"A-label uppercase", "XN--BCHER-KVA.TEST", "xn--bcher-kva.test", ""},
		{"fullwidth dot mapped", "bücher。test", "xn--bcher-kva.test", ""},
		{"digits and hyphens", "a-1.b2.test", "a-1.b2.test", ""},
		{"63-char label", long63 + ".test", long63 + ".test", ""},
		{"empty", "", "", "empty name"},
		{"blank", "   ", "", "empty name"},
		{"root", ".", "", "root"},
		{"double dot", "a..test", "", "empty label"},
		{"leading dot", ".a.test", "", "empty label"},
		{"two trailing dots", "a.test..", "", "empty label"},
		{"wildcard alone", "*", "", "wildcard"},
		{"wildcard prefix", "*.example.test", "", "wildcard"},
		{"wildcard inside", "a.*.test", "", "wildcard label"},
		{"underscore", "_dmarc.example.test", "", "underscore"},
		{"underscore inside", "mail_1.example.test", "", "underscore"},
		{"space inside", "ex ample.test", "", `character ' '`},
		{"slash", "a/b.test", "", `character '/'`},
		{"single label", "localhost", "", "single label"},
		{"IPv4", "127.0.0.1", "", "IP address"},
		{"IPv6", "::1", "", "IP address"},
		{"IPv6 bracketed", "[::1]", "", "IP address"},
		{"numeric top-level label", "mail.123", "", "all digits"},
		{"three octets", "127.0.0", "", "all digits"},
		{"digits elsewhere", "123.example.test", "123.example.test", ""},
		{"digit-leading top-level label", "mail.1com", "mail.1com", ""},
		// Cases of the planner's former NormalizeName.
		{"upper case and dot", "Mail.Domain2.Test.", "mail.domain2.test", ""},
		{"IDN below", "mail.bücher.test", "mail.xn--bcher-kva.test", ""},
		{"label too long", long63 + "a.test", "", "at most 63"},
		{"name too long", strings.Repeat(long63+".", 4) + "test", "", "at most 253"},
		{"leading hyphen", "-a.test", "", "hyphen"},
		{"trailing hyphen", "a-.test", "", "hyphen"},
		{"bad punycode", "xn--zz-.test", "", ""},
		{"invalid utf8", "a\xff.test", "", "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.in)
			wantErr := tt.want == ""
			if wantErr {
				if err == nil {
					t.Fatalf("Normalize(%q) = %q, want an error", tt.in, got)
				}
				var ne *Error
				if !errors.As(err, &ne) {
					t.Errorf("error %v is %T, want *Error", err, err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %q, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			// Normalising is idempotent.
			if again, err := Normalize(got); err != nil || again != got {
				t.Errorf("Normalize(%q) = %q, %v; not idempotent", got, again, err)
			}
		})
	}
}

func TestUnicode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"xn--bcher-kva.test", "bücher.test"},
		{"mail.xn--bcher-kva.test", "mail.bücher.test"},
		{"example.test", ""},
		{"xn--zz-.test", ""},
	}
	for _, tt := range tests {
		if got := Unicode(tt.in); got != tt.want {
			t.Errorf("Unicode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFromDNS(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Mail.Example.TEST.", "mail.example.test"},
		{"a.test", "a.test"},
		{".", ""},
	}
	for _, tt := range tests {
		if got := FromDNS(tt.in); got != tt.want {
			t.Errorf("FromDNS(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestTopLevelLabel: Normalize (the command line's check) and Check (the
// planner's) follow one rule for the top-level label. They used to
// differ: planner.CheckName refused any top-level label starting with a
// digit ("a.1com"), names.Normalize only all-digit ones. RFC 3696 §2 rules
// out all-digit top-level labels only; RFC 1123 §2.1 lets a label start
// with a digit.
func TestTopLevelLabel(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"all digits", "mail.123", false},
		{"three octets", "127.0.0", false},
		{"IPv4 address", "127.0.0.2", false},
		{"single zero", "a.0", false},
		{"digit-leading", "mail.1com", true},
		{"digit-leading hex-like", "mail.0x1", true},
		{"digits below", "123.4example.test", true},
		{"letters", "mail.example.test", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, nerr := Normalize(tt.in)
			cerr := Check(tt.in)
			if (nerr == nil) != tt.ok || (cerr == nil) != tt.ok {
				t.Errorf("Normalize(%q) error %v, Check error %v; want ok %v for both", tt.in, nerr, cerr, tt.ok)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	tests := []struct{ in, err string }{
		{"mail.domain2.test", ""},
		{"xn--bcher-kva.test", ""},
		{"a-1.b2.test", ""},
		{long63 + ".test", ""},
		// The planner's exclusion reason quotes this message (rules.golden).
		{"bad_name.domain2.test", `"bad_name.domain2.test": label "bad_name": only letters, digits and inner hyphens are allowed`},
		{"localhost", "single label"},
		{"a..test", "empty label"},
		{".a.test", "empty label"},
		{"-x.test", "inner hyphens"},
		{"x-.test", "inner hyphens"},
		{"*.domain2.test", "only letters"},
		{"Mail.test", "only letters"}, // not in certplan's form: Normalize first
		{"mail.test.", "empty label"},
		{"mail.123", "all digits"},
		{long63 + "a.test", "at most 63"},
		{strings.Repeat(long63+".", 4) + "test", "at most 253"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			err := Check(tt.in)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			var ne *Error
			if err == nil || !errors.As(err, &ne) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Check(%q) = %v, want an *Error containing %q", tt.in, err, tt.err)
			}
		})
	}
}

func TestLabel(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"Mail", "mail", ""},
		{"bücher", "xn--bcher-kva", ""},
		{"a1-b", "a1-b", ""},
		{"", "", "empty label"},
		{"-a", "", "inner hyphens"},
		{"a_b", "", "only letters"},
	}
	for _, tt := range tests {
		got, err := Label(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Label(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Label(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
