// Package names normalises the host and domain names certplan works with:
// lowercase, no trailing dot, internationalised names as A-labels
// (`bücher.test` → `xn--bcher-kva.test`, RFC 5890/5891 through
// golang.org/x/net/idna's lookup profile), and validated as host names
// (letters, digits and hyphens; RFC 1123).
//
// It owns the rules for names, so that the command line, the inventory and
// the planner accept the same ones:
//   - [Normalize] reads a name given by a person (arguments, domain
//     lists, zone file origins) and checks it;
//   - [FromDNS] puts a name read from a DNS record, already in wire form,
//     in certplan's form without checking it;
//   - [Check] reports whether a name in certplan's form is a host name a
//     public CA issues for (the planner's test of every inventory name);
//   - [Label] reads one label given by a person (an --exclude pattern's).
//
// A host name is labels of letters, digits and inner hyphens (RFC 1123
// §2.1: a label may start with a digit), at least two of them, and its
// top-level label is not all digits (RFC 3696 §2), which also keeps IPv4
// addresses out.
package names

import (
	"errors"
	"fmt"
	"net/netip"
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
	a, err := profile.ToASCII(s)
	if err != nil {
		return "", bad(in, "not a valid internationalised name: %s", strings.TrimPrefix(err.Error(), "idna: "))
	}
	a = strings.ToLower(a)
	if err := Check(a); err != nil {
		var e *Error
		if errors.As(err, &e) {
			err = bad(in, "%s", e.Reason)
		}
		return "", err
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

// Check reports why name, in certplan's form (A-labels, lowercase, no
// trailing dot), is not a host name a public CA issues for, or nil: too
// long, a single label, a label that is empty, too long or not letters,
// digits and inner hyphens, or an all-digit top-level label. It does not
// decode "xn--" labels ([Normalize] does): it runs on every name of an
// inventory, which dnscheck read from DNS in wire form.
func Check(name string) error {
	if len(name) > MaxNameLength {
		return bad(name, "%d characters long; at most %d are allowed", len(name), MaxNameLength)
	}
	if !strings.Contains(name, ".") {
		return bad(name, "a single label; want a fully qualified domain name such as example.com")
	}
	last := ""
	for rest := name; ; {
		l, r, more := strings.Cut(rest, ".")
		if err := checkLabel(l); err != nil {
			return bad(name, "%s", err.(*Error).Reason)
		}
		if !more {
			last = l
			break
		}
		rest = r
	}
	if allDigits(last) {
		return bad(name, "top-level label %q is all digits: not a domain name (an IP address?)", last)
	}
	return nil
}

// allDigits reports whether a top-level label is all digits, which RFC
// 3696 §2 rules out ("1com" is fine, "123" is not): such a name is a
// mistyped address (127.0.0) or a private label no public CA issues for.
func allDigits(tld string) bool {
	return strings.Trim(tld, "0123456789") == ""
}

// Label returns the A-label form of one label given by a person,
// lowercase, and checks it as a label of a host name.
func Label(l string) (string, error) {
	l = strings.ToLower(l)
	for i := 0; i < len(l); i++ {
		if l[i] >= 0x80 {
			a, err := idna.Lookup.ToASCII(l)
			if err != nil {
				return "", &Error{Reason: fmt.Sprintf("label %q: %v", l, err)}
			}
			l = a
			break
		}
	}
	if err := checkLabel(l); err != nil {
		return "", err
	}
	return l, nil
}

// checkLabel reports why l (ASCII) is not a label of a host name: empty,
// longer than 63 characters, or other than letters, digits and inner
// hyphens (RFC 1123 §2.1, RFC 1035 §2.3.4).
func checkLabel(l string) error {
	if l == "" {
		return &Error{Reason: "empty label"}
	}
	if len(l) > MaxLabelLength {
		return &Error{Reason: fmt.Sprintf("label %q is %d characters long; at most %d are allowed", l, len(l), MaxLabelLength)}
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(l)-1:
		default:
			return &Error{Reason: fmt.Sprintf("label %q: only letters, digits and inner hyphens are allowed", l)}
		}
	}
	return nil
}

// IsWildcard reports whether name is a wildcard ("*.example.com").
func IsWildcard(name string) bool { return strings.HasPrefix(name, "*.") }

// NormalizeWildcard normalises a certificate name that may be a wildcard:
// "*.Example.COM." becomes "*.example.com". The part after "*." must be a
// name [Normalize] accepts; a "*" anywhere else (a partial-label wildcard
// such as "mail*.example.com", or "*" inside the name) is refused, as CAs
// refuse it (CA/B Forum Baseline Requirements 3.2.2.6). A name without a
// wildcard is normalised by Normalize.
func NormalizeWildcard(s string) (string, error) {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "*.") {
		return Normalize(s)
	}
	base, err := Normalize(t[2:])
	if err != nil {
		return "", err
	}
	return "*." + base, nil
}

// Covers reports whether a certificate name (a SAN dNSName, normalised:
// lowercase A-labels, no trailing dot) covers host, as RFC 6125 §6.4.3 and
// every current mail client match it: equal names match; a wildcard
// "*.parent" matches exactly one left-most label under parent
// ("*.example.com" covers "mail.example.com", not "example.com" and not
// "a.mail.example.com"); a partial-label wildcard ("m*.example.com")
// matches nothing. This is the rule of [crypto/x509.Certificate.VerifyHostname]
// for DNS names.
func Covers(certName, host string) bool {
	if certName == host {
		return !strings.Contains(host, "*")
	}
	if !IsWildcard(certName) || strings.Contains(certName[1:], "*") {
		return false
	}
	label, parent, ok := strings.Cut(host, ".")
	return ok && label != "" && label != "*" && "*."+parent == certName
}

// WildcardParent is the name a wildcard would cover host under:
// "mail.example.com" gives "*.example.com". ok is false for a host of
// fewer than three labels: a wildcard directly under a top-level domain is
// never issued.
func WildcardParent(host string) (wildcard string, ok bool) {
	_, parent, found := strings.Cut(host, ".")
	if !found || !strings.Contains(parent, ".") {
		return "", false
	}
	return "*." + parent, true
}
