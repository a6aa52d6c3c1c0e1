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
	"net"
	"slices"
	"strconv"
	"strings"

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
	Probed bool
	// Regressed counts the names broken by the plan: on some endpoint, a
	// client (with SNI or without) verifies today and will not once the
	// plan is deployed, typically an excluded name that works today. It
	// takes precedence over the counts below: such a name is not "fixed"
	// or "still broken" even where other endpoints are.
	Regressed   int
	Fixed       int // broken today (some row not ok both ways), ok after
	StillBroken int // broken today and after
	AlreadyOK   int // ok today and after
	// BrokenByPlan are the names counted in Regressed, sorted.
	BrokenByPlan []string
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
		for name, st := range nameStates(p.Coverage) {
			switch {
			case st.regressed:
				s.Regressed++
				s.BrokenByPlan = append(s.BrokenByPlan, name)
			case st.before && st.after:
				s.AlreadyOK++
			case st.after:
				s.Fixed++
			default:
				s.StillBroken++
			}
		}
		slices.Sort(s.BrokenByPlan)
	}
	return s
}

// nameState is, for one name over all its rows: before and after, whether
// every row verified both ways; regressed, whether some row has a client
// that verifies before and not after.
type nameState struct{ before, after, regressed bool }

// nameStates returns the state of every name in cov.
func nameStates(cov []model.PlanCoverage) map[string]nameState {
	m := map[string]nameState{}
	for i := range cov {
		c := &cov[i]
		st, ok := m[c.Name]
		if !ok {
			st = nameState{true, true, false}
		}
		st.before = st.before && c.BeforeWithSNI == model.VerdictOK && c.BeforeWithoutSNI == model.VerdictOK
		st.after = st.after && c.AfterWithSNI == model.VerdictOK && c.AfterWithoutSNI == model.VerdictOK
		st.regressed = st.regressed || regressed(c)
		m[c.Name] = st
	}
	return m
}

// regressed reports whether a client, with SNI or without, verifies c's
// name on c's endpoint today and will not after the plan.
func regressed(c *model.PlanCoverage) bool {
	return c.BeforeWithSNI == model.VerdictOK && c.AfterWithSNI != model.VerdictOK ||
		c.BeforeWithoutSNI == model.VerdictOK && c.AfterWithoutSNI != model.VerdictOK
}

// lost says which clients c's regression hits: "clients with SNI",
// "clients without SNI" or "all clients" (those that verify today).
func lost(c *model.PlanCoverage) string {
	withSNI := c.BeforeWithSNI == model.VerdictOK && c.AfterWithSNI != model.VerdictOK
	without := c.BeforeWithoutSNI == model.VerdictOK && c.AfterWithoutSNI != model.VerdictOK
	switch {
	case withSNI && without:
		return "all clients"
	case withSNI:
		return "clients with SNI"
	}
	return "clients without SNI"
}

// rowGroup is the coverage rows of one name with the same verdicts and
// the same note, on one or more endpoints.
type rowGroup struct {
	model.PlanCoverage        // the first row; IP and Port are its
	Endpoints          string // "127.0.0.2:25,993, [::1]:25"
}

// Lost is [lost] for templates.
func (g rowGroup) Lost() string { return lost(&g.PlanCoverage) }

// groupRows groups rows (sorted by name, IP, port) by name, verdicts and
// note, keeping the order of each group's first row. The endpoints list
// each IP once, with its ports.
func groupRows(rows []model.PlanCoverage) []rowGroup {
	type key struct {
		name, bs, bn, as, an, note string
	}
	var out []rowGroup
	var eps [][]model.PlanCoverage
	idx := map[key]int{}
	for i, c := range rows {
		if i > 0 && c.Name != rows[i-1].Name {
			clear(idx) // rows are sorted by name: groups never span names
		}
		k := key{c.Name, c.BeforeWithSNI, c.BeforeWithoutSNI, c.AfterWithSNI, c.AfterWithoutSNI, c.Note}
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, rowGroup{PlanCoverage: c})
			eps = append(eps, nil)
		}
		eps[j] = append(eps[j], c)
	}
	for j := range out {
		out[j].Endpoints = endpoints(eps[j])
	}
	return out
}

// endpoints writes rows' endpoints as "127.0.0.2:25,993, 127.0.0.3:25".
func endpoints(rows []model.PlanCoverage) string {
	var b strings.Builder
	for i, c := range rows {
		if i > 0 && c.IP == rows[i-1].IP {
			b.WriteString("," + strconv.Itoa(c.Port))
			continue
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(net.JoinHostPort(c.IP, strconv.Itoa(c.Port)))
	}
	return b.String()
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

// brokenRows splits the coverage rows not ok both ways after the plan
// into those where a client that verifies today will not (regressions)
// and the others (still broken), each grouped by [groupRows].
func brokenRows(cov []model.PlanCoverage) (byPlan, still []rowGroup) {
	var reg, rest []model.PlanCoverage
	for i := range cov {
		c := &cov[i]
		switch {
		case regressed(c):
			reg = append(reg, *c)
		case c.AfterWithSNI != model.VerdictOK || c.AfterWithoutSNI != model.VerdictOK:
			rest = append(rest, *c)
		}
	}
	return groupRows(reg), groupRows(rest)
}
