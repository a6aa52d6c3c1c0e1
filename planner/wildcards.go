package planner

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// Wildcard names on certificates (--wildcards, issue 19). A client without
// SNI gets its IP's default certificate, which holds at most 100 names (25
// on the short-lived profiles); with six conventional names a domain
// (mail., smtp., imap., pop., autoconfig., autodiscover.) only about 16
// domains fit. "*.parent" covers every name one label under parent (RFC
// 6125 §6.4.3, [names.Covers]) in one SAN, so about 6 times more do.
//
// With [Policy.Wildcards] auto or always, planWildcards rewrites the
// planned names before IPs are grouped: planned names one label under the
// same parent (its members) that resolve to a server IP where another
// member does are replaced there by "*.parent", a planned name of its own
// that certificates hold and pack as one name. A name is a member when:
//
//   - the parent is in a zone wildcards may use: with auto, at or under a
//     --wildcard-zones zone, or, when none is given and a DNS-01 provider
//     is configured, under a hosted domain; with always, any (the admin
//     asserts DNS-01 works); never a public suffix (CAs refuse those);
//   - CAA lets the CA issue the wildcard ([model.Name.CAAWildOK]:
//     issuewild, else issue, of the set relevant for the parent, RFC 8659
//     §4.3); an inventory without that verdict leaves the name explicit;
//   - it is not a must-cover name (--hostname, --include), which its
//     certificate lists as such;
//   - DANE does not pin it (cand.tlsa): the gates of dane.go judge a
//     pinned name by its own records, which a wildcard would hide.
//
// Names deeper than one label have their own parent; the parent itself (an
// apex MX) is not covered by "*.parent" (RFC 6125: one label) and stays
// explicit beside it. A member that also resolves to an IP where it is the
// only member stays explicit there. Each wildcard gets a
// [model.WarnWildcardName] warning listing the names it replaced, and
// parents with two or more names left explicit a [model.WarnWildcardExplicit]
// one saying why.
//
// The wildcard takes its members' highest priority and first client
// domain, so fair defaults (build.go) and SNI packing (pack.go) treat it as
// that domain's. With a previous plan, a previous name that a wildcard
// planned now covers continues as that wildcard, and a previous wildcard
// as the names it covered (coverPrevious, called by matchPrevious):
// switching a domain to a wildcard or back changes the name set of the one
// certificate that held it, an order the budget counts like any other. A
// name whose lookup failed, covered by a wildcard of the previous plan, is
// kept as if it were on it (keep.go), and stays covered.
//
// Coverage (coverage.go), the no-SNI counts (nosni.go) and matching the
// previous plan all decide "covers" by names.Covers, the rule
// crypto/x509's VerifyHostname and mail clients apply.

// wildZones says where wildcards may be planned.
type wildZones struct {
	all   bool
	zones map[string]bool // normalised zone names
}

// allows reports whether a wildcard under parent is in an allowed zone.
func (z *wildZones) allows(parent string) bool {
	if z.all {
		return true
	}
	for d := parent; d != ""; {
		if z.zones[d] {
			return true
		}
		_, d, _ = strings.Cut(d, ".")
	}
	return false
}

// wildcardZones reads the policy's wildcard mode; nil means no wildcards.
func (p *planner) wildcardZones() (*wildZones, error) {
	switch p.pol.Wildcards {
	case "", WildcardsNever:
		return nil, nil
	case WildcardsAlways:
		return &wildZones{all: true}, nil
	case WildcardsAuto:
	default:
		return nil, fmt.Errorf("wildcards %q: want never, auto or always", p.pol.Wildcards)
	}
	z := &wildZones{zones: map[string]bool{}}
	for _, s := range p.pol.WildcardZones {
		n, err := WildcardZone(s)
		if err != nil {
			return nil, err
		}
		z.zones[n] = true
	}
	if len(z.zones) == 0 && p.pol.DNS01 {
		for i := range p.inv.Domains {
			z.zones[names.FromDNS(p.inv.Domains[i].Domain)] = true
		}
	}
	return z, nil
}

// WildcardZone normalises a --wildcard-zones value: a zone name (a
// leading "*." is dropped), in A-labels; a single label (a TLD the
// provider serves, such as "test") is allowed.
func WildcardZone(s string) (string, error) {
	raw := s
	s = names.FromDNS(strings.TrimPrefix(strings.TrimSpace(s), "*."))
	if s == "" {
		return "", fmt.Errorf("wildcard zone %q: empty", raw)
	}
	labels := strings.Split(s, ".")
	for i, l := range labels {
		a, err := names.Label(l)
		if err != nil {
			return "", fmt.Errorf("wildcard zone %q: %w", raw, err)
		}
		labels[i] = a
	}
	return strings.Join(labels, "."), nil
}

