// Package mtasts reads a domain's MTA-STS (RFC 8461): the _mta-sts TXT
// record, the policy text, and the policy fetched over HTTPS. A sender in
// enforce mode refuses an MX whose certificate does not match the policy's
// mx patterns, so the inventory records each hosted domain's policy and the
// planner keeps those names on the certificates.
//
//	txt.go     ParseTXT, IsRecord, SelectTXT: the _mta-sts TXT record (§3.1)
//	policy.go  ParsePolicy and FormatPolicy: the policy text (§3.2)
//	fetch.go   Fetch: GET https://mta-sts.<domain>/.well-known/mta-sts.txt
//	           as §3.3 asks of senders (no redirects, verified certificate,
//	           text/plain), bounded in size (MaxPolicySize) and time
//
// It resolves no name itself: Fetch takes the addresses of the policy host
// from the caller (FetchOptions.Resolve), so that they come from the
// inventory's DNS, never the system resolver. It depends only on model,
// names and the standard library.
package mtasts
