package planner

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/certplan/certplan/model"
)

// Building certificates, one IP group at a time.
//
// When more names resolve to a group than one certificate may hold
// ([Policy.MaxNames], or the profile's limit), the default certificate is
// filled fairly (fairPick, "Fair defaults" below): by priority
// ([Priority]: must-cover names, MX targets, submission and SMTP names,
// IMAP and mail names, then the rest), round-robin across client domains
// within a priority, with a per-domain cap. The remaining names go to SNI
// certificates served on the same IPs, packed by client domain (pack.go).
// Names that only SNI clients will verify are listed in sni_only
// (assemble.go).
//
// With a previous plan (fillContinued), each continued certificate keeps
// its names still in the group (match.go says which it continues; a name
// on two goes to the first), trimmed by priority to the limit. New names
// are placed by whole client domain, most important first: on the default
// if it has room for all of them, else on SNI certificates. Names on an
// SNI certificate stay there even when the default gains room, and a
// removed name changes only its own certificate; planning without a
// previous plan, or with [Policy.Repack] (--repack), fills everything
// afresh (fillFresh), the default keeping its previous ID.
//
// Every group's default gets names: one left empty with a previous plan
// (every name it held went away, or the group had no previous default,
// while its other names stay on SNI certificates and no new client domain
// fits on it) is refilled as a fresh group's would be, taking the group's
// highest-priority names off the SNI certificates that held them
// (refillDefault); one of those left without names is retired.
//
// Sorting: candidate names are sorted as packed integers (priority, key
// rank, cand index), which at 10⁶ names is several times faster than
// sorting by comparing fields.

// sortByPriority orders cands by priority, client domain, name (cand
// indices are in name order). It sorts packed integers: fast for 10⁶ names.
func (p *planner) sortByPriority(cs []int) {
	p.sortPacked(cs, true)
}

// sortByKey orders cands by client domain, name.
func (p *planner) sortByKey(cs []int) {
	p.sortPacked(cs, false)
}

func (p *planner) sortPacked(cs []int, prio bool) {
	keys := p.packKeys(cs, prio)
	slices.Sort(keys)
	for i, k := range keys {
		cs[i] = keyCI(k)
	}
}

// Packed sort keys: priority (optional), key rank, cand index, so that
// sorting compares integers. 30 bits of cand index and 28 of key rank hold
// far more names than a plan has.
const (
	ciBits   = 30
	rankBits = 28
	prioMask = uint64(1<<64-1) &^ (1<<(ciBits+rankBits) - 1)
)

func (p *planner) packKeys(cs []int, prio bool) []uint64 {
	keys := make([]uint64, len(cs))
	for i, ci := range cs {
		c := &p.cands[ci]
		k := uint64(c.krank)<<ciBits | uint64(ci)
		if prio {
			k |= uint64(c.prio) << (ciBits + rankBits)
		}
		keys[i] = k
	}
	return keys
}

func keyCI(k uint64) int { return int(k & (1<<ciBits - 1)) }

func keyRank(k uint64) int32 { return int32(k >> ciBits & (1<<rankBits - 1)) }

// domainRuns splits cands sorted by key into runs of one client domain.
func (p *planner) domainRuns(cs []int) [][]int {
	var runs [][]int
	p.eachRun(cs, func(run []int) { runs = append(runs, run) })
	return runs
}

// eachRun calls f with each run of one client domain in cs (sorted by key).
func (p *planner) eachRun(cs []int, f func([]int)) {
	for i := 0; i < len(cs); {
		j := i + 1
		for j < len(cs) && p.cands[cs[j]].krank == p.cands[cs[i]].krank {
			j++
		}
		f(cs[i:j:j])
		i = j
	}
}