// planZones is the policy's wildcard zones as the plan records them.
func (p *planner) planZones() []string {
	if p.wild == nil || p.wild.all || len(p.pol.WildcardZones) == 0 {
		return nil
	}
	var out []string
	for z := range p.wild.zones {
		out = append(out, z)
	}
	slices.Sort(out)
	return out
}

// coveredName is a planned name that a wildcard replaced on some IPs.
type coveredName struct {
	inv          int32 // index into the inventory's names
	wild         int32 // cand index of the wildcard
	ipOff, ipLen int32 // the server IPs where the wildcard covers it
}

// wildMember is a planned name one label under parent.
type wildMember struct {
	parent string // "*.parent"
	ci     int
}

// planWildcards replaces members by wildcards by the rule above, and
// counts the wildcards among the planned names (p.nwild).
func (p *planner) planWildcards() {
	if p.wild != nil {
		p.replaceMembers()
	}
	for p.nwild < len(p.cands) && names.IsWildcard(p.cands[p.nwild].name) {
		p.nwild++ // "*" sorts before every letter and digit
	}
}

// replaceMembers groups the planned names by wildcard parent and replaces
// the members of each parent that has two or more.
func (p *planner) replaceMembers() {
	existing := map[string]int{} // wildcards kept from the previous plan
	var ms []wildMember
	for ci := range p.cands {
		c := &p.cands[ci]
		if names.IsWildcard(c.name) {
			existing[c.name] = ci
			continue
		}
		if c.must || c.inv < 0 {
			continue
		}
		if w, ok := names.WildcardParent(c.name); ok {
			ms = append(ms, wildMember{w, ci})
		}
	}
	slices.SortStableFunc(ms, func(a, b wildMember) int { return strings.Compare(a.parent, b.parent) })
	r := wildRewrite{drop: map[int]bool{}}
	var notZone []string
	for i := 0; i < len(ms); {
		j := i + 1
		for j < len(ms) && ms[j].parent == ms[i].parent {
			j++
		}
		if j-i >= 2 && !p.wildParent(ms[i].parent, ms[i:j], existing, &r) {
			notZone = append(notZone, ms[i].parent)
		}
		i = j
	}
	p.warnNotZone(notZone)
	p.applyRewrite(&r)
}

// wildRewrite collects the changes to p.cands.
type wildRewrite struct {
	add     []cand
	drop    map[int]bool
	covered []coveredName
	wildOf  []string // the wildcard of each covered name
}

// wildParent plans the wildcard w for its members ms (two or more), or
// leaves them explicit with a warning; false means its zone is not
// allowed.
func (p *planner) wildParent(w string, ms []wildMember, existing map[string]int, r *wildRewrite) bool {
	parent := w[2:]
	if !p.wild.allows(parent) {
		return false
	}
	if ps, _ := publicsuffix.PublicSuffix(parent); ps == parent {
		return true // CAs issue no wildcard for a public suffix; nothing to say
	}
	var ok []int
	var refused []string
	why := ""
	for _, m := range ms {
		if allowed, reason := p.wildAllowed(m.ci, w); allowed {
			ok = append(ok, m.ci)
		} else {
			refused = append(refused, p.cands[m.ci].name)
			why = cmp.Or(why, reason)
		}
	}
	if len(refused) > 0 {
		p.warn(model.WarnWildcardExplicit, w, "%s stay explicit, not replaced by %s: %s", strings.Join(refused, ", "), w, why)
	}
	if len(ok) < 2 {
		return true
	}
	wips := p.sharedIPs(ok)
	if len(wips) == 0 {
		return true // each resolves to other IPs: no certificate holds two
	}
	p.wildCand(w, ok, wips, existing, r)
	var replaced []string
	for _, ci := range ok {
		if p.coverMember(ci, w, wips, r) {
			replaced = append(replaced, p.cands[ci].name)
		}
	}
	var on []string
	for _, i := range wips {
		on = append(on, p.ips[i])
	}
	p.warn(model.WarnWildcardName, w, "%s replaces %s on %s: one name on a certificate instead of %d; its order needs DNS-01 (a TXT record at _acme-challenge.%s)", w, strings.Join(replaced, ", "), strings.Join(on, ", "), len(replaced), parent)
	return true
}

// wildAllowed reports whether CAA lets the CA issue wildcard w for planned
// name ci, and if not why. A name whose lookup failed this run, kept under
// the previous plan's w, stays under it.
func (p *planner) wildAllowed(ci int, w string) (bool, string) {
	n := &p.inv.Names[p.cands[ci].inv]
	switch {
	case p.cands[ci].tlsa:
		// The DANE gates (dane.go) judge a pinned name by its own TLSA
		// records: under a wildcard they would no longer see it.
		return false, "DANE TLSA records at _25._tcp." + n.Name + " pin its key or CA, or may: it is judged on its own"
	case n.CAAWildOK:
		return true, ""
	case (n.Error != "" || n.CAA.Error != "") && p.onPrevious(w):
		return true, ""
	case n.CAAWild == nil:
		return false, "the inventory has no CAA verdict for a wildcard (issuewild); run certplan inventory again"
	case n.CAAWild.Error != "":
		return false, "the CAA lookup for the wildcard failed (" + n.CAAWild.Error + "), which a CA treats as forbidding"
	}
	return false, "CAA does not allow the wildcard: " + cmp.Or(n.CAAWild.Reason, "issuewild forbids "+p.ca)
}

