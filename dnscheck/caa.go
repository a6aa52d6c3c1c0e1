package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
	"github.com/miekg/dns"
)

// DefaultCAIdentifier is the CAA issuer domain of Let's Encrypt.
const DefaultCAIdentifier = "letsencrypt.org"

// CAAParam is one "key=value" parameter of an issue or issuewild value
// (RFC 8659 §4.2), such as accounturi (RFC 8657) or validationmethods.
type CAAParam struct {
	Key, Value string
}

// CAAIssuer is a parsed issue or issuewild property value.
type CAAIssuer struct {
	Tag string // "issue" or "issuewild", lowercase
	// Domain is the issuer domain name, lowercase; "" (a value of ";")
	// authorises no CA.
	Domain string
	Params []CAAParam
}

// Param returns the value of the parameter key (compared without regard
// to case) and whether it is present.
func (i CAAIssuer) Param(key string) (string, bool) {
	for _, p := range i.Params {
		if strings.EqualFold(p.Key, key) {
			return p.Value, true
		}
	}
	return "", false
}

// ValidationMethods returns the methods the validationmethods parameter
// allows (RFC 8657 §4, such as "http-01", "dns-01"), or nil when the
// parameter is absent (every method allowed).
func (i CAAIssuer) ValidationMethods() []string {
	v, ok := i.Param("validationmethods")
	if !ok {
		return nil
	}
	var out []string
	for _, m := range strings.Split(v, ",") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, strings.ToLower(m))
		}
	}
	return out
}

// String returns the parameters as "key=value; key=value".
func (i CAAIssuer) paramString() string {
	var parts []string
	for _, p := range i.Params {
		parts = append(parts, p.Key+"="+p.Value)
	}
	return strings.Join(parts, "; ")
}

// ParseCAAValue parses an issue or issuewild value (RFC 8659 §4.2):
// an optional issuer domain name, then ";"-separated key=value parameters.
func ParseCAAValue(tag, value string) (CAAIssuer, error) {
	iss := CAAIssuer{Tag: strings.ToLower(tag)}
	dom, params, _ := strings.Cut(value, ";")
	dom = strings.TrimSpace(dom)
	if dom != "" {
		for _, l := range strings.Split(dom, ".") {
			if l == "" || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") || strings.IndexFunc(l, func(r rune) bool {
				return !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
			}) >= 0 {
				return iss, fmt.Errorf("caa %s %q: bad issuer domain name", tag, value)
			}
		}
		iss.Domain = strings.ToLower(dom)
	}
	for _, p := range strings.Split(params, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || strings.IndexFunc(k, func(r rune) bool {
			return !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) >= 0 || strings.IndexFunc(v, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
			return iss, fmt.Errorf("caa %s %q: bad parameter %q", tag, value, p)
		}
		iss.Params = append(iss.Params, CAAParam{Key: strings.ToLower(k), Value: v})
	}
	return iss, nil
}

// knownCAATags are the property tags this evaluation understands (RFC 8659
// §4, RFC 9495, and the CA/Browser Forum's contact tags); a critical
// record with any other tag forbids issuance (RFC 8659 §4.1).
var knownCAATags = map[string]bool{
	"issue": true, "issuewild": true, "iodef": true,
	"contactemail": true, "contactphone": true, "issuemail": true, "issuevmc": true,
}

// CAADecision is the verdict of one CAA record set for one CA.
type CAADecision struct {
	Allowed bool
	// Reason is a short explanation without the place, such as
	// `allows only "sectigo.com"`.
	Reason string
	// Issuers are the entries that authorise the CA, with their parameters
	// (accounturi, validationmethods) for the ACME client to honour.
	Issuers []CAAIssuer
}

