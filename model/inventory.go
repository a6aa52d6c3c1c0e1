package model

import (
	"strconv"
	"strings"
)

// Inventory is the output of `certplan inventory`: every name that mail
// clients and MTAs use to reach the hosted domains, as found in DNS.
type Inventory struct {
	Header
	// CAIdentifier is the CAA issuer domain the CAA verdicts were computed
	// for, such as "letsencrypt.org".
	CAIdentifier string `json:"ca_identifier"`
	// ServerIPs are the addresses that count as "here", sorted.
	ServerIPs []string `json:"server_ips"`
	// Resolver is what the inventory learnt of its resolver's DNSSEC
	// validation: ResolverValidating when it set the AD bit on a query
	// (with DO) that must validate, ResolverNotValidating when it did
	// not; empty in inventories from before.
	Resolver string `json:"resolver_dnssec,omitempty"`
	// Names are sorted by Name.
	Names []Name `json:"names"`
	// Domains are the hosted domains, sorted by Domain.
	Domains []Domain       `json:"domains"`
	Stats   InventoryStats `json:"stats"`
	// InputErrors are the inputs (domain lists, zone files, the files of
	// a --source) that could not be read in full, in the order read: each
	// cost only its own file or line, every other domain is in Domains.
	InputErrors []InputError `json:"input_errors,omitempty"`
	// SkippedDomains are domains a source names but leaves out on
	// purpose, such as a cPanel domain whose mail is delivered elsewhere.
	SkippedDomains []SkippedDomain `json:"skipped_domains,omitempty"`
}

// Values of [Inventory.Resolver].
const (
	ResolverValidating    = "validating"
	ResolverNotValidating = "not-validating"
)

// InputError is one input that could not be read in full.
type InputError struct {
	// File is the path as read ("-" is standard input).
	File string `json:"file"`
	// Line is 1-based; 0 (omitted) when the problem is the whole file.
	Line int `json:"line,omitempty"`
	// Message says what is wrong, and the fix where there is one.
	Message string `json:"message"`
}

