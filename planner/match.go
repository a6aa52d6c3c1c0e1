package planner

import (
	"cmp"
	"math/bits"
	"slices"
	"strings"

	"github.com/certplan/certplan/model"
)

// Continuing the previous plan. With a previous plan, names stay in the
// certificate they are in: each previous certificate is matched to the
// group sharing most names with it, and build starts that group's
// certificates from the matched ones (build.go).
//
//   - A previous default goes to the group sharing most names with it,
//     preferring one it was served on, then one needing fewest additions;
//     each group continues at most one (matchDefaults). A group left
//     without one inherits the ID of a previous default served on its IPs
//     that no group continues (findHeirs): an IP's default keeps its ID.
//   - A previous SNI certificate goes to the group sharing most names with
//     it; ties go to a group it is served on (matchSNI).
//   - A previous certificate served on IPs that are now in several groups
//     (one merged, or a group that split) continues in each of them, as if
//     they were still one group; a copy of an SNI certificate takes new
//     names only of the client domains it holds, so that the copies stay
//     alike, and copies that still hold the same names merge again and
//     keep the ID. A copy never takes a name from a certificate served on
//     the group's own IPs (those are filled first, orderSNI): otherwise a
//     name on both groups' IPs, held by a different certificate on each,
//     moves between them, and gets a new ID, on every run.

// prevName is a planned name on a previous certificate, with what build
// needs of it, read once while its cand is in cache.
type prevName struct {
	ci, krank int32
	// groups has bit g set when the name is in group g (groups < 64).
	groups uint64
}

// in reports whether the name is in group g.
func (p *planner) in(pn prevName, g int) bool {
	if len(p.groups) <= 64 {
		return pn.groups&(1<<g) != 0
	}
	return p.inGroup(int(pn.ci), g)
}

// matchPrevious assigns previous certificates to groups: defaults to the
// group sharing most names with them (preferring one sharing an IP and
// needing fewest additions), SNI certificates to the group sharing most
// names. It returns, per group, its previous default and previous SNI
// certificates, and, for a group left without a previous default, the
// heir: a previous default served on one of its IPs that shares no name
// with it and that no group continues. Its ID passes to the group's
// default (the IP's default certificate keeps its ID when all its names
// changed); its names play no part.
func (p *planner) matchPrevious() (defs []*model.PlannedCert, snis [][]*model.PlannedCert, heirs []*model.PlannedCert) {
	defs = make([]*model.PlannedCert, len(p.groups))
	snis = make([][]*model.PlannedCert, len(p.groups))
	heirs = make([]*model.PlannedCert, len(p.groups))
	if p.prev == nil {
		return defs, snis, heirs
	}
	p.servedGroups()
	p.prevCands = make(map[*model.PlannedCert][]prevName, len(p.prev.Certificates))
	flat, off := p.joinPrevious()
	var extra map[int][]prevName
	if p.nwild > 0 || p.prevWild {
		extra = p.coverPrevious(flat, off)
	}
	overlap := make([]int, len(p.groups))
	var pairs []defPair
	for c := range p.prev.Certificates {
		pc := &p.prev.Certificates[c]
		ents := flat[off[c]:off[c+1]]
		if x := extra[c]; len(x) > 0 {
			ents = append(slices.Clip(ents), x...)
		}
		p.prevCands[pc] = p.countOverlap(ents, overlap)
		if pc.Default {
			pairs = p.defaultPairs(pairs, c, overlap)
		} else {
			p.matchSNI(pc, overlap, snis)
		}
	}
	p.matchDefaults(pairs, defs)
	p.findHeirs(defs, heirs)
	p.orderSNI(snis)
	return defs, snis, heirs
}

// countOverlap sets overlap[g] to how many of a previous certificate's
// names (its entries of the join) are in group g, and returns the entries
// of the names still planned, compacted in place.
func (p *planner) countOverlap(ents []prevName, overlap []int) []prevName {
	clear(overlap)
	cs := ents[:0]
	for _, pn := range ents {
		if pn.ci < 0 {
			continue
		}
		cs = append(cs, pn) // in place: cs never passes the entry read
		if len(p.groups) <= 64 {
			for m := pn.groups; m != 0; m &= m - 1 {
				overlap[bits.TrailingZeros64(m)]++
			}
			continue
		}
		for _, g := range p.groupsOf(int(pn.ci)) {
			overlap[g]++
		}
	}
	return cs[:len(cs):len(cs)]
}

// matchSNI gives a previous SNI certificate to the group sharing most
// names with it; ties go to a group it is served on, so that a
// certificate whose names are all on two groups' IPs stays with its own.
// A certificate served on IPs now in several groups (merged across
// groups, see merge) also seeds each other of those groups it shares
// names with: while their names still coincide, the copies merge again
// and keep its ID.
func (p *planner) matchSNI(pc *model.PlannedCert, overlap []int, snis [][]*model.PlannedCert) {
	best, served := -1, false
	for g, o := range overlap {
		if o == 0 || best >= 0 && o < overlap[best] {
			continue
		}
		if best < 0 || o > overlap[best] {
			best, served = g, p.servedOn(pc, g)
		} else if !served && p.servedOn(pc, g) {
			best, served = g, true
		}
	}
	if best >= 0 {
		snis[best] = append(snis[best], pc)
	}
	for g, o := range overlap {
		if o > 0 && g != best && p.servedOn(pc, g) {
			snis[g] = append(snis[g], pc)
		}
	}
}

