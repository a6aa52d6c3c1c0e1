package planner

import (
	"cmp"
	"slices"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// What a planned wildcard covers ([names.Covers]: one left-most label),
// for the phases after the rewrite (wildcards.go): which names it
// replaced (membersOf, wildcardNames), whether a name verifies on an IP
// (coverOf, served: coverage.go), and the previous plan's names matched
// through wildcards (coverPrevious: match.go).

// membersOf returns the names wildcard cand wci covers, with the IPs where
// it covers them.
func (p *planner) membersOf(wci int) []coveredName {
	lo, _ := slices.BinarySearchFunc(p.covered, int32(wci), func(c coveredName, w int32) int { return cmp.Compare(c.wild, w) })
	hi := lo
	for hi < len(p.covered) && p.covered[hi].wild == int32(wci) {
		hi++
	}
	return p.covered[lo:hi]
}

// coverOf returns the planned wildcard that covers name ([names.Covers]),
// if any.
func (p *planner) coverOf(name string) (int, bool) {
	if p.nwild == 0 {
		return 0, false
	}
	w, ok := names.WildcardParent(name)
	if !ok || !names.Covers(w, name) {
		return 0, false
	}
	return p.lookup(w)
}

// served says how name verifies on server IP ipi once the plan is
// deployed: with SNI when a planned name that covers it (itself, or the
// wildcard that covers it) is planned on the IP; without SNI when such a
// name is on the IP's default certificate.
func (p *planner) served(name string, ipi int) (withSNI, withoutSNI bool) {
	g := p.ipGroup[ipi]
	if g < 0 {
		return false, false
	}
	grp := p.groups[g]
	check := func(ci int) {
		if slices.Contains(p.ipsOf(ci), ipi) {
			withSNI = true
			withoutSNI = withoutSNI || grp.has(ci)
		}
	}
	if ci, ok := p.lookup(name); ok {
		check(ci)
	}
	if ci, ok := p.coverOf(name); ok {
		check(ci)
	}
	return withSNI, withoutSNI
}

// coverPrevious matches through wildcards ([names.Covers]) the previous
// names the join did not find: a previous name that a wildcard planned now
// covers continues as that wildcard (once per certificate), and a previous
// wildcard no longer planned as the planned names it covers, returned as
// further entries per previous certificate (by index).
func (p *planner) coverPrevious(flat []prevName, off []int32) map[int][]prevName {
	certs := p.prev.Certificates
	var byParent map[string][]int // built when a previous wildcard needs it
	extra := map[int][]prevName{}
	for c := range certs {
		ents := flat[off[c]:off[c+1]]
		var took []int32 // the wildcards the certificate continues as
		for j := range ents {
			if ci := ents[j].ci; ci >= 0 {
				if int(ci) < p.nwild {
					took = append(took, ci)
				}
				continue
			}
			name := certs[c].Names[j]
			if names.IsWildcard(name) {
				if byParent == nil {
					byParent = p.byWildParent()
				}
				for _, ci := range byParent[name] {
					extra[c] = append(extra[c], p.prevEntry(ci))
				}
				continue
			}
			if ci, ok := p.coverOf(name); ok && !slices.Contains(took, int32(ci)) {
				took = append(took, int32(ci))
				ents[j] = p.prevEntry(ci)
			}
		}
	}
	return extra
}

// byWildParent returns the planned names (not wildcards) by the wildcard
// that would cover them.
func (p *planner) byWildParent() map[string][]int {
	m := map[string][]int{}
	for ci := p.nwild; ci < len(p.cands); ci++ {
		if w, ok := names.WildcardParent(p.cands[ci].name); ok {
			m[w] = append(m[w], ci)
		}
	}
	return m
}

// prevEntry is the join's entry for planned name ci (see checkPairs).
func (p *planner) prevEntry(ci int) prevName {
	pn := prevName{ci: int32(ci), krank: p.cands[ci].krank}
	if len(p.groups) <= 64 {
		for _, i := range p.ipsOf(ci) {
			if g := p.ipGroup[i]; g >= 0 {
				pn.groups |= 1 << g
			}
		}
	}
	return pn
}

// wildcardNames lists the names each planned wildcard replaced
// ([model.Plan.WildcardNames]), for probes and verification to dial.
func (p *planner) wildcardNames() []model.WildcardNames {
	var out []model.WildcardNames
	for wci := range p.nwild {
		ms := p.membersOf(wci)
		if len(ms) == 0 {
			continue
		}
		w := model.WildcardNames{Wildcard: p.cands[wci].name}
		for _, m := range ms {
			w.Names = append(w.Names, names.FromDNS(p.inv.Names[m.inv].Name))
		}
		slices.Sort(w.Names)
		out = append(out, w)
	}
	return out
}
