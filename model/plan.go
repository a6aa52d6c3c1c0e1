package model

import "strings"

// Plan is the output of `certplan plan`: the certificates the server needs so
// that every planned name verifies for every client, with and without SNI.
type Plan struct {
	Header
	// ID identifies the plan's content (a hash of its certificates' name sets
	// and IPs); equal plans have equal IDs.
	ID     string     `json:"id"`
	Policy PlanPolicy `json:"policy"`
	// Certificates are sorted by ID.
	Certificates []PlannedCert `json:"certificates"`
	// SNIOnly are planned names that a client without SNI will not verify
	// (their IP's default certificate had no room), sorted.
	SNIOnly []string `json:"sni_only"`
	// ExtraIPsNeeded is how many more IPs it would take to serve every name
	// on a default certificate.
	ExtraIPsNeeded int `json:"extra_ips_needed"`
	// Excluded are names left out, each with its reason, sorted by name.
	Excluded []Exclusion `json:"excluded"`
	// Warnings are sorted by Code then Name.
	Warnings []Warning `json:"warnings"`
	// Budget is the plan's cost against the CA's rate limits.
	Budget Budget `json:"budget"`
	// Coverage is, per (name, IP, port) known from the probe, today's verdicts
	// and the verdicts after the plan is deployed. Empty without a probe.
	Coverage []PlanCoverage `json:"coverage,omitempty"`
	// Retired are the IDs of the previous plan's certificates that this plan
	// no longer uses (all their names gone or moved), sorted.
	Retired []string `json:"retired,omitempty"`
	// NameDomains records which hosted domains use a planned name, for the
	// names where that is not simply the one hosted domain the name is
	// under or equal to (mail.domain2.test for domain2.test needs no
	// entry; a shared mx.hoster.test does), sorted by name. The next plan
	// reads it to tell a name that DNS removed from one it could not see
	// because its domain's lookups failed: the second kind stays on its
	// certificate (see [WarnKeptLookupFailed]).
	NameDomains []NameDomains `json:"name_domains,omitempty"`
	// NoSNI is, per server IP with planned names, how many hosted domains
	// clients without SNI fully verify on the IP's default certificate,
	// before and after the plan; sorted by IP.
	NoSNI []IPNoSNI `json:"no_sni,omitempty"`
	// WildcardNames lists, for each planned wildcard ("*.parent", see
	// --wildcards), the planned names it replaced, sorted by wildcard. No
	// client dials "*.parent": probes and verification dial these names
	// instead ([Plan.DialNames]).
	WildcardNames []WildcardNames `json:"wildcard_names,omitempty"`
}

// WildcardNames are the names one wildcard replaced.
type WildcardNames struct {
	Wildcard string `json:"wildcard"`
	// Names are sorted.
	Names []string `json:"names"`
}

// DialNames returns the names clients dial that the planned name covers:
// the name itself, or for a wildcard the names it replaced (none when
// the plan does not list them: a wildcard kept through a failed lookup).
func (p *Plan) DialNames(name string) []string {
	if !strings.HasPrefix(name, "*.") {
		return []string{name}
	}
	for _, w := range p.WildcardNames {
		if strings.EqualFold(w.Wildcard, name) {
			return w.Names
		}
	}
	return nil
}

// IPNoSNI counts, for one server IP, the hosted domains with planned names
// on it and how many of them are fully covered without SNI: every planned
// name of the domain that resolves to the IP verifies on the IP's default
// certificate (a "*.parent" wildcard covers one label under parent, as
// names.Covers says).
type IPNoSNI struct {
	IP string `json:"ip"`
	// Domains is how many hosted domains have planned names on the IP.
	Domains int `json:"domains"`
	// Before is how many of them clients without SNI fully verify today,
	// as BeforeFrom tells: "probe" (every planned name of the domain was
	// probed on the IP and verified without SNI on every port probed),
	// "previous" (the previous plan's default certificate served on the
	// IP covers them), or "" when neither was given (Before is then 0).
	Before     int    `json:"before"`
	BeforeFrom string `json:"before_from,omitempty"`
	// After is how many of them the planned default certificate covers.
	After int `json:"after"`
}

