// Package planner computes the certificates a shared mail server needs so
// that every name its clients dial verifies, with and without SNI.
//
// [Plan] is a pure function: (inventory, probe report, [Policy], previous
// plan, now) → [model.Plan]. It performs no I/O, reads no clock, logs
// nothing and uses no randomness; every slice it returns is sorted, so equal
// inputs give byte-identical JSON. Every decision it makes is recorded in the
// plan with a machine-readable code and a sentence for people
// ([model.Exclusion], [model.Warning]).
//
// # Which names are planned
//
// A name from the inventory is planned when it points here (all or some of
// its addresses are server IPs; "some" adds a [model.WarnSomeHere] warning,
// because HTTP-01 validation may reach the other address), CAA allows the CA,
// its lookup did not fail, it is a valid host name, and no --exclude pattern
// ([Pattern]) matches it. The checks run in that order of precedence:
// exclude pattern, invalid name, lookup failure, wildcard-only, address,
// CAA; a name gets one exclusion, the first that applies.
//
// A conventional name that resolves only as its domain's wildcard record
// would, and that no MX, SRV or MTA-STS record names, is left out
// ([model.ExcludeWildcardOnly], see [WildcardOnly]); mail.<domain> stays.
// --include plans it anyway, and one already on the previous plan's
// certificate stays there with a [model.WarnWildcardKept] warning.
//
// A planned name whose TLSA lookup failed ([model.Name.TLSAError]) is
// planned like any other, with a [model.WarnTLSALookupFailed] warning: its
// addresses are known, only its DANE records are not.
//
// Must-cover names (the server's hostname and --include names) are never
// excluded by a pattern. When one is not in the inventory it is planned on
// the default certificate of every server IP, with a warning. When one is in
// the inventory and fails a check, it is excluded like any other name and a
// [model.WarnMustCoverIssue] warning says so; the command exits non-zero.
//
// # Certificates
//
// Clients that send no SNI get an IP's default certificate, so the default
// certificate of each server IP lists every planned name resolving to that
// IP; a name on two IPs is on both. IPs whose planned name sets are
// identical (typically an IPv4 and an IPv6 address of one server) share one
// default certificate, served on all of them: one order instead of several,
// and no identical name sets ordered twice.
//
// When more names resolve to an IP than one certificate may hold
// ([Policy.MaxNames], or the profile's limit), the default certificate is
// filled by priority ([Priority]: must-cover names, MX targets, submission
// and SMTP names, IMAP and mail names, then the rest; ties by client domain,
// then name). The remaining names go to SNI certificates served on the same
// IPs, packed so that one client domain's names stay together (best fit: the
// certificate that already holds the domain, else the one with the least
// room that still fits, else a new one). A name used by several client
// domains is grouped with the first of them in sort order. Names that only
// SNI clients will verify are listed in sni_only; extra_ips_needed is, summed
// over the IP groups, ceil(overflow / limit).
//
// Certificates whose names are identical once trimmed (two IP groups with
// the same highest-priority names, more than a certificate holds; or one
// client domain filling an SNI certificate on two groups' IPs) would be
// identical orders, counted twice against the CA's duplicate-certificate
// limit: they are merged into one, served on the union of their IPs. Only
// certificates of the same kind merge: a default and an SNI certificate
// with the same names stay two, since Default holds for all of a
// certificate's IPs. Each IP group keeps its own sni_only names, over-limit
// warning and coverage notes.
//
// Every server IP that a planned name resolves to gets a default
// certificate with names, and no certificate of a plan is without names
// (an ACME order needs an identifier). When a group's default would be
// left empty with a previous plan (every name it held went away, or the
// group had no previous default, while its other names stay on SNI
// certificates and no new client domain fits on it), it is refilled as a
// fresh group's would be: the group's highest-priority names up to the
// limit, taken off the SNI certificates that held them. Those change, and
// one left without names is retired. An IP that no planned name resolves
// to gets no certificate at all: a [model.WarnIdleIP] warning says so,
// naming its previous default, which no longer covers it.
//
// # Stability
//
// With a previous plan, names stay in the certificate they are in
// (previous certificates are matched to the new IP groups by the names they
// share), new names fill certificates with room before a new one is made,
// and a removed name changes only its own certificate. A new client
// domain's names are placed together: on the default certificate if it has
// room for all of them, else on one SNI certificate. Names on an SNI
// certificate stay there even when the default certificate gains room,
// unless it would otherwise hold none (see above); planning without a
// previous plan repacks everything. A certificate whose
// name set did not change keeps its ID and is "unchanged": its renewal stays
// inside the CA's rate-limit exemptions.
//
// A previous certificate served on IPs that are now in several groups (one
// merged as above, or a group that split) continues in each of them, as if
// they were still one group; a copy of an SNI certificate takes new names
// only of the client domains it holds, so that the copies stay alike. Copies
// that still hold the same names merge again and keep the ID. A copy never
// takes a name from a certificate served on the group's own IPs (those
// are filled first), and an SNI certificate sharing as many names with two
// groups stays with the one it is served on: otherwise a name on both
// groups' IPs, held by a different certificate on each, moves between
// them, and gets a new ID, on every run.
//
// # DNS failures
//
// A DNS hiccup must not change a certificate. With a previous plan, a name
// on one of its certificates whose lookup failed this run stays where it
// is, with a [model.WarnKeptLookupFailed] warning, until a run sees it
// again: a name in the inventory with a lookup error (its own or its
// CAA's), or a name missing from the inventory while a hosted domain that
// used it has an error. Which hosted domains used a name is recorded in
// the plan ([model.Plan.NameDomains]) where the name does not tell it.
// Definitive answers (NXDOMAIN, an address elsewhere, CAA forbidding the
// CA, a domain gone from the list) remove a name as before, and a name
// whose lookup failed is never added. keep.go has the details.
//
// # Certificate IDs
//
// New default certificates are named "default-<first IP>", new SNI
// certificates "sni-<first client domain>"; an ID already used, in this plan
// or the previous one, gets a "-2", "-3", ... suffix. Matched certificates
// keep their previous ID even when their IPs change. An IP's default
// keeps the ID of the previous default served on it even when none of its
// names remain (the default refilled, or all its names new), unless
// another group's default continues that certificate. When a certificate
// continues several previous ones (two merged) or a previous one continues
// in several certificates (their names diverged), each previous ID goes to
// one certificate: first to one whose names are exactly the previous
// certificate's (it stays "unchanged", no order), then to the one sharing
// most names with it, then to the first (IP groups by first IP) and the
// lowest ID. The other certificates get new IDs; a previous ID left over is
// retired.
package planner
