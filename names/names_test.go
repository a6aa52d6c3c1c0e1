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