// Values of [IPNoSNI.BeforeFrom].
const (
	NoSNIFromProbe    = "probe"
	NoSNIFromPrevious = "previous"
)

// NameDomains lists the hosted domains that use a planned name.
type NameDomains struct {
	Name string `json:"name"`
	// Domains are sorted.
	Domains []string `json:"domains"`
}

// PlanPolicy echoes the policy the plan was made with.
type PlanPolicy struct {
	ServerIPs    []string `json:"server_ips"`
	Profile      string   `json:"profile,omitempty"`
	MaxNames     int      `json:"max_names"`
	Include      []string `json:"include,omitempty"`
	Exclude      []string `json:"exclude,omitempty"`
	CAIdentifier string   `json:"ca_identifier"`
	// Hostname is the server's own name (must-cover, role "server").
	Hostname string `json:"hostname,omitempty"`
	// DefaultCert is "shared" when one default certificate serves every
	// server IP (cPanel's Exim and Dovecot have one service certificate
	// for all addresses); empty means "per-ip", a default certificate per
	// IP group, as every plan made before the field.
	DefaultCert string `json:"default_cert,omitempty"`
	// Wildcards is the wildcard mode ("auto" or "always"; empty means
	// "never", as every plan made before the field) and WildcardZones the
	// zones auto may use ("*.parent" names need DNS-01 in the parent's
	// zone); see planner/wildcards.go.
	Wildcards     string   `json:"wildcards,omitempty"`
	WildcardZones []string `json:"wildcard_zones,omitempty"`
}

// DefaultCertShared is [PlanPolicy.DefaultCert] of a plan with one
// default certificate for every server IP.
const DefaultCertShared = "shared"

// PlannedCert is one certificate to issue.
type PlannedCert struct {
	// ID is stable across plans: certificates keep their ID while their names
	// change. New IDs are derived from the first name, such as
	// "default-127.0.0.2" or "sni-domain2.test".
	ID string `json:"id"`
	// Names, sorted; the first in CommonName order is Names[0].
	Names []string `json:"names"`
	// IPs the certificate is served on, sorted.
	IPs []string `json:"ips"`
	// Default is true when it is the default (no-SNI) certificate of IPs.
	Default bool `json:"default"`
	// Change against the previous plan: "new", "unchanged", "changed".
	Change string `json:"change"`
	// Added and Removed names against the previous plan.
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// MustCover names are never dropped at issuance (server hostname, --include).
	MustCover []string `json:"must_cover,omitempty"`
	// Key says how the next order for this certificate chooses its key:
	// empty for the run's default (a new key, or --reuse-key), KeyKeep or
	// KeyNext. KeyReason says why, for people.
	Key       string `json:"key,omitempty"`
	KeyReason string `json:"key_reason,omitempty"`
}

// Values of [PlannedCert.Key].
const (
	// KeyKeep: the current key is reused (DANE pins it, or whether it
	// does is unknown); an order that cannot reuse it is refused.
	KeyKeep = "keep"
	// KeyNext: the staged next key (`certplan rollover begin`), whose
	// TLSA record is published and seen, becomes the key.
	KeyNext = "next"
)

// Exclusion codes.
const (
	ExcludePointsElsewhere = "points-elsewhere"
	ExcludeNoAddress       = "no-address"
	ExcludeCAAForbids      = "caa-forbids"
	ExcludePolicy          = "excluded-by-policy"
	ExcludeLookupFailed    = "lookup-failed"
	ExcludeInvalidName     = "invalid-name" // not a host name a public CA issues for
	// ExcludeWildcardOnly: a conventional name that resolves only as a
	// wildcard would ([Name.Wildcard]), named by no MX, SRV or MTA-STS
	// record and not mail.<domain>; --include plans it anyway.
	ExcludeWildcardOnly = "wildcard-only"
	// ExcludeDANEPinned: TLSA records pin the name's key (or may: their
	// state is unknown), and they trust no key of the certificate the name
	// would go on; the reason gives the records to publish.
	ExcludeDANEPinned = "dane-pinned"
)

