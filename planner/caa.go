package planner

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// CAA: the words of a CAA exclusion. A name whose CAA forbids the CA is
// excluded with the fix: the zone-file line that lets the CA issue (RFC
// 8659 §4.2), at the name whose CAA set applies, or the critical record to
// remove. A failed CAA lookup counts as forbidding (a CA refuses to issue,
// RFC 8659 §3), and the reason names the zone whose DNS servers must
// answer. With a previous plan, a name on one of its certificates whose CAA
// lookup failed is kept instead (keep.go).

// caaReason explains why CAA excludes n, with the fix: the zone-file line
// that lets the CA issue, at the name whose CAA set applies; for a failed
// lookup, the zone whose DNS servers must answer ([planner.caaZone]).
func (p *planner) caaReason(n *model.Name) string {
	v := n.CAA
	if v.Error != "" {
		return fmt.Sprintf("CAA lookup failed (%s), which a CA treats as forbidding issuance: fix the DNS servers of %s (where its CAA records are looked up), or leave the name out", v.Error, p.caaZone(n.Name))
	}
	why := v.Reason
	if why == "" {
		why = fmt.Sprintf("CAA at %s does not allow %q", cmp.Or(v.At, n.Name), p.ca)
	}
	recs := ""
	if len(v.Records) > 0 {
		recs = " (" + strings.Join(v.Records, "; ") + ")"
	}
	// The set may have been found through a CNAME (X an alias of Y): the
	// records live at Y, and X can hold no others.
	at := cmp.Or(caaAlias(v), v.At, n.Name)
	if strings.Contains(why, "critical record") {
		return fmt.Sprintf("%s%s: no CA may issue; remove the critical record at %s or leave the name out with --exclude", why, recs, at)
	}
	return fmt.Sprintf("%s%s: the CA would refuse the whole order; to let it issue, add this record: %s; or leave the name out with --exclude", why, recs, CAAIssueRecord(at, p.ca))
}

// CAAIssueRecord returns the zone-file line of a CAA record at name that
// allows the CA with issuer domain ca to issue (RFC 8659 §4.2), such as
// `example.test. IN CAA 0 issue "letsencrypt.org"`. The value is always a
// quoted character-string; quotes, backslashes and bytes outside printable
// ASCII in it are escaped as RFC 1035 §5.1 says.
func CAAIssueRecord(name, ca string) string {
	name = strings.TrimSuffix(name, ".") + "."
	return name + " IN CAA 0 issue " + zoneQuote(ca)
}

// zoneQuote quotes s as an RFC 1035 character-string.
func zoneQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// caaAlias returns the CNAME target where v's set was found, or "": the
// verdict's Alias, or for an inventory written before it had one, read
// from the reason dnscheck writes ("CAA at X (CNAME to Y) ...").
func caaAlias(v model.CAAVerdict) string {
	if v.Alias != "" {
		return v.Alias
	}
	rest, ok := strings.CutPrefix(v.Reason, "CAA at "+v.At+" (CNAME to ")
	if !ok || v.At == "" {
		return ""
	}
	target, _, ok := strings.Cut(rest, ")")
	if !ok || target == "" || strings.ContainsAny(target, " \"") {
		return ""
	}
	return target
}

// caaZone returns where the CAA records of name live, for a name whose CAA
// lookup failed: the closest name enclosing it (or itself) at which the
// inventory found a CAA set for another name, else its registered domain.
func (p *planner) caaZone(name string) string {
	if p.caaAts == nil {
		p.caaAts = map[string]bool{}
		for i := range p.inv.Names {
			if v := &p.inv.Names[i].CAA; v.Error == "" && v.At != "" {
				p.caaAts[names.FromDNS(v.At)] = true
			}
		}
	}
	for d := name; d != ""; {
		if p.caaAts[d] {
			return d
		}
		_, d, _ = strings.Cut(d, ".")
	}
	return RegisteredDomain(name)
}
