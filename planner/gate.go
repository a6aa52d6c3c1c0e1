package planner

import (
	"fmt"
	"slices"
	"strings"
)

// Refusals. A plan that would stop inbound mail is not returned: Plan
// returns a *GateError instead, which says per name what to publish or
// change (dane.go: a name served now would move onto a key its TLSA
// records do not trust; mtasts.go: an MX host an
// enforce policy lists would be off its IPs' default certificate).

// GateError is a plan refused by the DANE or MTA-STS gates.
type GateError struct {
	DANE   []DANERefusal
	MTASTS []MTASTSRefusal
}

// DANERefusal is a name whose TLSA records pin a key that the plan would
// change.
type DANERefusal struct {
	// Name is the pinned name; Cert the certificate the plan puts it on;
	// From the previous certificates that held it and serve it now (a
	// name new to the plan is left out instead, dane.go).
	Name, Cert string
	From       []string
	// Why are the pins' reasons, such as "validated TLSA records at
	// _25._tcp.mx.d.test".
	Why []string
	// Records are the TLSA records to publish, in zone-file syntax, for
	// the key Cert will have; empty when that key is not known yet
	// (KeyKnown false: a certificate never issued, without a staged key).
	Records  []string
	KeyKnown bool
}

// MTASTSRefusal is an MX host an enforce policy lists that the plan
// leaves off the default certificate of its IPs (RFC 8461 §4.2: senders
// without SNI, and all senders on a default that does not match, refuse
// delivery).
type MTASTSRefusal struct {
	Domain, Host string
	// Policy is the policy's mx lines, such as "mx: *.d.test".
	Policy string
	IPs    []string
}

func (e *GateError) Error() string {
	var parts []string
	for _, r := range e.DANE {
		from := "a certificate new to it"
		if len(r.From) > 0 {
			from = "from " + strings.Join(r.From, ", ")
		}
		parts = append(parts, fmt.Sprintf("%s would move to %s (%s), whose key its TLSA records do not pin (%s)", r.Name, r.Cert, from, strings.Join(r.Why, "; ")))
	}
	for _, r := range e.MTASTS {
		parts = append(parts, fmt.Sprintf("%s, which the enforce MTA-STS policy of %s lists (%s), would not be on the default certificate of %s (the name limit)", r.Host, r.Domain, r.Policy, strings.Join(r.IPs, ", ")))
	}
	return "plan refused: " + strings.Join(parts, "; ") + ": it would stop mail from senders that check them"
}

// Hints say what to do, one sentence each; records to publish are on
// lines of their own.
func (e *GateError) Hints() []string {
	var h []string
	var recs, unknown []string
	for _, r := range e.DANE {
		recs = append(recs, r.Records...)
		if !r.KeyKnown {
			unknown = append(unknown, r.Cert)
		}
	}
	if len(recs) > 0 {
		h = append(h, "publish these TLSA records beside the current ones (RFC 7671 §8.1), wait two TTLs, then plan again:\n  "+strings.Join(recs, "\n  "))
	}
	if len(unknown) > 0 {
		h = append(h, "the key of "+strings.Join(slices.Compact(unknown), ", ")+" is not known yet: stage one (certplan rollover begin ID) and publish its 3 1 1 record first")
	}
	if len(e.DANE) > 0 {
		h = append(h, "or plan without --repack (names stay on their certificates and keep their keys), or remove the TLSA records (wait two TTLs) if DANE is no longer wanted")
	}
	if len(e.MTASTS) > 0 {
		h = append(h, "make room on the default certificate (fewer names on the IP, a higher --max-names, --exclude other names), or move the host to another IP; switching the policy to testing makes this a warning")
	}
	return h
}