// EvaluateCAA decides whether the relevant CAA record set (RFC 8659 §3)
// lets the CA whose issuer domain is caID issue for a name; wildcard is
// true for a "*." name. An empty set allows any CA. A critical record with
// an unknown tag forbids. For a wildcard, issuewild records take precedence
// over issue records when present. Issuer domains compare without regard
// to case; malformed values authorise no CA.
func EvaluateCAA(set []*dns.CAA, caID string, wildcard bool) CAADecision {
	caID = names.FromDNS(strings.TrimSpace(caID))
	if len(set) == 0 {
		return CAADecision{Allowed: true, Reason: "no CAA record: any CA may issue"}
	}
	for _, rr := range set {
		if rr.Flag&128 != 0 && !knownCAATags[strings.ToLower(rr.Tag)] {
			return CAADecision{Reason: fmt.Sprintf("has a critical record with the unknown tag %q: no CA may issue", rr.Tag)}
		}
	}
	tag := "issue"
	if wildcard {
		for _, rr := range set {
			if strings.EqualFold(rr.Tag, "issuewild") {
				tag = "issuewild"
				break
			}
		}
	}
	var d CAADecision
	var others []string
	entries := 0
	for _, rr := range set {
		if !strings.EqualFold(rr.Tag, tag) {
			continue
		}
		entries++
		iss, err := ParseCAAValue(tag, rr.Value)
		if err != nil {
			continue
		}
		if iss.Domain != "" && iss.Domain == caID {
			d.Issuers = append(d.Issuers, iss)
		} else if iss.Domain != "" {
			others = append(others, strconv.Quote(iss.Domain))
		}
	}
	suffix := ""
	if tag == "issuewild" {
		suffix = " for wildcards (issuewild)"
	}
	switch {
	case entries == 0:
		d.Allowed = true
		d.Reason = "has no issue property: any CA may issue"
	case len(d.Issuers) > 0:
		d.Allowed = true
		d.Reason = fmt.Sprintf("allows %q%s", caID, suffix)
		var ps []string
		for _, iss := range d.Issuers {
			if p := iss.paramString(); p != "" {
				ps = append(ps, p)
			}
		}
		if len(ps) > 0 {
			d.Reason += " (" + strings.Join(ps, " | ") + ")"
		}
	case len(others) == 0:
		// The tag is said once: "forbids every CA for wildcards (issuewild ";")".
		d.Reason = fmt.Sprintf("forbids every CA%s (%s \";\")", strings.TrimSuffix(suffix, " (issuewild)"), tag)
	default:
		sort.Strings(others)
		others = dedupSorted(others)
		d.Reason = fmt.Sprintf("allows only %s%s", strings.Join(others, ", "), suffix)
	}
	return d
}

// CAAResult is the RFC 8659 verdict for one name and one CA.
type CAAResult struct {
	// At is the name whose CAA set is relevant: the closest one found
	// climbing from the name towards the root, without trailing dot; empty
	// when there is none.
	At string
	// Alias is the CNAME target where At's set was found, when At is an
	// alias (the lookup follows CNAMEs as CAs do).
	Alias   string
	Records []*dns.CAA
	CAADecision
	// Err is set when a CAA lookup failed; Allowed is then false, as a CA
	// refuses to issue when it cannot read CAA.
	Err error
}

// Verdict returns r in the inventory's form, records sorted.
func (r CAAResult) Verdict() model.CAAVerdict {
	v := model.CAAVerdict{At: r.At, Alias: r.Alias, Reason: r.Reason}
	for _, rr := range r.Records {
		// As fmt's "%d %s %q", without fmt.
		v.Records = append(v.Records, strconv.Itoa(int(rr.Flag))+" "+strings.ToLower(rr.Tag)+" "+strconv.Quote(rr.Value))
	}
	sort.Strings(v.Records)
	if r.Err != nil {
		v.Error = r.Err.Error()
	}
	return v
}

// CAA finds the relevant CAA record set for name (RFC 8659 §3: the first
// non-empty set found asking name, then each parent, stopping before the
// root; each lookup follows CNAMEs) and evaluates it for the CA whose
// issuer domain is caID ("" for [DefaultCAIdentifier]). A name starting
// with "*." is a wildcard: the search starts at its parent and issuewild
// applies.
func (r *Resolver) CAA(ctx context.Context, name, caID string) CAAResult {
	return caa(ctx, r, name, caID, "")
}

// caa is CAA through q; the names strictly under below (a normalised
// domain, "" for none) are asked as questions no one else asks.
func caa(ctx context.Context, q Querier, name, caID, below string) CAAResult {
	return caaVia(ctx, q, name, "", caID, below)
}

