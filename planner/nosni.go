package planner

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// Domains without SNI ([model.Plan.NoSNI]). Per server IP with planned
// names: how many hosted domains have planned names resolving to it, and
// how many of those clients without SNI fully verify, that is every such
// name verifies on the IP's default certificate ([names.Covers]: a
// wildcard counts for the names it covers). After is the planned default;
// before is what the probe saw without SNI (every such name probed on the
// IP, verified on every port probed), else the previous plan's default
// certificate served on the IP, else unknown. A planned name counts for
// the hosted domains that use it (a shared MX host for each); must-cover
// names count for none.

// noSNI counts, per server IP, the hosted domains fully covered without SNI.
func (p *planner) noSNI(probes *model.ProbeReport) []model.IPNoSNI {
	before, from := p.beforeNoSNI(probes)
	st := noSNIState{seen: make([]int32, p.nkeys), bad: make([]uint8, p.nkeys)}
	var out []model.IPNoSNI
	for i := range p.ips {
		g := p.ipGroup[i]
		if g < 0 {
			continue
		}
		st.start(int32(i + 1))
		grp := p.groups[g]
		for _, ci := range grp.cands {
			if p.shared && !slices.Contains(p.ipsOf(ci), i) {
				continue
			}
			if ci < p.nwild && p.countMembers(&st, ci, i, grp.has(ci), before) {
				continue // the wildcard's names count, not "*.parent"
			}
			doms := p.candDomains(ci, st.buf[:0])
			st.buf = doms
			if len(doms) == 0 {
				continue
			}
			nameBefore := before != nil && before(p.cands[ci].name, i)
			for _, d := range doms {
				st.mark(d, grp.has(ci), nameBefore)
			}
		}
		r := model.IPNoSNI{IP: p.ips[i], Domains: len(st.touched), BeforeFrom: from}
		for _, d := range st.touched {
			if st.bad[d]&badAfter == 0 {
				r.After++
			}
			if before != nil && st.bad[d]&badBefore == 0 {
				r.Before++
			}
		}
		out = append(out, r)
	}
	return out
}

const (
	badAfter  = 1 // a name of the domain is not on the planned default
	badBefore = 2 // one did not verify without SNI before
)

// noSNIState is the per-domain state of one IP's count, by key rank.
type noSNIState struct {
	stamp   int32
	seen    []int32 // stamp when the domain was seen on this IP
	bad     []uint8
	touched []int32
	buf     []int32
}

func (s *noSNIState) start(stamp int32) {
	s.stamp = stamp
	s.touched = s.touched[:0]
}

func (s *noSNIState) mark(d int32, after, before bool) {
	if s.seen[d] != s.stamp {
		s.seen[d] = s.stamp
		s.bad[d] = 0
		s.touched = append(s.touched, d)
	}
	if !after {
		s.bad[d] |= badAfter
	}
	if !before {
		s.bad[d] |= badBefore
	}
}

// countMembers marks the hosted domains of the names wildcard wci covers
// on server IP i; false when it replaced none (kept from the previous
// plan through a failed lookup).
func (p *planner) countMembers(st *noSNIState, wci, i int, onDefault bool, before func(string, int) bool) bool {
	ms := p.membersOf(wci)
	for _, m := range ms {
		if !slices.Contains(p.arenaIPs(m.ipOff, m.ipLen), i) {
			continue
		}
		n := &p.inv.Names[m.inv]
		nameBefore := before != nil && before(names.FromDNS(n.Name), i)
		for _, d := range n.Domains {
			if kr, ok := p.hostedRank(names.FromDNS(d)); ok {
				st.mark(kr, onDefault, nameBefore)
			}
		}
	}
	return len(ms) > 0
}

func (p *planner) arenaIPs(off, n int32) []int { return p.ipArena[off : off+n] }

// candDomains appends to buf the key ranks of the hosted domains that use
// planned name ci.
func (p *planner) candDomains(ci int, buf []int32) []int32 {
	c := &p.cands[ci]
	if c.must {
		return buf
	}
	if !c.listed {
		// Its one hosted domain, if any, is its key. (Reading the
		// inventory's name here instead cost 10% of a plan of 10⁶ names.)
		if c.hosted {
			buf = append(buf, c.krank)
		}
		return buf
	}
	var doms []string
	if c.inv >= 0 {
		doms = p.inv.Names[c.inv].Domains
	}
	for _, d := range append(slices.Clip(doms), p.extraDoms[c.name]...) {
		if kr, ok := p.hostedRank(names.FromDNS(d)); ok && !slices.Contains(buf, kr) {
			buf = append(buf, kr)
		}
	}
	return buf
}

// hostedRank returns the key rank of hosted domain d (a key: a client
// domain).
func (p *planner) hostedRank(d string) (int32, bool) {
	kr, ok := slices.BinarySearch(p.keyByRank, d)
	return int32(kr), ok
}

// beforeNoSNI returns whether a name verified without SNI on a server IP
// before the plan, and from what: the probe, else the previous plan; nil
// when neither was given.
func (p *planner) beforeNoSNI(probes *model.ProbeReport) (func(name string, ip int) bool, string) {
	if probes != nil {
		return p.probedNoSNI(probes), model.NoSNIFromProbe
	}
	if p.prev == nil {
		return nil, ""
	}
	defs := make([]map[string]bool, len(p.ips))
	for k := range p.prev.Certificates {
		pc := &p.prev.Certificates[k]
		if !pc.Default {
			continue
		}
		for _, s := range pc.IPs {
			if i, ok := p.ipIndex(s); ok && defs[i] == nil {
				defs[i] = make(map[string]bool, len(pc.Names))
				for _, n := range pc.Names {
					defs[i][n] = true
				}
			}
		}
	}
	return func(name string, i int) bool {
		if defs[i][name] {
			return true
		}
		w, ok := names.WildcardParent(name)
		return ok && defs[i][w] && names.Covers(w, name)
	}, model.NoSNIFromPrevious
}

// probedNoSNI returns whether the probe saw name verify without SNI on
// server IP i, on every port it probed there.
func (p *planner) probedNoSNI(probes *model.ProbeReport) func(string, int) bool {
	ok := map[string]bool{} // "name|ip": every port verified
	for _, r := range probes.Coverage {
		ip := r.IP
		if a, err := netip.ParseAddr(ip); err == nil {
			ip = a.Unmap().String()
		}
		k := names.FromDNS(r.Name) + "|" + ip
		v, seen := ok[k]
		ok[k] = (v || !seen) && r.WithoutSNI == model.VerdictOK
	}
	return func(name string, i int) bool {
		var b strings.Builder
		b.WriteString(name)
		b.WriteByte('|')
		b.WriteString(p.ips[i])
		return ok[b.String()]
	}
}
