// Package rollover changes the key of a certificate that DANE pins without
// stopping mail: RFC 7671 section 8.1's "current + next" rollover for TLSA
// "3 1 1" records at _25._tcp.<name> (RFC 7672), and at _465._tcp.<name>
// or _587._tcp.<name> where a submission port's records pin the key (the
// inventory's PortTLSA; [Entries], [Owner]).
//
// A DANE sender accepts only a server key that a validated TLSA record
// names. A new key is therefore safe only once its record is published
// beside the current one, every authoritative server of the zone serves
// it, and every resolver that cached the old record set has let it expire:
// two TTLs after it was first seen everywhere.
//
// # Steps
//
//   - [Stage] makes the next key and keeps it in the store's next-key slot
//     (store.NextKey), once: later calls return the same key, so that the
//     records to publish stay the same from run to run.
//   - [Observer] asks DNS (miekg/dns, a few questions per name): the
//     validating resolver, with DO set, for the TLSA set and its AD bit
//     (RFC 4035 section 3.2.3); the zone's apex, by climbing SOA queries;
//     its NS names and their addresses; and then each authoritative server
//     directly, without recursion, for the TLSA set as it serves it.
//   - [Step] is the state machine, pure and clock-driven: from the staged
//     key and an observation it says where the rollover stands
//     ([StateStaged], [StateWaiting], [StateReady]) and updates the key's
//     first-seen time and TTL, which the caller stores.
//   - [Check] is Observe, Step and the store together, for callers that
//     hold the store's lock (apply, `certplan rollover status`).
//   - Once the next key is current, apply calls [Switched], which records
//     the switch (store.RolledKey) and drops the next-key slot; [Finish]
//     then says which records to remove, and forgets the switch once no
//     authoritative server serves them.
//   - [Publisher] publishes and removes records itself through RFC 2136
//     UPDATE, signed with TSIG, configured like lego's dnsupdate provider
//     (DNSUPDATE_NAMESERVER, DNSUPDATE_TSIG_KEY, DNSUPDATE_TSIG_SECRET,
//     DNSUPDATE_TSIG_ALGORITHM).
//
// # What counts as seen
//
// Only what DANE senders would act on: the next key's record in a TLSA set
// the resolver validated (AD set), and in the set every authoritative
// server answers with authority (AA set) when asked directly. A server
// that does not answer, or answers without the record, is a server that
// has not got it. An observation that misses the record anywhere clears
// the first-seen time: the two TTLs start again from the next observation
// that sees it everywhere. Nothing here ever lets a key change on an
// unknown state.
//
// # The authoritative servers' port
//
// Authoritative servers are asked on port 53. Tests that run several
// servers on 127.0.0.x without root set [Observer.AuthPort] (the CLI reads
// it from CERTPLAN_AUTH_PORT, a test seam, never for normal use).
package rollover