// sharedIPs returns the server IPs, sorted, where two or more of the
// planned names cs resolve.
func (p *planner) sharedIPs(cs []int) []int {
	count := map[int]int{}
	for _, ci := range cs {
		for _, i := range p.ipsOf(ci) {
			count[i]++
		}
	}
	var ips []int
	for i, n := range count {
		if n >= 2 {
			ips = append(ips, i)
		}
	}
	slices.Sort(ips)
	return ips
}

// wildCand adds the planned name w on the server IPs wips, with its
// members' highest priority, first client domain and their hosted
// domains; a wildcard kept from the previous plan takes those too.
func (p *planner) wildCand(w string, ms []int, wips []int, existing map[string]int, r *wildRewrite) {
	var doms []string
	c := cand{name: w, inv: -1, prio: int8(lowestPriority)}
	for k, ci := range ms {
		m := &p.cands[ci]
		if k == 0 || m.key < c.key {
			c.key = m.key
		}
		c.prio = min(c.prio, m.prio)
		c.tlsa = c.tlsa || m.tlsa
		for _, d := range p.inv.Names[m.inv].Domains {
			doms = append(doms, names.FromDNS(d))
		}
	}
	if k, ok := existing[w]; ok {
		old := &p.cands[k]
		c.prio = min(c.prio, old.prio)
		wips = append(slices.Clone(wips), p.ipsOf(k)...)
		r.drop[k] = true
	}
	slices.Sort(doms)
	doms = slices.Compact(doms)
	if len(doms) > 1 || len(doms) == 1 && !under(w[2:], doms[0]) {
		c.listed = true
		p.setExtraDoms(w, doms)
	}
	c.ipOff, c.ipLen = p.addIPs(wips)
	r.add = append(r.add, c)
}

// coverMember records that w covers member ci on the server IPs wips; the
// member stays planned on its other IPs, and is dropped when it has none.
// It reports whether w covers it anywhere.
func (p *planner) coverMember(ci int, w string, wips []int, r *wildRewrite) bool {
	var on, rest []int
	for _, i := range p.ipsOf(ci) {
		if _, ok := slices.BinarySearch(wips, i); ok {
			on = append(on, i)
		} else {
			rest = append(rest, i)
		}
	}
	if len(on) == 0 {
		return false
	}
	cv := coveredName{inv: p.cands[ci].inv}
	cv.ipOff, cv.ipLen = p.addIPs(on)
	r.covered = append(r.covered, cv)
	r.wildOf = append(r.wildOf, w)
	if len(rest) == 0 {
		r.drop[ci] = true
	} else {
		c := &p.cands[ci]
		c.ipOff, c.ipLen = p.addIPs(rest)
	}
	return true
}

// applyRewrite drops the replaced names, adds the wildcards, sorts the
// planned names again and points the covered names at their wildcards.
func (p *planner) applyRewrite(r *wildRewrite) {
	if len(r.add) == 0 {
		return
	}
	out := make([]cand, 0, len(p.cands)-len(r.drop)+len(r.add))
	for ci := range p.cands {
		if !r.drop[ci] {
			out = append(out, p.cands[ci])
		}
	}
	out = append(out, r.add...)
	slices.SortFunc(out, func(a, b cand) int { return strings.Compare(a.name, b.name) })
	p.cands = out
	for k := range r.covered {
		ci, _ := p.findCand(r.wildOf[k])
		r.covered[k].wild = int32(ci)
	}
	slices.SortStableFunc(r.covered, func(a, b coveredName) int { return cmp.Compare(a.wild, b.wild) })
	p.covered = r.covered
}

// warnNotZone says which parents would take a wildcard but are not in a
// zone wildcards may use: one warning, naming a few.
func (p *planner) warnNotZone(ws []string) {
	if len(ws) == 0 {
		return
	}
	eg := ws[:min(len(ws), 5)]
	more := ""
	if len(ws) > len(eg) {
		more = fmt.Sprintf(" and %d more", len(ws)-len(eg))
	}
	where := "under no --wildcard-zones zone"
	if len(p.pol.WildcardZones) == 0 {
		where = "with no --wildcard-zones given and no DNS-01 provider configured (--dns-provider)"
	}
	p.warn(model.WarnWildcardExplicit, "", "names stay explicit under %s, %s: list the zones whose TXT records the DNS-01 provider can write with --wildcard-zones", strings.Join(eg, ", ")+more, where)
}