// build fills each group's default and SNI certificates (from scratch, or
// continuing the previous plan's), then merges identical ones and gives
// each its ID.
func (p *planner) build() {
	defs, snis, heirs := p.matchPrevious()
	placed := make([]int32, len(p.cands)) // group index + 1 when placed in that group
	byKey := make([]*bcert, p.nkeys)
	for g, grp := range p.groups {
		grp.def = &bcert{def: true, ips: grp.ips, prev: cmp.Or(defs[g], heirs[g])}
		clear(byKey)
		pk := &packer{p: p, limit: p.limit, ips: grp.ips, byKey: byKey, buckets: make([][]*bcert, p.limit+1)}
		if p.pol.Repack || defs[g] == nil && len(snis[g]) == 0 {
			p.fillFresh(grp, pk)
			p.continueSNI(g, pk.certs, snis[g])
		} else {
			p.fillContinued(g, defs[g], snis[g], pk, placed)
		}
		p.finishGroup(grp, pk)
		if !p.pol.Repack && grp.overflow > 0 && defs[g] != nil {
			p.warnUnfair(grp)
		}
	}
	// In a deterministic order: groups by first IP, default first, then SNI
	// certificates in creation order.
	for _, grp := range p.groups {
		p.certs = append(p.certs, grp.def)
		p.certs = append(p.certs, grp.sni...)
	}
	p.merge()
	p.assignIDs()
}

// fillFresh fills a group that continues no previous certificate: the
// default by priority up to the limit, the rest packed by client domain.
// The sort keys carry each name's key rank, so the packing reads no cand
// (in key order, cands are far apart).
func (p *planner) fillFresh(grp *ipGroup, pk *packer) {
	keys := p.packKeys(grp.cands, true)
	slices.Sort(keys)
	took, capped := p.fairPick(keys)
	grp.def.names = make([]int, 0, min(len(keys), p.limit))
	rest := keys[:0]
	for i, k := range keys {
		if took[i] {
			grp.def.names = append(grp.def.names, keyCI(k))
		} else {
			rest = append(rest, k&^prioMask)
		}
	}
	p.warnCapped(grp, rest, capped)
	slices.Sort(rest)
	cis := make([]int, len(rest))
	for i, k := range rest {
		cis[i] = keyCI(k)
	}
	for i := 0; i < len(rest); {
		kr := keyRank(rest[i])
		j := i + 1
		for j < len(rest) && keyRank(rest[j]) == kr {
			j++
		}
		pk.place(kr, cis[i:j:j])
		i = j
	}
}

// continueSNI has the SNI certificates of a repacked group g continue
// its previous ones (prevSNI): each, in order, the one it shares most
// names with, not yet taken. Their IDs are then kept, and repacking again
// what was repacked orders nothing.
func (p *planner) continueSNI(g int, certs []*bcert, prevSNI []*model.PlannedCert) {
	if len(prevSNI) == 0 {
		return
	}
	owner := map[int]int{} // cand index → index in prevSNI
	for k, pc := range prevSNI {
		for _, pn := range p.prevCands[pc] {
			if p.in(pn, g) {
				owner[int(pn.ci)] = k
			}
		}
	}
	taken := make([]bool, len(prevSNI))
	for _, c := range certs {
		shared := map[int]int{}
		best := -1
		for _, ci := range c.names {
			if k, ok := owner[ci]; ok && !taken[k] {
				if shared[k]++; best < 0 || shared[k] > shared[best] || shared[k] == shared[best] && k < best {
					best = k
				}
			}
		}
		if best >= 0 {
			c.prev, taken[best] = prevSNI[best], true
		}
	}
}

// fillContinued fills group g from its previous default prevDef and
// previous SNI certificates prevSNI: each keeps the names it held that are
// still in the group (a name held by two goes to the first), and the new
// names are placed by whole client domain (placeNew).
func (p *planner) fillContinued(g int, prevDef *model.PlannedCert, prevSNI []*model.PlannedCert, pk *packer, placed []int32) {
	grp := p.groups[g]
	stamp := int32(g + 1)
	def := grp.def
	if prevDef != nil {
		p.takePrevious(def, prevDef, g, placed)
		p.trimToLimit(def, placed)
	}
	kept := make([]*bcert, len(prevSNI))
	for k, pc := range prevSNI {
		n := len(p.prevCands[pc])
		c := &bcert{prev: pc, ips: grp.ips, names: make([]int, 0, n), kr: make([]int32, 0, n),
			shared: p.servedElsewhere(pc, g)}
		p.takePrevious(c, pc, g, placed)
		kept[k] = c
	}
	for _, c := range kept {
		p.trimToLimit(c, placed)
		if len(c.names) > 0 {
			pk.keep(c)
		}
	}
	var fresh []int
	for _, ci := range grp.cands {
		if placed[ci] != stamp {
			fresh = append(fresh, ci)
		}
	}
	p.placeNew(def, fresh, pk)
	if len(def.names) == 0 {
		pk.certs = p.refillDefault(grp, def, pk.certs)
	}
}