// caaVia is caa for a name whose CNAME chain is known to end at end (an
// FQDN; "" when name is no alias): name's own question is asked at end
// instead. A CNAME's owner holds no other records (RFC 1034 §3.6.2), so
// the lookup of name would follow the chain to end's set anyway (RFC 8659
// §3), and end's question is shared: the end is often the domain itself
// (cPanel's "mail.D CNAME D"), whose set the climb from name asks next,
// now from the cache. One question instead of two; the verdict, At and
// Alias are the same.
func caaVia(ctx context.Context, q Querier, name, end, caID, below string) CAAResult {
	if caID == "" {
		caID = DefaultCAIdentifier
	}
	name = names.FromDNS(name)
	wildcard := strings.HasPrefix(name, "*.")
	name = strings.TrimPrefix(name, "*.")
	if wildcard {
		end = ""
	}
	for n := dns.Fqdn(name); n != "." && n != ""; {
		ask := n
		if end != "" {
			ask, end = end, ""
		}
		ans, err := lookup(ctx, q, ask, dns.TypeCAA, below == "" || !strictlyUnder(ask, below))
		if err != nil {
			var res CAAResult
			res.Err = err
			res.Reason = "CAA lookup failed: " + err.Error()
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				res.Reason = "CAA lookup cancelled"
			}
			return res
		}
		if len(ans.Records) > 0 {
			res := CAAResult{At: strings.TrimSuffix(n, ".")}
			if ask != n || len(ans.Chain) > 0 {
				res.Alias = strings.TrimSuffix(ans.Target(ask), ".")
			}
			for _, rr := range ans.Records {
				res.Records = append(res.Records, rr.(*dns.CAA))
			}
			res.CAADecision = EvaluateCAA(res.Records, caID, wildcard)
			where := "CAA at " + res.At
			if res.Alias != "" {
				where += " (CNAME to " + res.Alias + ")"
			}
			res.Reason = where + " " + res.Reason
			return res
		}
		i, end := dns.NextLabel(n, 0)
		if end {
			break
		}
		n = n[i:]
	}
	return CAAResult{CAADecision: EvaluateCAA(nil, caID, wildcard)}
}

func dedupSorted(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// strictlyUnder reports whether name (an FQDN or not) is a subdomain of d
// (normalised, without trailing dot), d itself excluded.
func strictlyUnder(name, d string) bool {
	name = strings.TrimSuffix(name, ".")
	return len(name) > len(d)+1 && name[len(name)-len(d)-1] == '.' && strings.EqualFold(name[len(name)-len(d):], d)
}

// under reports whether name is d or a subdomain of d.
func under(name, d string) bool {
	name = strings.TrimSuffix(name, ".")
	return strings.EqualFold(name, d) || strictlyUnder(name, d)
}

// WildcardCAA returns the CAA verdict for the wildcard "*.<parent>" that
// would cover name (see [names.WildcardParent]), and false for a name no
// wildcard covers (fewer than three labels). RFC 8659 §3 looks up the
// relevant set of "*.parent" starting at parent, the "*." label removed:
// when name's own verdict res found its set above name, or none, the
// wildcard's set is the same one, evaluated for issuewild (falling back
// to issue, §4.3), and no question is asked. Only a set at name itself
// (or at its CNAME target) says nothing of parent's: then climb is called
// with "*.parent", to climb from parent as [Resolver.CAA] does. A failed
// lookup of name's set fails the wildcard's verdict too.
func WildcardCAA(name string, res CAAResult, caID string, climb func(wildcard string) CAAResult) (CAAResult, bool) {
	name = names.FromDNS(name)
	w, ok := names.WildcardParent(name)
	if !ok {
		return CAAResult{}, false
	}
	if res.Err != nil {
		return res, true
	}
	if res.At == name {
		return climb(w), true
	}
	if caID == "" {
		caID = DefaultCAIdentifier
	}
	out := CAAResult{At: res.At, Alias: res.Alias, Records: res.Records, CAADecision: EvaluateCAA(res.Records, caID, true)}
	if res.At != "" {
		where := "CAA at " + res.At
		if res.Alias != "" {
			where += " (CNAME to " + res.Alias + ")"
		}
		out.Reason = where + " " + out.Reason
	}
	return out, true
}

// wildVerdict sets n's wildcard CAA verdict from res, its own (see
// [WildcardCAA]); nothing for a name no wildcard covers.
func wildVerdict(n *model.Name, res CAAResult, caID string, climb func(string) CAAResult) {
	if w, ok := WildcardCAA(n.Name, res, caID, climb); ok {
		v := w.Verdict()
		n.CAAWildOK, n.CAAWild = w.Allowed && w.Err == nil, &v
	}
}
