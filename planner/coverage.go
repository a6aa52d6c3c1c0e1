package planner

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// coverage predicts, for each (name, IP, port) the probe saw, the verdicts
// once the plan is deployed. A name planned on the IP verifies with SNI (its
// default or an SNI certificate lists it) and without SNI only when the IP's
// default certificate lists it. A name not planned there gets a mismatch
// both ways, with the reason as the note. A failed handshake stays failed:
// the plan does not fix connections.
func (p *planner) coverage(pr *model.ProbeReport) []model.PlanCoverage {
	out := make([]model.PlanCoverage, 0, len(pr.Coverage))
	for _, r := range pr.Coverage {
		name := names.FromDNS(r.Name)
		ip := r.IP
		if a, err := netip.ParseAddr(r.IP); err == nil {
			ip = a.Unmap().String()
		}
		pc := model.PlanCoverage{Name: name, IP: ip, Port: r.Port,
			BeforeWithSNI: r.WithSNI, BeforeWithoutSNI: r.WithoutSNI,
			AfterWithSNI: model.VerdictMismatch, AfterWithoutSNI: model.VerdictMismatch}
		var notes []string
		ci, planned := p.lookup(name)
		ipi, isServer := p.ipIdx[ip]
		switch {
		case planned && isServer && slices.Contains(p.ipsOf(ci), ipi):
			pc.AfterWithSNI = model.VerdictOK
			if p.groups[p.ipGroup[ipi]].has(ci) {
				pc.AfterWithoutSNI = model.VerdictOK
			} else {
				notes = append(notes, fmt.Sprintf("SNI only: the default certificate of %s has no room for it, so clients without SNI still get a mismatch", ip))
			}
		case planned:
			var on []string
			for _, i := range p.ipsOf(ci) {
				on = append(on, p.ips[i])
			}
			notes = append(notes, fmt.Sprintf("not planned on %s: it is planned on %s, where it resolves", ip, strings.Join(on, ", ")))
		default:
			if k, ok := p.exclIdx[name]; ok {
				e := p.excluded[k]
				notes = append(notes, fmt.Sprintf("excluded (%s): %s", e.Code, e.Reason))
			} else {
				notes = append(notes, "not in the inventory: no certificate of the plan lists it")
			}
		}
		if r.WithSNI == model.VerdictError {
			pc.AfterWithSNI = model.VerdictError
		}
		if r.WithoutSNI == model.VerdictError {
			pc.AfterWithoutSNI = model.VerdictError
		}
		if r.WithSNI == model.VerdictError || r.WithoutSNI == model.VerdictError {
			why := cmp.Or(r.WithSNIDetail, r.WithoutSNIDetail, "handshake failed")
			notes = append([]string{fmt.Sprintf("the endpoint failed today (%s): the plan does not fix connections", why)}, notes...)
		}
		if pc.AfterWithSNI != model.VerdictOK || pc.AfterWithoutSNI != model.VerdictOK {
			pc.Note = strings.Join(notes, "; ")
		}
		out = append(out, pc)
	}
	slices.SortFunc(out, func(a, b model.PlanCoverage) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), compareIP(a.IP, b.IP), a.Port-b.Port)
	})
	return out
}

func compareIP(a, b string) int {
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	if err1 != nil || err2 != nil {
		return strings.Compare(a, b)
	}
	return x.Compare(y)
}