// takePrevious gives c the names of the previous certificate pc that are
// in group g and not yet placed in it, with their key ranks when c
// records them (c.kr non-nil).
func (p *planner) takePrevious(c *bcert, pc *model.PlannedCert, g int, placed []int32) {
	stamp := int32(g + 1)
	for _, pn := range p.prevCands[pc] {
		if ci := int(pn.ci); placed[ci] != stamp && p.in(pn, g) {
			c.names = append(c.names, ci)
			if c.kr != nil {
				c.kr = append(c.kr, pn.krank)
			}
			placed[ci] = stamp
		}
	}
}

// trimToLimit keeps the highest-priority names of a continued certificate
// that holds more than the limit (the limit went down); the others are
// placed again as new names.
func (p *planner) trimToLimit(c *bcert, placed []int32) {
	if len(c.names) <= p.limit {
		return
	}
	p.sortByPriority(c.names)
	for _, ci := range c.names[p.limit:] {
		placed[ci] = 0
	}
	c.names, c.kr = c.names[:p.limit], nil
}

// placeNew places a continued group's new names by whole client domain,
// most important domain first: onto the default while it has room for all
// of a domain's new names, else packed onto SNI certificates.
func (p *planner) placeNew(def *bcert, fresh []int, pk *packer) {
	p.sortByKey(fresh)
	runs := p.domainRuns(fresh)
	minPrio := func(run []int) int {
		m := lowestPriority
		for _, ci := range run {
			m = min(m, int(p.cands[ci].prio))
		}
		return m
	}
	slices.SortStableFunc(runs, func(a, b []int) int { return minPrio(a) - minPrio(b) })
	for _, run := range runs {
		if len(def.names)+len(run) <= p.limit {
			def.names = append(def.names, run...)
		} else {
			pk.place(p.cands[run[0]].krank, run)
		}
	}
}

// finishGroup sorts the group's certificates' names and records which of
// its names are on its default.
func (p *planner) finishGroup(grp *ipGroup, pk *packer) {
	def := grp.def
	slices.Sort(def.names)
	grp.inDef = newBitset(len(p.cands))
	for _, ci := range def.names {
		grp.inDef.set(ci)
	}
	grp.overflow = len(grp.cands) - len(def.names)
	grp.sni = pk.certs
	for _, c := range grp.sni {
		slices.Sort(c.names)
	}
}

// refillDefault fills the empty default certificate of a group whose names
// are all on SNI certificates (the previous default's names went away, or
// the group had none, and no new client domain fit on it): as a fresh
// group's default, with the group's highest-priority names up to the
// limit, taken off the SNI certificates that held them (but for names
// whose key DANE pins: dane.go's movable). A client without
// SNI gets the default certificate, so one without names would leave every
// such client with a mismatch, and an order without identifiers cannot be
// placed. It returns the SNI certificates that still hold names; one left
// with none is dropped (its previous ID is retired).
func (p *planner) refillDefault(grp *ipGroup, def *bcert, sni []*bcert) []*bcert {
	keys := p.packKeys(p.movable(grp.cands), true)
	slices.Sort(keys)
	took, _ := p.fairPick(keys)
	promoted := make(map[int]bool, min(len(keys), p.limit))
	for i, k := range keys {
		if took[i] {
			ci := keyCI(k)
			def.names = append(def.names, ci)
			promoted[ci] = true
		}
	}
	out := sni[:0]
	for _, c := range sni {
		c.names = slices.DeleteFunc(c.names, func(ci int) bool { return promoted[ci] })
		if len(c.names) > 0 {
			out = append(out, c)
		}
	}
	clear(sni[len(out):])
	return out
}