// String is "file:line: message" (or "file: message").
func (e InputError) String() string {
	if e.Line == 0 {
		return e.File + ": " + e.Message
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Message
}

// WarnInputError is the code of a plan [Warning] that repeats one of the
// inventory's input errors, so that the applied plan in the state
// directory keeps them for `certplan check` (which reports them as
// WARNING). Its Name is the file, its Message the InputError's text.
const WarnInputError = "input-error"

// SkippedDomain is a domain a source leaves out on purpose.
type SkippedDomain struct {
	Domain string `json:"domain"`
	// Source is the source that left it out, such as
	// "cpanel:/etc/remotedomains".
	Source string `json:"source"`
	Reason string `json:"reason"`
}

// Name is one DNS name that clients dial.
type Name struct {
	// Name is the A-label form: lowercase, no trailing dot.
	Name string `json:"name"`
	// Unicode is the U-label form when Name is an IDN, else empty.
	Unicode string `json:"unicode,omitempty"`
	// Roles, sorted, from the Role* constants.
	Roles []string `json:"roles"`
	// Domains are the hosted domains that use this name, sorted.
	Domains []string `json:"domains"`
	// Sources say which record made each (domain, role) pair, sorted: e.g.
	// {Domain: "domain2.test", Role: "mx", Record: "domain2.test. MX 10 mail.domain2.test."}.
	Sources []Source `json:"sources,omitempty"`
	// CNAMEChain lists the CNAME targets followed from Name, in order.
	CNAMEChain []string `json:"cname_chain,omitempty"`
	// Addresses are the A and AAAA addresses of the end of the chain, sorted.
	Addresses []string `json:"addresses"`
	// Here is HereAll, HereSome or HereNone.
	Here string `json:"here"`
	// CAAOK is true when CAA allows CAIdentifier to issue for Name.
	CAAOK bool `json:"caa_ok"`
	// CAA explains the verdict.
	CAA CAAVerdict `json:"caa"`
	// TLSA holds the records at _25._tcp.<name> for MX targets (RFC 7672).
	TLSA []TLSA `json:"tlsa,omitempty"`
	// TLSAError is non-empty when the TLSA lookup failed: the name's
	// addresses are fine, but whether DANE pins its key is unknown.
	TLSAError string `json:"tlsa_error,omitempty"`
	// TLSADNSSEC is the DNSSEC status of the answer at _25._tcp.<name>,
	// one of the DNSSEC* values; empty when TLSA was not asked or the
	// inventory predates the field (both read as [DNSSECUnknown]).
	TLSADNSSEC string `json:"tlsa_dnssec,omitempty"`
	// TLSATTL is the TTL in seconds of the TLSA record set (or of the
	// negative answer): how long a resolver may keep what it saw.
	TLSATTL uint32 `json:"tlsa_ttl,omitempty"`
	// PortTLSA are the TLSA record sets published for the name at other
	// ports than 25 (_465._tcp, _587._tcp for a submission name), where
	// any exist or the lookup failed; sorted by port.
	PortTLSA []PortTLSA `json:"port_tlsa,omitempty"`
	// CAAWildOK is true when CAA allows CAIdentifier to issue a wildcard
	// "*.<parent>" covering Name (RFC 8659 issuewild, which falls back to
	// issue when absent); CAAWild explains it. Set only for names a
	// wildcard could cover, by inventories that ask (see issue 19).
	CAAWildOK bool        `json:"caa_wild_ok,omitempty"`
	CAAWild   *CAAVerdict `json:"caa_wild,omitempty"`
	// Error is non-empty when looking up the name itself failed; Addresses
	// and verdicts are then incomplete. A failure of a name outside the
	// hosted domains that use it (another provider's MX or SRV target) is
	// recorded here only: it does not fail those domains.
	Error string `json:"error,omitempty"`
	// Wildcard is true for a conventional name (mail., smtp., imap., pop.,
	// autoconfig., autodiscover.) that resolves exactly like a name that
	// cannot exist under its domain: same CNAME chain, same addresses. A
	// wildcard record (RFC 4592, "*.domain") answers for it, so it may exist
	// only because of the wildcard; DNS alone cannot tell it from an
	// explicit record with the same data. See [Domain.WildcardAddresses].
	Wildcard bool `json:"wildcard,omitempty"`
}

// Definitive NXDOMAIN answers, as the inventory writes them into
// [Name.Error] and [Domain.Error]. They are DNS saying that a name or
// domain does not exist, not a failed lookup: the planner removes such a
// name from its certificate, where it keeps one whose lookup failed.
const (
	// NameErrNXDOMAIN is (part of) Name.Error when the name does not exist.
	NameErrNXDOMAIN = "no such name (NXDOMAIN)"
	// DomainErrNXDOMAIN is part of Domain.Error when the hosted domain does
	// not exist ("MX domain2.test: NXDOMAIN: the domain does not exist").
	DomainErrNXDOMAIN = "NXDOMAIN: the domain does not exist"
)

// HasRole reports whether n has role r.
func (n *Name) HasRole(r string) bool {
	for _, x := range n.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// Source records why a name is in the inventory.
type Source struct {
	Domain string `json:"domain"`
	Role   string `json:"role"`
	// Record is the DNS record that named it, in presentation format, or
	// "exists" for a conventional name such as mail.D found by lookup.
	Record string `json:"record"`
}

// CAAVerdict is the outcome of RFC 8659 CAA processing for one name.
type CAAVerdict struct {
	// At is the name whose CAA record set is relevant (the closest one found
	// climbing towards the root); empty when no CAA exists, which allows any CA.
	At string `json:"at,omitempty"`
	// Alias is the CNAME target where the set was found when At is an
	// alias (RFC 8659 follows CNAMEs): the records live there, and a record
	// to add goes there.
	Alias string `json:"alias,omitempty"`
	// Records are the relevant set in presentation format, sorted.
	Records []string `json:"records,omitempty"`
	// Reason is a short explanation, such as
	// `CAA at domain3.test allows only "sectigo.com"`.
	Reason string `json:"reason,omitempty"`
	// Error is set when the CAA lookup failed (a CA treats that as forbidding).
	Error string `json:"error,omitempty"`
}

// TLSA is one DANE record.
type TLSA struct {
	Usage        uint8  `json:"usage"`
	Selector     uint8  `json:"selector"`
	MatchingType uint8  `json:"matching_type"`
	Data         string `json:"data"` // lowercase hex
}

// DNSSEC status of an answer, as a validating resolver reports it (the AD
// bit of RFC 4035 §3.2.3, asked for with the DO bit).
const (
	// DNSSECSecure: the resolver validated the answer (AD set). Only
	// secure TLSA records count for DANE (RFC 7672 §2.2), and a secure
	// "no records" means DANE pins nothing.
	DNSSECSecure = "secure"
	// DNSSECInsecure: a resolver known to validate (see
	// [Inventory.Resolver]) answered without AD: the zone is unsigned, so
	// DANE senders ignore its TLSA records.
	DNSSECInsecure = "insecure"
	// DNSSECUnknown: records were seen but nothing says whether senders
	// would trust them: the resolver does not validate, or the lookup
	// failed. A key is then kept as if pinned.
	DNSSECUnknown = "unknown"
)

// PortTLSA is the TLSA record set at _<port>._tcp.<name>.
type PortTLSA struct {
	Port    int    `json:"port"`
	Records []TLSA `json:"records,omitempty"`
	// DNSSEC is one of the DNSSEC* values.
	DNSSEC string `json:"dnssec,omitempty"`
	TTL    uint32 `json:"ttl,omitempty"`
	Error  string `json:"error,omitempty"`
}

// DANE pin kinds, from [Name.DANEPin].
const (
	PinNone    = ""        // no secure TLSA record: a new key or CA is safe for DANE
	PinKey     = "key"     // a secure usage 3 (DANE-EE) or 1 (PKIX-EE) record pins the key
	PinCA      = "ca"      // only usage 2 (DANE-TA) or 0 (PKIX-TA) records: the issuing CA is pinned
	PinUnknown = "unknown" // the TLSA state cannot be known: treat as PinKey
)

// DANEPin says what the TLSA records at _25._tcp.<name> pin, counting only
// what DANE senders would see (RFC 7672): records from a secure answer
// pin; records from an insecure zone pin nothing; a failed lookup, or
// records whose DNSSEC status is unknown (a resolver that does not
// validate, an inventory from before the status was recorded) are
// PinUnknown, so that an unknown state never lets a key change. The
// reason says which, for people.
func (n *Name) DANEPin() (pin, reason string) {
	return danePin("_25._tcp."+n.Name, n.TLSA, n.TLSADNSSEC, n.TLSAError)
}

// DANEPin is [Name.DANEPin] for the record set at _<port>._tcp.<name>
// (name is the host the set belongs to), by the same rule.
func (pt *PortTLSA) DANEPin(name string) (pin, reason string) {
	return danePin("_"+strconv.Itoa(pt.Port)+"._tcp."+name, pt.Records, pt.DNSSEC, pt.Error)
}

// danePin is the one rule of DANEPin for the records at owner.
func danePin(owner string, recs []TLSA, dnssec, lookupErr string) (pin, reason string) {
	if lookupErr != "" {
		return PinUnknown, "the TLSA lookup of " + owner + " failed: " + lookupErr
	}
	if len(recs) == 0 {
		return PinNone, ""
	}
	switch dnssec {
	case DNSSECInsecure:
		return PinNone, ""
	case DNSSECSecure:
	default:
		return PinUnknown, "TLSA records at " + owner + " were not validated (the resolver does not validate, or did not set the AD bit): senders may trust them"
	}
	pin = PinCA
	for _, t := range recs {
		if t.Usage == 3 || t.Usage == 1 {
			pin = PinKey
		}
	}
	return pin, "validated TLSA records at " + owner
}

// Domain is one hosted domain and what DNS says about it.
type Domain struct {
	// Domain is the A-label form.
	Domain  string `json:"domain"`
	Unicode string `json:"unicode,omitempty"`
	// Error is empty when every lookup for the domain succeeded; otherwise it
	// names the failing query and its cause (SERVFAIL, REFUSED, timeout,
	// NXDOMAIN).
	Error string `json:"error"`
	// NullMX is true for "MX 0 ." (RFC 7505): the domain accepts no mail.
	NullMX bool `json:"null_mx,omitempty"`
	// Names used by this domain, sorted.
	Names []string `json:"names"`
	// NoService lists SRV owners whose target is "." (RFC 6186: service not
	// provided), sorted.
	NoService []string `json:"no_service,omitempty"`
	// MTASTS is the _mta-sts TXT record, when present.
	MTASTS *MTASTS `json:"mta_sts,omitempty"`
	// WildcardAddresses lists, sorted, the addresses that a name which cannot exist
	// under the domain resolves to: a wildcard record answers for any
	// name. Set only when one of its conventional names resolves the same
	// way (those are marked [Name.Wildcard]).
	WildcardAddresses []string `json:"wildcard_addresses,omitempty"`
	// Source is the first input that named the domain: "argument",
	// "domains:FILE", "zones:FILE" or KIND:FILE for a --source, such as
	// "cpanel:/etc/userdomains". Empty in inventories made before sources
	// were recorded.
	Source string `json:"source,omitempty"`
	// AlsoIn are the other inputs that named it, sorted.
	AlsoIn []string `json:"also_in,omitempty"`
	// Owner is the account owning the domain, where the source says
	// (cPanel's /etc/userdomains).
	Owner string `json:"owner,omitempty"`
}

// MTASTS is what the inventory knows of a domain's MTA-STS (RFC 8461).
type MTASTS struct {
	// TXT is the _mta-sts.<domain> record text.
	TXT string `json:"txt"`
	// ID is the policy id from the record.
	ID string `json:"id,omitempty"`
	// TXTError says why a sender would not use the record: not exactly
	// one v=STSv1 record, or one that does not parse (RFC 8461 §3.1).
	// The policy is fetched all the same: a sender that cached it keeps
	// to it until its max_age.
	TXTError string `json:"txt_error,omitempty"`
	// Policy is the policy served at
	// https://mta-sts.<domain>/.well-known/mta-sts.txt; nil when it was
	// not fetched or the fetch failed (PolicyError says why).
	Policy      *MTASTSPolicy `json:"policy,omitempty"`
	PolicyError string        `json:"policy_error,omitempty"`
}

// MTA-STS policy modes (RFC 8461 §3.2).
const (
	MTASTSEnforce = "enforce"
	MTASTSTesting = "testing"
	MTASTSNone    = "none"
)

// MTASTSPolicy is a parsed MTA-STS policy (RFC 8461 §3.2).
type MTASTSPolicy struct {
	Mode string `json:"mode"`
	// MaxAge is in seconds.
	MaxAge int64 `json:"max_age"`
	// MX are the policy's mx patterns, lowercase, as written: a name or
	// "*.parent" (one left-most label).
	MX []string `json:"mx"`
}

// MatchesMX reports whether host (normalised) matches one of the policy's
// mx patterns (RFC 8461 §4.1: a "*." pattern matches one left-most label).
func (p *MTASTSPolicy) MatchesMX(host string) bool {
	for _, pat := range p.MX {
		if pat == host {
			return true
		}
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			if label, parent, found := strings.Cut(host, "."); found && label != "" && parent == rest {
				return true
			}
		}
	}
	return false
}

// InventoryStats summarises a run.
type InventoryStats struct {
	Domains       int `json:"domains"`
	DomainsFailed int `json:"domains_failed"`
	Names         int `json:"names"`
	NamesHere     int `json:"names_here"`
	Queries       int `json:"queries"`
	// QueriesByType splits Queries by query type: "A", "AAAA", "CAA",
	// "MX", "SRV", "TLSA", "TXT", and "other" for the rest; types not
	// asked are left out. Each try counts, as in Queries. With it an
	// admin can size a --qps cap and the resolver's load.
	QueriesByType map[string]int `json:"queries_by_type,omitempty"`
	// DANEQueries is how many of Queries the DANE checks added beyond the
	// TLSA records at _25._tcp of MX targets: the probe of the resolver's
	// DNSSEC validation (a DNSKEY question, under "other") and the TLSA
	// records at the submission ports. Issue 20's questions per domain are
	// counted without them.
	DANEQueries int `json:"dane_queries,omitempty"`
}

// NameIndex returns a map from name to index in inv.Names.
func (inv *Inventory) NameIndex() map[string]int {
	m := make(map[string]int, len(inv.Names))
	for i := range inv.Names {
		m[inv.Names[i].Name] = i
	}
	return m
}
