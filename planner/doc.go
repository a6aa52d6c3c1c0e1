// Package planner computes the certificates a shared mail server needs so
// that every name its clients dial verifies, with and without SNI.
//
// [Plan] is a pure function: (inventory, probe report, [Policy], previous
// plan, now) → [model.Plan], or a refusal (*[GateError]) of a plan that
// would stop inbound mail. What the state directory knows (the
// certificates' current and staged next keys, [KeyState]) comes in with
// the Policy. It performs no I/O, reads no clock, logs
// nothing and uses no randomness; every slice it returns is sorted, so equal
// inputs give byte-identical JSON. Every decision it makes is recorded in the
// plan with a machine-readable code and a sentence for people
// ([model.Exclusion], [model.Warning]). Names are normalised and checked by
// package names alone.
//
// In short: the names that point here and that CAA allows are planned;
// each server IP's default certificate (for clients without SNI) holds its
// most important names up to the CA's limit, shared fairly across client
// domains (every domain's MX targets first; build.go), the rest go to SNI
// certificates packed by client domain; IPs with the same names share
// certificates, and identical certificates merge; with a previous plan,
// names stay where they are, IDs are kept, and a DNS hiccup changes no
// certificate. With --wildcards, two or more names one label under the
// same parent become "*.parent" before any of this (wildcards.go), and
// every "covers" (coverage, the previous plan's names, the no-SNI counts)
// is names.Covers. A name whose key DANE pins goes only on a certificate
// whose key (current, or staged next) its TLSA records already trust, and
// that certificate keeps it (model.PlannedCert.Key); a pinned name new to
// the plan that no such key fits is left out ("dane-pinned", with the
// records to publish) and the rest is planned as usual, so one
// customer's records cost only that customer's name. A plan that would
// move a name served now onto a key its records do not trust, or leave
// an MX host an MTA-STS enforce policy lists off its IP's default
// certificate, is refused (dane.go, mtasts.go, gate.go).
//
// # Where the rules are
//
// Each phase's rules are in the header of its file, in the order Plan
// runs them:
//
//	plan.go       Plan, the planner's state, reading the Policy
//	select.go     which names are planned: exclusions, must-cover names
//	keys.go       client domains ranked in string order (for integer sorts)
//	caa.go        CAA exclusions and the record that fixes them
//	keep.go       DNS failures: names kept from the previous plan through a failed lookup
//	wildcards.go  --wildcards: "*.parent" in place of two or more names under parent
//	wildcard_cover.go  what a wildcard covers: its names, coverage, previous names matched
//	join.go       matching the previous plan's names to this plan's (hash join for 10⁶ names)
//	group.go      server IPs with identical name sets share a default; idle IPs;
//	              shared mode (--default-cert shared): one default for every IP
//	match.go      which previous certificate each group continues
//	build.go      filling defaults fairly by priority, continuing previous certificates, refilling
//	pack.go       packing SNI certificates by client domain (best fit)
//	merge.go      merging identical certificates across groups
//	ids.go        certificate IDs: kept, new, contested, retired
//	assemble.go   the plan document: changes, sni_only, extra IPs, plan ID
//	budget.go     orders per registered domain against the CA's rate limits
//	mtasts.go     MX hosts MTA-STS policies list: first on the defaults; refused off them
//	dane.go       DANE: pinned names only where their records trust the key (fitKey:
//	              KeyKeep, KeyNext), else left out (Plan plans again without them)
//	              or, when served now, refused; DANE-TA records against the CA's roots
//	gate.go       GateError: the refusals, with the records to publish
//	coverage.go   the verdicts the probe's handshakes will get once deployed
//	nosni.go      per server IP, hosted domains fully covered without SNI, before and after
//	renewal.go    when a planned certificate is due (DecideRenewal)
//	policy.go     Policy, profiles and limits, exclude patterns, priorities
//	sets.go       shared helpers: name sets as cand indices, their hash, bitsets
//	input.go      what Plan reads of an inventory: SlimName, SlimDomain drop the rest
//
// # Performance
//
// Plans of 10⁶ names (bench/README.md) shape a few places: names are
// compared as indices (cand indices, key ranks, packed sort keys), the
// previous plan is joined by a radix-sorted hash join (join.go), client
// domains are ranked by merging sorted runs (keys.go) and registered
// domains numbered without a map (budget.go). Each such place says in its
// comment what it saves over the plain way, as measured; tricks_test.go
// keeps the plain versions of the last two and BenchmarkTricks.
package planner
