package planner

import (
	"maps"
	"slices"
	"strings"

	"github.com/certplan/certplan/model"
)

// MTA-STS (RFC 8461). A sender that holds a domain's policy in enforce
// mode delivers only to an MX host that the policy's mx lines match and
// whose certificate is valid for it (§4.2); many such senders send no
// SNI, so the host must be on the default certificate of its IPs as well
// as on the one served for its name. The planner gives every MX target of
// a domain that its enforce policy lists (Domain.MTASTS.Policy,
// MatchesMX) the priority of a must-cover name, exempt from the
// per-domain cap (stsHosts, build.go's capExempt); if one still does not
// fit on its IPs' default (the name limit), the plan is refused
// ([MTASTSRefusal]). A testing policy gets a [model.WarnMTASTSTesting]
// warning instead, and a listed host that is not planned at all (it
// points elsewhere, CAA forbids it) a [model.WarnMTASTS] warning: that is
// DNS's doing, not the plan's.

// stsListing is a domain whose policy lists an MX host.
type stsListing struct {
	domain string
	pol    *model.MTASTSPolicy
}

// stsHosts maps each MX host that a testing or enforce policy lists to the
// domains listing it: the domain's own MX targets (by the inventory's
// sources) that the policy matches.
func stsHosts(inv *model.Inventory) map[string][]stsListing {
	var m map[string][]stsListing
	var idx map[string]int
	for di := range inv.Domains {
		d := &inv.Domains[di]
		if d.MTASTS == nil || d.MTASTS.Policy == nil {
			continue
		}
		pol := d.MTASTS.Policy
		if pol.Mode != model.MTASTSEnforce && pol.Mode != model.MTASTSTesting {
			continue
		}
		if idx == nil {
			idx, m = inv.NameIndex(), map[string][]stsListing{}
		}
		for _, name := range d.Names {
			i, ok := idx[name]
			if ok && mxOf(&inv.Names[i], d.Domain) && pol.MatchesMX(name) {
				m[name] = append(m[name], stsListing{domain: d.Domain, pol: pol})
			}
		}
	}
	return m
}

// mxOf reports whether n is an MX target of domain.
func mxOf(n *model.Name, domain string) bool {
	if len(n.Sources) == 0 {
		return n.HasRole(model.RoleMX) && slices.Contains(n.Domains, domain)
	}
	for _, s := range n.Sources {
		if s.Role == model.RoleMX && s.Domain == domain {
			return true
		}
	}
	return false
}

// enforced reports whether an enforce policy lists name.
func (p *planner) enforced(name string) bool {
	for _, l := range p.sts[name] {
		if l.pol.Mode == model.MTASTSEnforce {
			return true
		}
	}
	return false
}

// checkSTS refuses (enforce) or warns of (testing) each listed MX host not
// on the default certificate of every IP it resolves to here, and warns of
// listed hosts not planned.
func (p *planner) checkSTS() {
	for _, name := range slices.Sorted(maps.Keys(p.sts)) {
		ci, ok := p.lookup(name)
		for _, l := range p.sts[name] {
			mxs := "mode " + l.pol.Mode + ", mx " + strings.Join(l.pol.MX, ", ")
			if !ok {
				p.warnSTSUnplanned(name, l, mxs)
				continue
			}
			off := p.offDefault(ci)
			switch {
			case len(off) == 0:
			case l.pol.Mode == model.MTASTSEnforce:
				p.refusals.MTASTS = append(p.refusals.MTASTS, MTASTSRefusal{Domain: l.domain, Host: name, Policy: mxs, IPs: off})
			default:
				p.warn(model.WarnMTASTSTesting, name, "the MTA-STS policy of %s (%s) lists it, but it is not on the default certificate of %s (the name limit): senders without SNI report a failure, and in enforce mode would not deliver", l.domain, mxs, strings.Join(off, ", "))
			}
		}
	}
}

// offDefault returns the server IPs of cand ci whose default certificate
// does not hold it.
func (p *planner) offDefault(ci int) []string {
	var off []string
	for _, i := range p.ipsOf(ci) {
		if g := p.ipGroup[i]; g < 0 || !p.groups[g].has(ci) {
			off = append(off, p.ips[i])
		}
	}
	return off
}

func (p *planner) warnSTSUnplanned(name string, l stsListing, mxs string) {
	why := "it is not planned"
	if i, ok := p.exclIdx[name]; ok {
		why = "it is not planned: " + p.excluded[i].Reason
	}
	p.warn(model.WarnMTASTS, name, "the MTA-STS policy of %s (%s) lists it, but %s; senders that hold the policy deliver to it only where its certificate matches", l.domain, mxs, why)
}
