// Package report renders a [model.Plan] for people: a text summary an admin
// reads in ten seconds followed by the details ([Text]), Markdown
// ([Markdown]), and a single self-contained HTML file with the before/after
// coverage matrix and every exclusion explained ([HTML]).
//
// Rendering is pure: (plan, optional inventory) → bytes. The inventory, when
// given, adds each name's roles, client domains and Unicode form. JSON is
// the plan itself (model.Marshal); this package computes no verdicts, it
// only counts and lays out what the planner decided.
package report

import (
	"slices"

	"github.com/certplan/certplan/model"
)

// Summary is what the admin reads first.
type Summary struct {
	Names        int // distinct planned names
	Certificates int
	Default      int // default (no-SNI) certificates
	SNI          int // SNI certificates
	Orders       int // certificates to order now (new or changed)
	Unchanged    int
	Retired      int
	IPs          int
	Excluded     int
	SNIOnly      int
	ExtraIPs     int
	Warnings     int
	// MustCoverExcluded are must-cover names (hostname, --include) that the
	// plan could not cover, sorted.
	MustCoverExcluded []string

	// Probed is true when the plan has before/after coverage; the counts
	// below are names (over all their IPs and ports) and are zero without.
	Probed      bool
	Fixed       int // broken today (some row not ok both ways), ok after
	StillBroken int // broken today and after
	Regressed   int // ok today, broken after (excluded names that work today)
	AlreadyOK   int // ok today and after
}

// Summarize counts a plan.
func Summarize(p *model.Plan) Summary {
	s := Summary{Certificates: len(p.Certificates), Excluded: len(p.Excluded), SNIOnly: len(p.SNIOnly),
		ExtraIPs: p.ExtraIPsNeeded, Warnings: len(p.Warnings), Orders: p.Budget.Orders, Retired: len(p.Retired),
		IPs: len(p.Policy.ServerIPs)}
	seen := map[string]bool{}
	for _, c := range p.Certificates {
		if c.Default {
			s.Default++
		} else {
			s.SNI++
		}
		if c.Change == "unchanged" {
			s.Unchanged++
		}
		for _, n := range c.Names {
			if !seen[n] {
				seen[n] = true
				s.Names++
			}
		}
	}
	must := map[string]bool{}
	if p.Policy.Hostname != "" {
		must[p.Policy.Hostname] = true
	}
	for _, n := range p.Policy.Include {
		must[n] = true
	}
	for _, e := range p.Excluded {
		if must[e.Name] {
			s.MustCoverExcluded = append(s.MustCoverExcluded, e.Name)
		}
	}
	slices.Sort(s.MustCoverExcluded)
	if len(p.Coverage) > 0 {
		s.Probed = true
		for _, st := range nameStates(p.Coverage) {
			switch {
			case st.before && st.after:
				s.AlreadyOK++
			case st.after:
				s.Fixed++
			case st.before:
				s.Regressed++
			default:
				s.StillBroken++
			}
		}
	}
	return s
}

type nameState struct{ before, after bool }

// nameStates says, per name, whether every row verified both ways before
// and after.
func nameStates(cov []model.PlanCoverage) map[string]nameState {
	m := map[string]nameState{}
	for _, c := range cov {
		st, ok := m[c.Name]
		if !ok {
			st = nameState{true, true}
		}
		st.before = st.before && c.BeforeWithSNI == model.VerdictOK && c.BeforeWithoutSNI == model.VerdictOK
		st.after = st.after && c.AfterWithSNI == model.VerdictOK && c.AfterWithoutSNI == model.VerdictOK
		m[c.Name] = st
	}
	return m
}

// nameInfo is what the inventory adds about a name.
type nameInfo struct {
	roles, domains []string
	unicode        string
}

func infos(inv *model.Inventory) map[string]nameInfo {
	m := map[string]nameInfo{}
	if inv == nil {
		return m
	}
	for _, n := range inv.Names {
		m[n.Name] = nameInfo{n.Roles, n.Domains, n.Unicode}
	}
	return m
}

// brokenAfter returns the coverage rows not ok both ways after the plan.
func brokenAfter(cov []model.PlanCoverage) []model.PlanCoverage {
	var out []model.PlanCoverage
	for _, c := range cov {
		if c.AfterWithSNI != model.VerdictOK || c.AfterWithoutSNI != model.VerdictOK {
			out = append(out, c)
		}
	}
	return out
}
