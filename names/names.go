// Package names normalises the host and domain names certplan works with:
// lowercase, no trailing dot, internationalised names as A-labels
// (`bücher.test` → `xn--bcher-kva.test`, RFC 5890/5891 through
// golang.org/x/net/idna's lookup profile), and validated as host names
// (letters, digits and hyphens; RFC 1123).
//
// It checks names given by people (arguments, domain lists, zone file
// origins). Names read from DNS records are already in wire form and are
// only lowercased by the callers.
package names

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits from RFC 1035 §2.3.4, for the presentation form without the
// trailing dot.
const (
	MaxNameLength  = 253
	MaxLabelLength = 63
)

// Error is a name that is not a valid host or domain name.
type Error struct {
	Name   string // the input, as given
	Reason string
}

func (e *Error) Error() string {
	if e.Name == "" {
		return e.Reason
	}
	return fmt.Sprintf("%q: %s", e.Name, e.Reason)
}

func bad(name, format string, args ...any) error {
	return &Error{Name: name, Reason: fmt.Sprintf(format, args...)}
}

var dotMapper = strings.NewReplacer("\u3002", ".", "\uff0e", ".", "\uff61", ".")

// profile maps (lowercase, width folding, NFC) and checks IDNA2008 rules,
// including STD3 (no "_" or "*") and the validity of "xn--" labels.
var profile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.StrictDomainName(true),
)

// Normalize returns the A-label form of a host or domain name given by a
// person: lowercase, without the trailing dot, internationalised labels
// converted to punycode. It rejects empty names and labels, wildcards,
// underscores and other characters not allowed in host names, IP addresses,
// single-label names, and names or labels that are too long.
func Normalize(s string) (string, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return "", &Error{Reason: "empty name"}
	}
	if !utf8.ValidString(s) {
		return "", bad(in, "not valid UTF-8")
	}
	if _, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return "", bad(in, "an IP address, not a domain name")
	}
	if s == "." {
		return "", bad(in, "the DNS root, not a domain name")
	}
	// UTS #46 treats these full stops as dots; map them before splitting.
	s = dotMapper.Replace(s)
	s = strings.TrimSuffix(s, ".")
	if s == "*" || strings.HasPrefix(s, "*.") {
		return "", bad(in, "a wildcard; give the names themselves")
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" {
			return "", bad(in, "empty label (two dots in a row, or a leading dot)")
		}
		if strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return "", bad(in, "label %q starts or ends with a hyphen", l)
		}
		for _, r := range l {
			switch {
			case r == '_':
				return "", bad(in, "underscore is not allowed in a host name")
			case r == '*':
				return "", bad(in, "a wildcard label inside the name")
			case r < 0x80 && !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'):
				return "", bad(in, "character %q is not allowed in a host name", r)
			}
		}
	}
	if len(labels) < 2 {
		return "", bad(in, "a single label; want a fully qualified domain name such as example.com")
	}
	// RFC 3696 §2: a top-level domain is never all digits. Such a name is a
	// mistyped address (127.0.0) or a private label no public CA issues
	// for, and the planner would refuse it later.
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return "", bad(in, "top-level label %q is all digits: not a domain name (an IP address?)", tld)
	}
	a, err := profile.ToASCII(s)
	if err != nil {
		return "", bad(in, "not a valid internationalised name: %s", strings.TrimPrefix(err.Error(), "idna: "))
	}
	a = strings.ToLower(a)
	// UTS #46 maps some characters to nothing (U+200B ZERO WIDTH SPACE,
	// U+00AD SOFT HYPHEN, U+FEFF): "\u200b.test" becomes ".test" and
	// "a.\ufeff" becomes "a.", past the checks above.
	if l := strings.Split(a, "."); slices.Contains(l, "") || len(l) < 2 {
		return "", bad(in, "empty label once characters that map to nothing (such as U+200B) are removed")
	} else if strings.Trim(l[len(l)-1], "0123456789") == "" {
		return "", bad(in, "top-level label %q is all digits once characters that map to nothing are removed", l[len(l)-1])
	}
	if len(a) > MaxNameLength {
		return "", bad(in, "%d characters long; at most %d are allowed", len(a), MaxNameLength)
	}
	for _, l := range strings.Split(a, ".") {
		if len(l) > MaxLabelLength {
			return "", bad(in, "label %q is %d characters long; at most %d are allowed", l, len(l), MaxLabelLength)
		}
	}
	return a, nil
}

// MustNormalize is Normalize for names known to be valid, such as constants
// in tests; it panics on an invalid name.
func MustNormalize(s string) string {
	n, err := Normalize(s)
	if err != nil {
		panic(err)
	}
	return n
}

// Unicode returns the U-label form of an A-label name, or "" when name has
// no internationalised label or does not decode.
func Unicode(name string) string {
	if !strings.Contains(name, "xn--") {
		return ""
	}
	u, err := idna.Display.ToUnicode(name)
	if err != nil || u == name {
		return ""
	}
	return u
}

// FromDNS returns a name read from a DNS record (such as an MX target) in
// certplan's form: lowercase ASCII, without the trailing dot. The root "."
// becomes "".
func FromDNS(fqdn string) string {
	return strings.ToLower(strings.TrimSuffix(fqdn, "."))
}

// IsWildcard reports whether name is a wildcard ("*.example.com").
func IsWildcard(name string) bool { return strings.HasPrefix(name, "*.") }
