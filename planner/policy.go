package planner

import (
	"fmt"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// Profiles and their name limits (Let's Encrypt: 100 names per certificate
// with "classic", 25 with "tlsserver" and "shortlived").
const (
	ProfileClassic    = "classic"
	ProfileTLSServer  = "tlsserver"
	ProfileShortlived = "shortlived"
)

// ProfileLimits maps a profile to its names-per-certificate limit.
var ProfileLimits = map[string]int{
	ProfileClassic:    100,
	ProfileTLSServer:  25,
	ProfileShortlived: 25,
}

// Default-certificate modes ([Policy.DefaultCert]).
const (
	// DefaultCertPerIP plans a default certificate per IP group: for
	// servers that pick the certificate by the address a client dialled
	// (Postfix with a listener per IP, Dovecot's local blocks).
	DefaultCertPerIP = "per-ip"
	// DefaultCertShared plans one default certificate for every server
	// IP: for servers with one default ("service") certificate whatever
	// the address, such as cPanel's Exim and Dovecot.
	DefaultCertShared = model.DefaultCertShared
)

// RateLimits are the CA's limits the budget is checked against. A zero field
// takes the Let's Encrypt default from [LetsEncryptLimits].
type RateLimits struct {
	// CertsPerRegisteredDomain: certificates per registered domain per week
	// (Let's Encrypt: 50).
	CertsPerRegisteredDomain int
	// NewOrders: new orders per account per 3 hours (Let's Encrypt: 300).
	NewOrders int
	// DuplicateCerts: certificates with an identical name set per week
	// (Let's Encrypt: 5).
	DuplicateCerts int
}

// LetsEncryptLimits are Let's Encrypt's published rate limits.
var LetsEncryptLimits = RateLimits{CertsPerRegisteredDomain: 50, NewOrders: 300, DuplicateCerts: 5}

// Policy is what the operator decides; the inventory and probes are what the
// world says.
type Policy struct {
	// ServerIPs are this server's addresses; empty means the inventory's.
	ServerIPs []string
	// Profile is the ACME profile ("classic", "tlsserver", "shortlived");
	// empty means "classic".
	Profile string
	// MaxNames overrides the profile's names-per-certificate limit when > 0.
	MaxNames int
	// Hostname is the server's own name: must-cover, with role "server".
	Hostname string
	// Include are further must-cover names.
	Include []string
	// Exclude are patterns of names to leave out; see [Pattern].
	Exclude []string
	// CAIdentifier is the CA's CAA issuer domain; empty means the
	// inventory's.
	CAIdentifier string
	// Limits are the CA's rate limits; zero fields take Let's Encrypt's.
	Limits RateLimits
	// MaxNamesPerDomain caps one client domain's names on a default
	// certificate while other domains' names wait (see build.go); 0 or less
	// means max(3, limit/20).
	MaxNamesPerDomain int
	// Repack fills every default and SNI certificate afresh, as a plan
	// without a previous one would, instead of leaving names where the
	// previous plan put them. IDs are still kept where a certificate
	// continues.
	Repack bool
	// DefaultCert is DefaultCertPerIP (or empty) or DefaultCertShared;
	// see group.go.
	DefaultCert string
	// Wildcards is WildcardsNever (or empty), WildcardsAuto or
	// WildcardsAlways; see wildcards.go.
	Wildcards string
	// WildcardZones are the zones auto may plan wildcards in (a zone
	// matches itself and every name under it): the zones the DNS-01
	// provider can write.
	WildcardZones []string
	// DNS01 says a DNS-01 provider is configured: auto without
	// WildcardZones then uses every hosted zone.
	DNS01 bool
	// Keys is not the operator's decision but the state directory's
	// knowledge of the certificates' keys and the CA's roots, for the
	// DANE gates (dane.go); the zero value knows none.
	Keys KeyState
}

// Wildcard modes ([Policy.Wildcards]).
const (
	WildcardsNever  = "never"
	WildcardsAuto   = "auto"
	WildcardsAlways = "always"
)

// SharedDefault reports whether the policy plans one default certificate
// for every server IP, or an error for an unknown mode.
func (p *Policy) SharedDefault() (bool, error) {
	switch p.DefaultCert {
	case "", DefaultCertPerIP:
		return false, nil
	case DefaultCertShared:
		return true, nil
	}
	return false, fmt.Errorf("default certificate mode %q: want per-ip or shared", p.DefaultCert)
}

// NameLimit returns the effective names-per-certificate limit.
func (p *Policy) NameLimit() (int, error) {
	if p.MaxNames < 0 {
		return 0, fmt.Errorf("max names %d: must be positive", p.MaxNames)
	}
	if p.MaxNames > 0 {
		return p.MaxNames, nil
	}
	prof := p.Profile
	if prof == "" {
		prof = ProfileClassic
	}
	n, ok := ProfileLimits[prof]
	if !ok {
		return 0, fmt.Errorf("profile %q: want classic, tlsserver or shortlived, or set a name limit", p.Profile)
	}
	return n, nil
}

func (l RateLimits) withDefaults() RateLimits {
	if l.CertsPerRegisteredDomain <= 0 {
		l.CertsPerRegisteredDomain = LetsEncryptLimits.CertsPerRegisteredDomain
	}
	if l.NewOrders <= 0 {
		l.NewOrders = LetsEncryptLimits.NewOrders
	}
	if l.DuplicateCerts <= 0 {
		l.DuplicateCerts = LetsEncryptLimits.DuplicateCerts
	}
	return l
}

// Pattern is a name pattern for --exclude. Matching is on whole labels and
// case-insensitive, on the A-label (punycode) form without a trailing dot:
//   - a label "*" matches one or more whole labels, anywhere in the pattern:
//     "autodiscover.*" matches autodiscover.domain2.test but not
//     autodiscover itself; "*.example.test" matches mail.example.test and
//     a.b.example.test but not example.test; "mail.*.test" matches
//     mail.x.test and mail.x.y.test;
//   - any other label matches itself only; "*" inside a label ("mail*") is
//     an error rather than a guess;
//   - a pattern without "*" matches exactly one name.
type Pattern struct {
	raw    string
	labels []string
}

// ParsePattern parses an exclude pattern; see [Pattern].
func ParsePattern(s string) (Pattern, error) {
	raw := s
	s = names.FromDNS(strings.TrimSpace(s))
	if s == "" {
		return Pattern{}, fmt.Errorf("pattern %q: empty", raw)
	}
	labels := strings.Split(s, ".")
	for i, l := range labels {
		if l == "*" {
			continue
		}
		if strings.Contains(l, "*") {
			return Pattern{}, fmt.Errorf("pattern %q: \"*\" must be a whole label, such as autodiscover.* or *.example.test", raw)
		}
		a, err := names.Label(l)
		if err != nil {
			return Pattern{}, fmt.Errorf("pattern %q: %w", raw, err)
		}
		labels[i] = a
	}
	return Pattern{raw: raw, labels: labels}, nil
}

// String returns the pattern as given.
func (p Pattern) String() string { return p.raw }

// Match reports whether name (A-label form, any case, optional trailing
// dot) matches the pattern.
func (p Pattern) Match(name string) bool {
	name = names.FromDNS(name)
	if name == "" {
		return false
	}
	return matchLabels(p.labels, strings.Split(name, "."))
}

func matchLabels(pl, nl []string) bool {
	for len(pl) > 0 {
		if pl[0] == "*" {
			for k := 1; k <= len(nl); k++ {
				if matchLabels(pl[1:], nl[k:]) {
					return true
				}
			}
			return false
		}
		if len(nl) == 0 || pl[0] != nl[0] {
			return false
		}
		pl, nl = pl[1:], nl[1:]
	}
	return len(nl) == 0
}

// RegisteredDomain returns the registered domain of name (eTLD+1 by the
// public suffix list, including its private section, as Let's Encrypt
// counts). Names under a TLD the list has no rule for, such as .test, fall
// to the list's default rule "*", so their registered domain is their last
// two labels; a name that is itself a public suffix is returned unchanged.
func RegisteredDomain(name string) string {
	d, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		return name
	}
	return d
}

// Priority returns how much a client without SNI depends on a name with
// these roles: the lowest [model.RolePriority] value of its roles (lower is
// more important); a name without a known role gets the lowest priority.
func Priority(roles []string) int {
	p := lowestPriority
	for _, r := range roles {
		if v, ok := model.RolePriority[r]; ok && v < p {
			p = v
		}
	}
	return p
}

var lowestPriority = func() int {
	m := 0
	for _, v := range model.RolePriority {
		m = max(m, v)
	}
	return m + 1
}()