// defPair is a candidate continuation of previous default certificate c
// by group g's default.
type defPair struct {
	g, c    int
	ipx     int // 1 when c was served on one of g's IPs
	overlap int // names they share
	added   int // names of g not on c
}

// defaultPairs appends a pair for each group sharing names with previous
// default c.
func (p *planner) defaultPairs(pairs []defPair, c int, overlap []int) []defPair {
	pc := &p.prev.Certificates[c]
	for g, o := range overlap {
		if o == 0 {
			continue
		}
		ipx := 0
		if p.servedOn(pc, g) {
			ipx = 1
		}
		pairs = append(pairs, defPair{g, c, ipx, o, len(p.groups[g].cands) - o})
	}
	return pairs
}

// matchDefaults gives each group at most one previous default, each
// previous default to one group: best served on the group's IPs, then
// sharing most names, then needing fewest additions. Then a previous
// default served on IPs that are now in several groups (defaults merged
// across groups, or one group split) seeds the default of each of those
// groups left without one, as if they were still one group: while their
// names coincide, the defaults merge again and keep its ID; when they
// differ, one keeps it (see assignIDs).
func (p *planner) matchDefaults(pairs []defPair, defs []*model.PlannedCert) {
	slices.SortFunc(pairs, func(a, b defPair) int {
		return cmp.Or(b.ipx-a.ipx, b.overlap-a.overlap, a.added-b.added, a.g-b.g, a.c-b.c)
	})
	taken := map[int]bool{}
	for _, pr := range pairs {
		if defs[pr.g] == nil && !taken[pr.c] {
			defs[pr.g] = &p.prev.Certificates[pr.c]
			taken[pr.c] = true
		}
	}
	for _, pr := range pairs {
		if defs[pr.g] == nil && pr.ipx == 1 {
			defs[pr.g] = &p.prev.Certificates[pr.c]
		}
	}
}

// findHeirs gives a group left without a previous default the first
// previous default served on its IPs that no group continues: the IP's
// default keeps its ID when all its names changed.
func (p *planner) findHeirs(defs, heirs []*model.PlannedCert) {
	continued := map[*model.PlannedCert]bool{}
	for _, d := range defs {
		continued[d] = true
	}
	for g := range defs {
		if defs[g] != nil {
			continue
		}
		for c := range p.prev.Certificates {
			if pc := &p.prev.Certificates[c]; pc.Default && !continued[pc] && p.servedOn(pc, g) {
				heirs[g] = pc
				continued[pc] = true
				break
			}
		}
	}
}

// orderSNI orders each group's previous SNI certificates: those served on
// the group's IPs first, then copies of others', each by ID. build gives a
// name to the first that holds it, and a copy must not take a name from
// the certificate that served it on these IPs (its ID would change on
// every run).
func (p *planner) orderSNI(snis [][]*model.PlannedCert) {
	for g := range snis {
		if len(snis[g]) < 2 {
			continue
		}
		own := make(map[*model.PlannedCert]bool, len(snis[g]))
		for _, pc := range snis[g] {
			own[pc] = p.servedOn(pc, g)
		}
		slices.SortFunc(snis[g], func(a, b *model.PlannedCert) int {
			if own[a] != own[b] {
				if own[a] {
					return -1
				}
				return 1
			}
			return strings.Compare(a.ID, b.ID)
		})
	}
}

// servedGroups sets p.prevGroups: for each previous certificate, the
// groups of the server IPs it was served on, read in one pass over the
// certificates in order. At 10⁶ names there are 10⁴ certificates, whose
// IP strings lie far apart in memory: looking them up again for each
// question about a certificate (servedOn, servedElsewhere) waited for
// memory each time.
func (p *planner) servedGroups() {
	p.prevGroups = make(map[*model.PlannedCert][]int, len(p.prev.Certificates))
	for c := range p.prev.Certificates {
		pc := &p.prev.Certificates[c]
		var gs []int
		for _, s := range pc.IPs {
			if i, ok := p.ipIdx[s]; ok && p.ipGroup[i] >= 0 {
				gs = append(gs, p.ipGroup[i])
			}
		}
		p.prevGroups[pc] = gs
	}
}

// servedOn reports whether the previous certificate pc was served on one
// of group g's IPs.
func (p *planner) servedOn(pc *model.PlannedCert, g int) bool {
	return slices.Contains(p.prevGroups[pc], g)
}

// servedElsewhere reports whether the previous certificate pc was served on
// an IP of another group than g.
func (p *planner) servedElsewhere(pc *model.PlannedCert, g int) bool {
	for _, h := range p.prevGroups[pc] {
		if h != g {
			return true
		}
	}
	return false
}