// Exclusion explains why a name is not planned.
type Exclusion struct {
	Name string `json:"name"`
	Code string `json:"code"`
	// Reason is one sentence for people, with the fix where there is one.
	Reason string `json:"reason"`
}

// Warning codes.
const (
	WarnSomeHere       = "points-partly-elsewhere"
	WarnSNIOnly        = "sni-only"
	WarnRateLimit      = "rate-limit"
	WarnOverLimit      = "over-name-limit"
	WarnMustCoverIssue = "must-cover-problem"
	WarnDANE           = "dane"
	WarnCAMismatch     = "ca-mismatch"      // CAA was checked for another CA than the plan's
	WarnIdleIP         = "ip-without-names" // a server IP no planned name resolves to
	// WarnKeptLookupFailed: a name on a previous certificate whose lookup
	// failed this run (its own, its CAA, or its hosted domain's) stays on
	// its certificate rather than being dropped on a DNS hiccup.
	WarnKeptLookupFailed = "kept-lookup-failed"
	// WarnTLSALookupFailed: the TLSA lookup of a planned MX target failed,
	// so whether DANE pins its key or CA is unknown (the name is planned).
	WarnTLSALookupFailed = "tlsa-lookup-failed"
	// WarnWildcardKept: a wildcard-only name stays on the previous plan's
	// certificate rather than being dropped from it.
	WarnWildcardKept = "wildcard-only-kept"
	// WarnWildcardName: a "*.parent" name replaces the one-label names
	// under parent on a certificate (--wildcards); the message lists them.
	WarnWildcardName = "wildcard-name"
	// WarnWildcardExplicit: names that a wildcard could replace stay
	// explicit (zone not allowed, CAA issuewild forbids or is unknown).
	WarnWildcardExplicit = "wildcard-explicit"
	// WarnDANETA: secure DANE-TA records (usage 2) at an MX match none
	// of the roots the CA issues under: the CA may issue from another
	// intermediate than the one pinned (RFC 7671 §5.2).
	WarnDANETA = "dane-ta"
	// WarnMTASTS: an MX host an MTA-STS enforce policy lists is not
	// planned (it points elsewhere, CAA forbids it, ...): senders that
	// enforce the policy will not deliver to it here (RFC 8461 §4.2).
	WarnMTASTS = "mta-sts"
	// WarnMTASTSTesting: an MX host a testing policy lists is not on the
	// default certificate of its IPs (senders without SNI would report
	// a failure; enforce would refuse delivery).
	WarnMTASTSTesting = "mta-sts-testing"
)

// Warning is a problem that does not exclude a name.
type Warning struct {
	Code    string `json:"code"`
	Name    string `json:"name,omitempty"`
	Message string `json:"message"`
}

// Budget counts what the plan costs against the CA's rate limits.
type Budget struct {
	// Orders is the number of certificates to order now (new or changed).
	Orders int `json:"orders"`
	// PerRegisteredDomain: for each registered domain (public suffix list),
	// how many of the plan's certificates name it; sorted by domain.
	PerRegisteredDomain []DomainCount `json:"per_registered_domain"`
}

// DomainCount is a registered domain and a count.
type DomainCount struct {
	Domain string `json:"domain"`
	Count  int    `json:"count"`
	// Orders is how many of the certificates to order now (new or changed)
	// name the domain: what counts against a per-domain weekly limit when
	// the orders are not ARI renewals.
	Orders int `json:"orders"`
}

// PlanCoverage is one (name, IP, port) before and after the plan.
type PlanCoverage struct {
	Name             string `json:"name"`
	IP               string `json:"ip"`
	Port             int    `json:"port"`
	BeforeWithSNI    string `json:"before_with_sni"`
	BeforeWithoutSNI string `json:"before_without_sni"`
	AfterWithSNI     string `json:"after_with_sni"`
	AfterWithoutSNI  string `json:"after_without_sni"`
	// Note explains a name still broken after the plan.
	Note string `json:"note,omitempty"`
}
