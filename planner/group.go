package planner

import (
	"slices"

	"github.com/certplan/certplan/model"
)

// IP groups. Clients that send no SNI get an IP's default certificate, so
// the default certificate of each server IP lists every planned name
// resolving to that IP; a name on two IPs is on both. IPs whose planned
// name sets are identical (typically an IPv4 and an IPv6 address of one
// server) form one group and share one default certificate, served on all
// of them: one order instead of several, and no identical name sets
// ordered twice.
//
// An IP that no planned name resolves to gets no certificate at all (an
// ACME order needs an identifier): a [model.WarnIdleIP] warning says so,
// naming its previous default, which no longer covers it.
//
// With [DefaultCertShared] (cPanel's Exim and Dovecot: one service
// certificate whatever address a client dialled) there is one group: every
// server IP, idle ones too, since the one default is served on all of
// them, and every planned name. Its default is filled as any group's
// (build.go): must-cover names first, the server's hostname among them,
// then by priority up to the limit; the rest go to SNI certificates. Names
// left off are SNI-only because the one default is full, which no further
// IP would change (extra_ips_needed stays 0). Switching modes is a change
// of the groups' name sets like any other: match.go continues the
// previous defaults and SNI certificates that still fit, keeping their IDs.

// ipGroup is a set of server IPs whose planned names are identical.
type ipGroup struct {
	ips   []int
	cands []int // in name order
	def   *bcert
	sni   []*bcert
	// inDef marks cands on the default certificate.
	inDef bitset
	// overflow: planned names of the group that are not on its default.
	overflow int
}

// groupIPs groups the server IPs whose planned name sets are identical,
// or all of them in shared mode.
func (p *planner) groupIPs() {
	if p.shared && len(p.cands) > 0 {
		p.groupShared()
		return
	}
	per := make([][]int, len(p.ips))
	count := make([]int, len(p.ips))
	for _, i := range p.ipArena {
		count[i]++
	}
	for i := range per {
		per[i] = make([]int, 0, count[i])
	}
	for ci := range p.cands {
		for _, i := range p.ipsOf(ci) {
			per[i] = append(per[i], ci)
		}
	}
	p.ipGroup = make([]int, len(p.ips))
	groups := setIndex{}
	for i := range p.ips {
		p.ipGroup[i] = -1
		if len(per[i]) == 0 {
			p.warnIdle(i)
			continue
		}
		h := nameSetHash(per[i])
		gi, ok := groups.find(h, func(gi int) bool { return slices.Equal(p.groups[gi].cands, per[i]) })
		if ok {
			p.groups[gi].ips = append(p.groups[gi].ips, i)
		} else {
			gi = len(p.groups)
			groups.add(h, gi)
			p.groups = append(p.groups, &ipGroup{ips: []int{i}, cands: per[i]})
		}
		p.ipGroup[i] = gi
	}
}

// groupShared makes the one group of shared mode: every server IP, every
// planned name (cand indices are in name order).
func (p *planner) groupShared() {
	grp := &ipGroup{ips: make([]int, len(p.ips)), cands: make([]int, len(p.cands))}
	p.ipGroup = make([]int, len(p.ips))
	for i := range grp.ips {
		grp.ips[i] = i
	}
	for ci := range grp.cands {
		grp.cands[ci] = ci
	}
	p.groups = []*ipGroup{grp}
}

// warnIdle says that server IP i gets no default certificate: no planned
// name resolves to it, and a certificate without names cannot be ordered.
func (p *planner) warnIdle(i int) {
	ip := p.ips[i]
	if p.prev != nil {
		for k := range p.prev.Certificates {
			if pc := &p.prev.Certificates[k]; pc.Default && slices.Contains(pc.IPs, ip) {
				p.warn(model.WarnIdleIP, "", "no planned name resolves to %s: no default certificate is planned for it; %s, its default in the previous plan, no longer is (its files stay where the servers read them, but certplan stops renewing it for %s): take the IP out of the server IPs, or point names at it", ip, pc.ID, ip)
				return
			}
		}
	}
	p.warn(model.WarnIdleIP, "", "no planned name resolves to %s: no default certificate is planned for it, and the plan leaves the one its servers present alone", ip)
}

// inGroup reports whether a planned name is in group g.
func (p *planner) inGroup(ci, g int) bool {
	for _, i := range p.ipsOf(ci) {
		if p.ipGroup[i] == g {
			return true
		}
	}
	return false
}

// groupsOf returns the groups a planned name is in.
func (p *planner) groupsOf(ci int) []int {
	var gs []int
	for _, i := range p.ipsOf(ci) {
		if g := p.ipGroup[i]; g >= 0 && !slices.Contains(gs, g) {
			gs = append(gs, g)
		}
	}
	return gs
}

func (g *ipGroup) has(ci int) bool { return g.inDef.has(ci) }
