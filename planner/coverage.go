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
// default certificate lists it; "lists" is [names.Covers], so a planned
// "*.parent" on the IP counts for the names one label under parent. A name planned on other IPs gets a mismatch
// both ways, with the reason as the note. A name the plan does not have
// (excluded, or not in the inventory) is not certplan's: see unmanaged. A
// failed handshake stays failed: the plan does not fix connections.
func (p *planner) coverage(pr *model.ProbeReport) []model.PlanCoverage {
	out := make([]model.PlanCoverage, 0, len(pr.Coverage))
	leaves := leafSerials(pr.Endpoints)
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
		if !planned {
			ci, planned = p.coverOf(name) // a wildcard covers it
		}
		ipi, isServer := p.ipIdx[ip]
		withSNI, withoutSNI := false, false
		if isServer {
			withSNI, withoutSNI = p.served(name, ipi)
		}
		switch {
		case withSNI:
			pc.AfterWithSNI = model.VerdictOK
			if withoutSNI {
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
			hasDefault := isServer && p.ipGroup[ipi] >= 0
			notes = append(notes, unmanaged(&pc, &r, ownSNICert(&r, leaves), hasDefault)...)
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
		if pc.AfterWithSNI != model.VerdictOK || pc.AfterWithoutSNI != model.VerdictOK || !planned {
			pc.Note = strings.Join(notes, "; ")
		}
		out = append(out, pc)
	}
	slices.SortFunc(out, func(a, b model.PlanCoverage) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), compareIP(a.IP, b.IP), a.Port-b.Port)
	})
	return out
}

// unmanagedNote starts the note of a name the plan does not have.
const unmanagedNote = "not managed by certplan: left as served today"

// unmanaged predicts pc for a name the plan does not have. No deploy hook
// of certplan touches another certificate's SNI entry (examples/hooks: a
// hook removes only the entries that point at its own certificate), so
// what clients get with SNI from such an entry stays as it is. What the
// IP's default certificate gives them changes where the plan deploys a
// new default, which does not list the name: a mismatch after. It returns
// the notes that say which.
func unmanaged(pc *model.PlanCoverage, r *model.Coverage, ownSNI, hasDefault bool) []string {
	if !hasDefault {
		pc.AfterWithSNI, pc.AfterWithoutSNI = r.WithSNI, r.WithoutSNI
		return []string{unmanagedNote + " (the plan has no default certificate for " + pc.IP + ")"}
	}
	var notes []string
	if ownSNI {
		pc.AfterWithSNI = r.WithSNI
		notes = append(notes, unmanagedNote+" (with SNI it gets its own certificate, which no certplan hook replaces)")
	} else if r.WithSNI == model.VerdictOK {
		notes = append(notes, "served today by the default certificate of "+pc.IP+", which the plan replaces with one that does not list it")
	}
	if r.WithoutSNI == model.VerdictOK && !ownSNI {
		return notes // said above
	}
	if r.WithoutSNI == model.VerdictOK {
		notes = append(notes, "without SNI it gets the default certificate of "+pc.IP+" today, which the plan replaces with one that does not list it")
	}
	return notes
}

// leafSerials maps "IP|port|SNI" to the serial of the leaf served there.
func leafSerials(eps []model.Endpoint) map[string]string {
	m := make(map[string]string, len(eps))
	for _, e := range eps {
		if e.Leaf != nil && e.Leaf.Serial != "" {
			m[fmt.Sprintf("%s|%d|%s", e.IP, e.Port, strings.ToLower(e.SNI))] = e.Leaf.Serial
		}
	}
	return m
}

// ownSNICert reports whether clients sending r's name as SNI get another
// certificate than clients sending none: the name has an SNI entry of its
// own. Without the probe's endpoints, verdicts that differ tell the same
// (the default certificate does not verify for the name, the one with SNI
// does); equal verdicts are taken to be the default's.
func ownSNICert(r *model.Coverage, leaves map[string]string) bool {
	with := leaves[fmt.Sprintf("%s|%d|%s", r.IP, r.Port, strings.ToLower(r.Name))]
	without := leaves[fmt.Sprintf("%s|%d|", r.IP, r.Port)]
	if with != "" && without != "" {
		return with != without
	}
	return r.WithSNI != r.WithoutSNI && r.WithSNI != model.VerdictError
}

func compareIP(a, b string) int {
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	if err1 != nil || err2 != nil {
		return strings.Compare(a, b)
	}
	return x.Compare(y)
}
