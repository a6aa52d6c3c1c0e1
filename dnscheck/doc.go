// Package dnscheck finds, over DNS, every name that mail clients and MTAs
// use to reach the hosted domains of a shared mail server, and what DNS says
// about each: its CNAME chain, addresses, whether they are this server's,
// the CAA verdict for the CA (RFC 8659, RFC 8657), and the DANE TLSA
// records of MX targets (RFC 7672). It leaves deciding what to issue to the
// planner.
//
// # Names
//
// For each hosted domain D, the inventory holds:
//   - the MX targets, except a null MX ("MX 0 .", RFC 7505);
//   - the targets of the [SRVServices] records under D (RFC 6186, RFC 8314,
//     autodiscover), except a target of "." (service not provided);
//   - the [ConventionalNames] under D that resolve to an address, directly
//     or through CNAMEs;
//   - mta-sts.D when _mta-sts.D has a "v=STSv1" TXT record (RFC 8461).
//
// A failing lookup (SERVFAIL, REFUSED, timeout, NXDOMAIN of the domain
// itself) is recorded on its domain, naming the query and the rcode, and
// never stops the other domains.
//
// # The resolver
//
// [Resolver] is a DNS client built for tens of thousands of domains:
// persistent connected UDP sockets whose reader goroutines match replies to
// queries by ID and question (anything else is dropped), a bound on the
// queries under way, retries on timeout across the configured servers, TCP
// when a reply is truncated, an optional queries-per-second cap, and a
// cache that merges concurrent identical queries, so a name shared by a
// thousand domains is asked once per type.
//
// # Domain sources
//
// [ReadDomains] reads a list (one name a line, "#" comments) and
// [ZoneDirDomains] takes the origins of a directory of BIND zone files,
// such as cPanel's /var/named. Names are normalised by package names.
package dnscheck
