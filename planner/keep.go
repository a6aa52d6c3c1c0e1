package planner

import (
	"slices"
	"strings"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// A DNS hiccup must not change a certificate: an hourly renew plans against
// the applied plan, and dropping a name whose lookup failed would reorder
// its certificate without it (an order spent, and clients broken until a
// later run puts it back). So, with a previous plan, a name on one of its
// certificates whose lookup failed this run stays where it is, with a
// [model.WarnKeptLookupFailed] warning. "Failed" means:
//
//   - the name is in the inventory with a lookup error ([model.Name.Error]
//     other than NXDOMAIN), or its CAA lookup failed; or
//   - the name is not in the inventory, and a hosted domain that used it
//     is in the inventory with an error (other than NXDOMAIN): the lookup
//     that would have named it may be the one that failed.
//
// Which hosted domains used a name comes from the previous plan's
// name_domains ([model.Plan.NameDomains]) where it lists the name, else
// from the name itself: the hosted domains it is under or equal to
// (mail.domain2.test is domain2.test's). A plan records every name for
// which that rule would be wrong, so the inference is exact for the plans
// this package writes; for a name under two hosted domains (a.b.test with
// both b.test and a.b.test hosted) it errs towards keeping.
//
// Definitive answers still remove a name, as without a previous plan:
// NXDOMAIN for the name or its domain, an address elsewhere or none, CAA
// forbidding the CA, a domain gone from the domain list, a domain that
// answers without naming it, a server IP gone from the policy, and
// --exclude. A name whose lookup failed is never added to a certificate.

// pending is an inventory name whose lookup failed, waiting for the
// previous plan to decide between keeping and excluding it.
type pending struct {
	name string
	n    *model.Name
	inv  int32 // index in the inventory's names
	must bool
	caa  bool // the CAA lookup failed, not the name's own
	ips  []int
}

func (p *planner) pend(name string, n *model.Name, must, caa bool) {
	p.pending = append(p.pending, pending{name: name, n: n, must: must, caa: caa})
}

// absentName is a previous plan's name missing from the inventory while a
// hosted domain that used it failed.
type absentName struct {
	ips     []int
	failed  string   // the failing hosted domain
	domains []string // the previous plan's record of its domains, when listed
}

// keepPrevious decides the pending names and finds the absent ones, and
// adds those to keep to p.cands (sorted by name, before ranking).
func (p *planner) keepPrevious() {
	if p.prev == nil {
		return
	}
	failing := p.failingDomains()
	if len(p.pending) == 0 && len(failing) == 0 {
		return
	}
	absent := p.readPrevious(failing)
	kept := p.decidePending()
	kept = p.keepAbsent(kept, absent, failing)
	if len(kept) == 0 {
		return
	}
	slices.SortFunc(kept, func(a, b cand) int { return strings.Compare(a.name, b.name) })
	p.cands = mergeCands(p.cands, kept)
}

// failingDomains returns the hosted domains whose lookups failed (other
// than NXDOMAIN), with their errors.
func (p *planner) failingDomains() map[string]string {
	failing := map[string]string{}
	for i := range p.inv.Domains {
		d := &p.inv.Domains[i]
		if d.Error != "" && !strings.Contains(d.Error, model.DomainErrNXDOMAIN) {
			failing[names.FromDNS(d.Domain)] = d.Error
		}
	}
	return failing
}

// readPrevious reads the previous plan's certificates still served on a
// server IP: it gives each pending name the IPs of the certificates it
// was on, and returns the absent names (a hosted domain that used them
// failed) with theirs.
func (p *planner) readPrevious(failing map[string]string) map[string]*absentName {
	pend := make(map[string]int, len(p.pending))
	for k := range p.pending {
		pend[p.pending[k].name] = k
	}
	var listed map[string][]string
	if len(failing) > 0 && len(p.prev.NameDomains) > 0 {
		listed = make(map[string][]string, len(p.prev.NameDomains))
		for _, nd := range p.prev.NameDomains {
			listed[nd.Name] = nd.Domains
		}
	}
	absent := map[string]*absentName{}
	var ips []int
	for c := range p.prev.Certificates {
		pc := &p.prev.Certificates[c]
		ips = ips[:0]
		for _, s := range pc.IPs {
			if i, ok := p.ipIndex(s); ok {
				ips = append(ips, i)
			}
		}
		if len(ips) == 0 {
			continue // the policy no longer serves it: nothing to keep it on
		}
		for _, name := range pc.Names {
			if k, ok := pend[name]; ok {
				p.pending[k].ips = append(p.pending[k].ips, ips...)
				continue
			}
			if p.wild != nil && len(p.pending) > 0 && names.IsWildcard(name) {
				p.pendCovered(name, ips)
			}
			if len(failing) == 0 {
				continue
			}
			if a := absent[name]; a != nil {
				a.ips = append(a.ips, ips...)
				continue
			}
			doms, isListed := listed[name]
			fd := failingDomain(name, doms, isListed, failing)
			if fd == "" {
				continue
			}
			a := &absentName{ips: slices.Clone(ips), failed: fd}
			if isListed {
				a.domains = doms
			}
			absent[name] = a
		}
	}
	return absent
}

// pendCovered gives the pending names that the previous wildcard w
// covers ([names.Covers]) the IPs of its certificate, ips: they were on it
// as much as an explicit name is.
func (p *planner) pendCovered(w string, ips []int) {
	for k := range p.pending {
		if names.Covers(w, p.pending[k].name) {
			p.pending[k].ips = append(p.pending[k].ips, ips...)
		}
	}
}

// decidePending keeps the pending names that were on a previous
// certificate served here, with a warning, and excludes the others: a name
// whose lookup failed is never added.
func (p *planner) decidePending() (kept []cand) {
	for k := range p.pending {
		pd := &p.pending[k]
		if len(pd.ips) == 0 {
			if pd.caa {
				p.exclude(pd.name, model.ExcludeCAAForbids, p.caaReason(pd.n))
			} else {
				p.excludeLookupFailed(pd.name, pd.n)
			}
			if pd.must {
				p.warnMustExcluded(pd.name, len(p.excluded)-1)
			}
			continue
		}
		c := p.candOf(pd.name, pd.n, pd.must)
		c.ipOff, c.ipLen = p.addIPs(pd.ips)
		c.inv = pd.inv
		kept = append(kept, c)
		if pd.caa {
			p.warn(model.WarnKeptLookupFailed, pd.name, "kept from the previous plan: its CAA lookup failed this run (%s); it stays until a run sees it again, but a CA refuses a name whose CAA it cannot read, so an order that includes it fails until the lookup works", pd.n.CAA.Error)
		} else {
			p.warn(model.WarnKeptLookupFailed, pd.name, "kept from the previous plan: its DNS lookup failed this run (%s); it stays until a run sees it again", pd.n.Error)
		}
	}
	return kept
}

// keepAbsent keeps the absent names, in name order, unless this run
// planned or excluded them on an answer of its own, or the policy
// excludes them.
func (p *planner) keepAbsent(kept []cand, absent map[string]*absentName, failing map[string]string) []cand {
	names := make([]string, 0, len(absent))
	for name := range absent {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		a := absent[name]
		if ci, ok := p.findCand(name); ok {
			// In the inventory after all (by another domain, or by the
			// failing one's partial answers): planned on its own lookup.
			// The failing domains' claims on it are carried forward.
			p.carryDomains(ci, name, a, failing)
			continue
		}
		if _, ok := p.exclIdx[name]; ok {
			continue // DNS answered for it this run: excluded on that answer
		}
		if p.excludedByPolicy(name, false) {
			continue
		}
		key := a.failed
		if len(a.domains) > 0 {
			key = a.domains[0]
		}
		c := p.keptCand(name, key, lowestPriority, a.ips)
		c.listed = len(a.domains) > 0
		if c.listed {
			p.setExtraDoms(name, a.domains)
		}
		kept = append(kept, c)
		p.warn(model.WarnKeptLookupFailed, name, "kept from the previous plan: it is not in the inventory because lookups for its domain %s failed this run (%s); it stays until a run sees it again", a.failed, failing[a.failed])
	}
	return kept
}

// keptCand makes a planned name served on the server IPs ips (its
// previous certificates').
func (p *planner) keptCand(name, key string, prio int, ips []int) cand {
	c := cand{name: name, key: key, prio: int8(prio), inv: -1}
	c.ipOff, c.ipLen = p.addIPs(ips)
	return c
}

// addIPs adds server IP indices to p.ipArena as a cand's IPs.
func (p *planner) addIPs(ips []int) (off, n int32) {
	start := len(p.ipArena)
	p.ipArena = append(p.ipArena, ips...)
	return p.sealIPs(start)
}

// failingDomain returns a failing hosted domain that used name, or "".
func failingDomain(name string, doms []string, isListed bool, failing map[string]string) string {
	if isListed {
		for _, d := range doms {
			if _, ok := failing[d]; ok {
				return d
			}
		}
		return ""
	}
	for s := name; ; {
		if _, ok := failing[s]; ok {
			return s
		}
		_, rest, ok := strings.Cut(s, ".")
		if !ok {
			return ""
		}
		s = rest
	}
}

// findCand finds a planned name while p.cands is sorted and not yet indexed.
func (p *planner) findCand(name string) (int, bool) {
	return slices.BinarySearchFunc(p.cands, name, func(c cand, n string) int { return strings.Compare(c.name, n) })
}

// carryDomains records, for a name planned on its own lookup, the failing
// hosted domains that used it in the previous plan, so that a later run
// still knows of them.
func (p *planner) carryDomains(ci int, name string, a *absentName, failing map[string]string) {
	var claims []string
	if len(a.domains) > 0 {
		for _, d := range a.domains {
			if _, ok := failing[d]; ok {
				claims = append(claims, d)
			}
		}
	} else {
		claims = []string{a.failed}
	}
	c := &p.cands[ci]
	if c.inv < 0 {
		return // a must-cover name the inventory does not know: planned anyway
	}
	have := p.inv.Names[c.inv].Domains
	var extra []string
	for _, d := range claims {
		if !slices.Contains(have, d) {
			extra = append(extra, d)
		}
	}
	if len(extra) == 0 {
		return
	}
	c.listed = true
	p.setExtraDoms(name, extra)
}

func (p *planner) setExtraDoms(name string, doms []string) {
	if p.extraDoms == nil {
		p.extraDoms = map[string][]string{}
	}
	p.extraDoms[name] = doms
}

// mergeCands merges two slices sorted by name.
func mergeCands(a, b []cand) []cand {
	out := make([]cand, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i].name < b[j].name {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// nameDomains lists the hosted domains of the planned names for which the
// name alone does not tell them (see [model.Plan.NameDomains]).
func (p *planner) nameDomains() []model.NameDomains {
	var out []model.NameDomains
	for i := range p.cands {
		c := &p.cands[i]
		if !c.listed {
			continue
		}
		var doms []string
		if c.inv >= 0 {
			for _, d := range p.inv.Names[c.inv].Domains {
				doms = append(doms, names.FromDNS(d))
			}
		}
		doms = append(doms, p.extraDoms[c.name]...)
		slices.Sort(doms)
		doms = slices.Compact(doms)
		if len(doms) == 0 {
			continue
		}
		out = append(out, model.NameDomains{Name: c.name, Domains: doms})
	}
	return out
}