// Fair defaults. A client without SNI gets the default certificate, and
// most such clients are MTAs (Postfix sends no SNI by default), so the
// default serves every domain's MX targets before any domain's other
// names: fairPick takes the group's names tier by tier of priority
// (must-cover names, MX targets, submission and SMTP names, then the
// rest), and within a tier round-robin across client domains in key
// order, each domain's names in name order. While other domains' names
// wait, one domain holds at most the per-domain cap of the default
// (Policy.MaxNamesPerDomain, by default max(3, limit/20)); a must-cover
// name, a shared MX host (the MX target of several domains: it counts
// against none of them), an MX host pinned by DANE (TLSA records at
// _25._tcp or a submission port that pin its key or CA, or may:
// model.Name.DANEPin; a sender that checks them fails on another
// certificate) and an MX host an MTA-STS enforce policy lists (mtasts.go;
// it also has the must-cover names' priority) are exempt. Room left when every domain has had its share
// goes to the names over a cap, by the same round-robin. The names that
// do not fit go to SNI certificates packed by client domain (pack.go),
// so a domain with hundreds of names gets SNI certificates of its own,
// ordered like any other (budget.go); a domain whose names went SNI-only
// because of its cap gets a [model.WarnSNIOnly] warning naming it and
// the count.

// domainCap is the per-domain cap on a default certificate.
func (p *planner) domainCap() int {
	if p.pol.MaxNamesPerDomain > 0 {
		return p.pol.MaxNamesPerDomain
	}
	return max(3, p.limit/20)
}

// capExempt reports whether cand ci is exempt from the per-domain cap:
// a must-cover name, a name DANE pins, an MX host an MTA-STS enforce
// policy lists, or an MX target of several domains.
func (p *planner) capExempt(ci int) bool {
	c := &p.cands[ci]
	if c.must || c.tlsa || c.sts {
		return true
	}
	if c.inv < 0 || int(c.prio) != model.RolePriority[model.RoleMX] {
		return false
	}
	n := &p.inv.Names[c.inv]
	if len(n.Sources) == 0 {
		return len(n.Domains) > 1 // an inventory that did not record sources
	}
	first := ""
	for _, s := range n.Sources {
		if s.Role != model.RoleMX {
			continue
		}
		if first != "" && s.Domain != first {
			return true
		}
		first = s.Domain
	}
	return false
}

// fairPick chooses a group's default names by the rule above from keys,
// its packed sort keys with priority, sorted. It returns which keys it
// took and the key ranks of the domains it capped.
func (p *planner) fairPick(keys []uint64) (took []bool, capped map[int32]bool) {
	took = make([]bool, len(keys))
	if len(keys) <= p.limit {
		for i := range took {
			took[i] = true
		}
		return took, nil
	}
	f := fairFill{p: p, keys: keys, took: took, cap: p.domainCap(), used: map[int32]int{}, capped: map[int32]bool{}}
	for phase := range 2 {
		// A tier is a stretch of one priority (keys are sorted); only the
		// tiers needed to fill the default are split into runs.
		for i := 0; i < len(keys) && f.n < p.limit; {
			j := i + 1
			for j < len(keys) && keys[j]&prioMask == keys[i]&prioMask {
				j++
			}
			f.roundRobin(f.runs(i, j), phase == 0)
			i = j
		}
	}
	return took, f.capped
}

// fairFill is the state of one fairPick.
type fairFill struct {
	p      *planner
	keys   []uint64
	took   []bool
	n, cap int
	used   map[int32]int // names on the default that count against a domain
	capped map[int32]bool
}

// runs splits the sorted keys[i:end] into runs of one client domain, as
// [start, end) index pairs.
func (f *fairFill) runs(i, end int) [][2]int {
	var runs [][2]int
	for i < end {
		j := i + 1
		for j < end && f.keys[j]>>ciBits == f.keys[i]>>ciBits {
			j++
		}
		runs = append(runs, [2]int{i, j})
		i = j
	}
	return runs
}

