// Package dnscheck finds, over DNS, every name that mail clients and MTAs
// use to reach the hosted domains of a shared mail server, and what DNS says
// about each: its CNAME chain, addresses, whether they are this server's,
// the CAA verdict for the CA (RFC 8659, RFC 8657), and the DANE TLSA
// records of MX targets (RFC 7672) and submission names with their DNSSEC
// status. It leaves deciding what to issue to the planner.
//
// # Names
//
// For each hosted domain D, the inventory holds:
//   - the MX targets, except a null MX ("MX 0 .", RFC 7505);
//   - the targets of the SRV records under D (RFC 6186, RFC 8314,
//     autodiscover), except a target of "." (service not provided);
//   - the conventional names under D (mail, smtp, imap, pop, autoconfig, autodiscover) that resolve to an address, directly
//     or through CNAMEs;
//   - mta-sts.D when _mta-sts.D has a "v=STSv1" TXT record (RFC 8461);
//     with Options.MTASTS, D's policy is fetched from it over HTTPS
//     (package mtasts) beside the lookups, at most PolicyFetch.Workers at
//     once, the DNS workers never waiting on them (policies.go).
//
// # Questions not asked
//
// The inventory asks only what earlier answers leave open:
//   - AAAA is not asked after an A NXDOMAIN of the same name: a name that
//     does not exist has no records of any type (RFC 1034 §4.3.2, RFC
//     8020). At the end of a CNAME chain the NXDOMAIN speaks of the target
//     (RFC 6604), which AAAA would reach through the same chain. A NODATA
//     says nothing of AAAA.
//   - A CNAME chain whose answer ends without the records asked and
//     carries the SOA of the end's zone is a NODATA of the end (RFC 2308):
//     the end is not asked again ([Response.NegZone]).
//   - _tcp.D is asked before the SRV owners below it; when it
//     answers NXDOMAIN itself (not at the end of a CNAME chain), nothing
//     exists below it (RFC 8020) and they are not asked. This assumes the
//     name servers follow RFC 8020: one that answers NXDOMAIN for an empty
//     non-terminal (_tcp.D when only _imap._tcp.D has records) would hide
//     the SRV records this way. [Options.NoNXDomainCut] asks them all.
//   - A name just under D that answers NXDOMAIN itself (_tcp.D, mail.D)
//     shows that D has no wildcard record, which would have answered for
//     it: the wildcard probe is not asked (unless NoNXDomainCut).
//   - CAA and TLSA are looked up only for names that may go on a
//     certificate: those that point here (all or some of their addresses
//     are Options.ServerIPs), whose address lookup failed, or every name
//     when no server IP is given. The others' CAA verdict says
//     [CAANotLookedUp], with CAAOK false; the planner leaves them out as
//     pointing elsewhere before it looks at CAA.
//   - The CAA question of a name found through a CNAME chain is asked at
//     the chain's end, where its lookup would lead (a CNAME's owner holds
//     no other records, RFC 1034 §3.6.2), as a shared question: when the
//     end is the domain itself (cPanel's "mail.D CNAME D"), the climb
//     from the name finds that set in the cache. The verdict names the
//     alias and the end as before ([CAAResult.Alias]).
//   - Such a name of three labels or more also gets the verdict for the
//     wildcard "*.parent" that would cover it ([WildcardCAA]: CAAWildOK,
//     CAAWild), read from the set its own climb found when that set is
//     above the name (no question), else climbed from parent (cached).
//
// CAA climbing and TLSA stay shared across domains, through the
// Resolver's cache. [Resolver.QueriesByType] counts the questions by
// type; the inventory's summary holds them
// ([model.InventoryStats.QueriesByType]).
//
// A failing lookup of one of D's own names (SERVFAIL, REFUSED, timeout,
// NXDOMAIN of the domain itself) is recorded on D, naming the query and the
// rcode, and never stops the other domains. A failing lookup of a name in
// another zone (another provider's MX or SRV target, one address family of
// it, the target of a CNAME leaving D) is recorded on that name only
// ([model.Name.Error]): D's own records answered. A failing TLSA lookup is
// the name's [model.Name.TLSAError], not a failure of the name or of D.
//
// # DANE
//
// For a name that may go on a certificate (see above), the inventory asks
// TLSA at _25._tcp when it is an MX target, and at _465._tcp and _587._tcp
// when it has a submission role (an SRV target of _submission._tcp or
// _submissions._tcp, or smtp.D; RFC 7673), at the end of its CNAME chain
// first, then at the name (RFC 7672 §2.2.3). Only TLSA and DNSKEY questions
// carry the DO bit (RFC 3225), so a validating resolver sets the AD bit on
// their replies; the others stay small. Once a run, before the domains, the
// inventory asks the root's DNSKEY: the AD bit on that reply says the
// resolver validates ([model.Inventory.Resolver]). A TLSA answer with AD is
// [model.DNSSECSecure] (records, or their validated absence); without AD it
// is [model.DNSSECInsecure] from a validating resolver (an unsigned zone)
// and [model.DNSSECUnknown] from any other; a SERVFAIL (which a broken
// signature gives) or a timeout is a TLSAError, of unknown status.
// [model.Name.TLSATTL] is the record set's TTL, or the negative answer's
// SOA TTL (RFC 2308 §5). The submission ports are listed in
// [model.Name.PortTLSA] only when records exist or the lookup failed.
//
// The probe and the submission ports' questions are DANE's additions to
// issue 20's figures: [Resolver.DANEQueries] and
// [model.InventoryStats.DANEQueries] count them apart (they are in
// QueriesByType too, as TLSA and "other").
//
// # Wildcards
//
// A wildcard record ("*.D", RFC 4592) makes every conventional name
// resolve. When one of D's conventional names resolves, the inventory asks,
// once, for a name under D that cannot exist ([WildcardProbeLabel] and a
// random suffix); if that resolves too, the conventional names that resolve
// exactly like it (same CNAME chain, same addresses) are marked
// [model.Name.Wildcard], and D's [model.Domain.WildcardAddresses] holds the
// wildcard's addresses. DNS cannot tell such a name from an explicit record
// with the same data; the planner decides what to do with them.
//
// # The resolver
//
// [Resolver] is a DNS client built for tens of thousands of domains:
// connected UDP sockets, one for each query under way and reused, on which
// a query reads its own reply (anything but the reply to its ID and
// question is dropped), a bound on the queries under way that a query
// presumed lost stops counting against, retries on timeout across the
// configured servers, TCP when a reply is truncated, an optional
// queries-per-second cap, and a bounded cache of parsed answers that
// merges concurrent identical queries, so a name shared by a thousand
// domains is asked once per type.
//
// The inventory ([Inventory], [Stream]) asks through a [Querier], a
// single method that asks one question; [Resolver] is the one certplan
// uses ([Resolver.Inventory] and [Resolver.Stream] take their defaults
// from it). The inventory looks up many domains at once, each one lookup
// at a time; the names under a domain are asked as questions no one else
// asks (not through the cache), and a timeout on one of them, after every
// try, ends the domain's other lookups at once: a silent name server costs
// one lookup's tries. While a Resolver's query is presumed lost, its
// domain's worker is lent: another worker starts meanwhile (up to eight
// times the workers), so silent name servers hold back no one.
//
// # Files
//
//   - inventory.go: the inventory of a domain, its names and the run;
//     the Collector, which merges the results in memory;
//   - spill.go: the Spill, which merges them as the Collector does but
//     holds only an index, the results in a temporary file (the
//     inventory command's JSON of a large host);
//   - querier.go: the Querier interface, and the Resolver's;
//   - lookup.go: a lookup with CNAME chains followed, [QueryError];
//   - caa.go: CAA climbing and evaluation (RFC 8659, RFC 8657);
//   - dane.go: the TLSA records of a name and their DNSSEC status, the
//     probe of the resolver's validation;
//   - resolver.go: the Resolver: sockets, retries, TCP, the cache, the
//     query counts, the rate cap, the DO and AD bits;
//
// Domain lists, zone directories and the server's own files are read by
// package sources.
package dnscheck