// roundRobin takes one name of each domain of a tier (its runs) in turn
// until the default is full or the tier is exhausted; with capping, a
// domain at its cap takes only exempt names.
func (f *fairFill) roundRobin(runs [][2]int, capping bool) {
	active := runs
	for len(active) > 0 {
		next := active[:0]
		for _, r := range active {
			i := f.nextIn(r, capping)
			if i < 0 {
				continue
			}
			f.took[i] = true
			if f.n++; f.n == f.p.limit {
				return
			}
			if r[0] = i + 1; r[0] < r[1] {
				next = append(next, r)
			}
		}
		active = next
	}
}

// nextIn returns the index of the next name of run r that the default
// may take, counting it against its domain, or -1.
func (f *fairFill) nextIn(r [2]int, capping bool) int {
	for i := r[0]; i < r[1]; i++ {
		if f.took[i] {
			continue
		}
		kr, ci := keyRank(f.keys[i]), keyCI(f.keys[i])
		if f.p.capExempt(ci) {
			return i
		}
		if capping && f.used[kr] >= f.cap {
			f.capped[kr] = true
			continue
		}
		f.used[kr]++
		return i
	}
	return -1
}

// warnCapped warns, per capped client domain, of its names that went
// SNI-only on the group's IPs: left, the group's keys not on its default.
func (p *planner) warnCapped(grp *ipGroup, left []uint64, capped map[int32]bool) {
	if len(capped) == 0 {
		return
	}
	count := map[int32]int{}
	for _, k := range left {
		if kr := keyRank(k); capped[kr] {
			count[kr]++
		}
	}
	var ips []string
	for _, i := range grp.ips {
		ips = append(ips, p.ips[i])
	}
	for _, kr := range slices.Sorted(maps.Keys(count)) {
		what := "names"
		if count[kr] == 1 {
			what = "name"
		}
		p.warn(model.WarnSNIOnly, p.keyByRank[kr], "%s has %d %s on SNI certificates only on %s, which clients without SNI do not get: its share of the default certificate is capped at %d (--max-names-per-domain) so that every domain's MX targets come first; its SNI certificates are counted in the budget", p.keyByRank[kr], count[kr], what, strings.Join(ips, ", "), p.domainCap())
	}
}

// warnUnfair warns when a group continued from the previous plan is not
// fair: MX targets of domains under the cap are SNI-only while a domain
// holds more than the cap of the default. Names stay where they are
// (stability) and --repack moves them; the warning says so.
func (p *planner) warnUnfair(grp *ipGroup) {
	held := map[int32]int{}
	for _, ci := range grp.def.names {
		if !p.capExempt(ci) {
			held[p.cands[ci].krank]++
		}
	}
	cap := p.domainCap()
	top := int32(-1)
	for kr, n := range held {
		if n > cap && (top < 0 || n > held[top] || n == held[top] && kr < top) {
			top = kr
		}
	}
	if top < 0 {
		return
	}
	mxPrio := int8(model.RolePriority[model.RoleMX])
	var eg []string
	n := 0
	for _, ci := range grp.cands {
		if c := &p.cands[ci]; c.prio <= mxPrio && !grp.has(ci) && held[c.krank] < cap {
			if n++; len(eg) < 3 {
				eg = append(eg, c.name)
			}
		}
	}
	if n == 0 {
		return
	}
	if n > len(eg) {
		eg = append(eg, "...")
	}
	var ips []string
	for _, i := range grp.ips {
		ips = append(ips, p.ips[i])
	}
	p.warn(model.WarnSNIOnly, "", "%d MX targets of other domains (%s) are on SNI certificates only on %s while %s holds %d names of its default certificate (more than --max-names-per-domain %d): names stay where the previous plan put them; plan with --repack to share the default fairly (new orders)", n, strings.Join(eg, ", "), strings.Join(ips, ", "), p.keyByRank[top], held[top], cap)
}
