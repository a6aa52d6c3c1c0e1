package planner

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/certplan/certplan/model"
)

// The plan document. assemble writes the certificates sorted by ID, each
// with its change against the certificate it continues ("new",
// "unchanged", "changed" with the names added and removed), the retired
// previous IDs, the names only SNI clients verify (sni_only) and
// extra_ips_needed (summed over the IP groups, ceil(overflow / limit)),
// the budget (budget.go) and the warnings. Every slice is sorted, so equal
// inputs give byte-identical JSON; the plan's ID (planID) hashes the
// certificates' IDs, names, IPs and default flags.

// assemble turns the built certificates into the plan document.
func (p *planner) assemble() *model.Plan {
	out := &model.Plan{
		Header:       model.Header{Kind: model.KindPlan, Version: model.Version},
		Policy:       p.planPolicy(),
		Certificates: []model.PlannedCert{},
		SNIOnly:      []string{},
		Excluded:     p.excluded,
		Warnings:     p.warnings,
	}
	p.sniOnly(out)
	prevPtr := p.plannedCerts(out)
	out.Retired = p.retired(prevPtr)
	out.NameDomains = p.nameDomains()
	out.WildcardNames = p.wildcardNames()
	p.budget(out)
	p.daneKeys(out)
	slices.SortFunc(out.Excluded, func(a, b model.Exclusion) int { return strings.Compare(a.Name, b.Name) })
	sortedWarnings(out.Warnings)
	if out.Excluded == nil {
		out.Excluded = []model.Exclusion{}
	}
	if out.Warnings == nil {
		out.Warnings = []model.Warning{}
	}
	return out
}

// planPolicy is the policy as the plan records it: the effective one,
// names normalised; the profile is left out when only --max-names set the
// limit.
func (p *planner) planPolicy() model.PlanPolicy {
	pol := model.PlanPolicy{
		ServerIPs:    p.ips,
		Profile:      cmp.Or(p.pol.Profile, ProfileClassic),
		MaxNames:     p.limit,
		CAIdentifier: p.ca,
		Hostname:     p.host,
	}
	if p.shared {
		pol.DefaultCert = DefaultCertShared
	}
	if p.wild != nil {
		pol.Wildcards = p.pol.Wildcards
		pol.WildcardZones = p.planZones()
	}
	if p.pol.MaxNames > 0 && p.pol.Profile == "" {
		pol.Profile = ""
	}
	for m := range p.must {
		if m != p.host {
			pol.Include = append(pol.Include, m)
		}
	}
	slices.Sort(pol.Include)
	for _, pat := range p.pats {
		pol.Exclude = append(pol.Exclude, pat.String())
	}
	return pol
}

// sniOnly lists the names that only SNI clients will verify (those of an
// IP group that are not on its default), the IPs it would take to serve
// them by default (ceil(overflow / limit) per group), and warns for
// must-cover names and MX targets among them.
func (p *planner) sniOnly(out *model.Plan) {
	only := make([]bool, len(p.cands))
	n := 0
	for _, grp := range p.groups {
		if grp.overflow == 0 {
			continue
		}
		var ipNames []string
		for _, i := range grp.ips {
			ipNames = append(ipNames, p.ips[i])
		}
		extra := (grp.overflow + p.limit - 1) / p.limit
		if p.shared {
			extra = 0 // the one default is served on every IP, a new one too
		}
		out.ExtraIPsNeeded += extra
		p.warnOverLimit(out, grp, ipNames, extra)
		for _, ci := range grp.cands {
			if !grp.has(ci) && !only[ci] {
				only[ci] = true
				n++
			}
		}
	}
	out.SNIOnly = make([]string, 0, n)
	var mx []string
	nmx := 0
	mxPrio := model.RolePriority[model.RoleMX]
	for ci, s := range only {
		if !s {
			continue
		}
		c := &p.cands[ci]
		out.SNIOnly = append(out.SNIOnly, c.name)
		switch {
		case c.must:
			out.Warnings = append(out.Warnings, model.Warning{Code: model.WarnSNIOnly, Name: c.name,
				Message: "a must-cover name that only SNI clients will verify: clients without SNI get a mismatch; give it room on the default certificate (fewer names on the IP, or a higher --max-names)"})
		case int(c.prio) <= mxPrio:
			if nmx++; len(mx) < 5 {
				mx = append(mx, c.name)
			}
		}
	}
	if nmx > 0 {
		p.warnMXSNIOnly(out, nmx, mx)
	}
}

func (p *planner) warnMXSNIOnly(out *model.Plan, nmx int, mx []string) {
	eg := strings.Join(mx, ", ")
	if nmx > len(mx) {
		eg += ", ..."
	}
	out.Warnings = append(out.Warnings, model.Warning{Code: model.WarnSNIOnly,
		Message: fmt.Sprintf("%d MX targets only SNI clients will verify (%s): MTAs that send no SNI, such as Postfix by default, get a mismatch; give them another IP or fewer names per IP", nmx, eg)})
}

// plannedCerts adds the built certificates to the plan, each with its
// change from the previous certificate it continues, sorted by ID, and
// returns the previous certificates continued.
//
// The certificates' names are read from a copy of the names alone, made
// in one pass in order: a certificate's names lie far apart among the
// cands (a client domain's names are spread over the sorted names by
// their first label), and at 10⁶ names the cands do not stay in the
// processor's cache while the certificates pick names out of them, where
// the names alone (16 bytes a name instead of the cand's 56) mostly do.
// The few must-cover names and names with TLSA records are marked in a
// bitset, so the cands are read only for those.
func (p *planner) plannedCerts(out *model.Plan) map[*model.PlannedCert]bool {
	names := make([]string, len(p.cands))
	special := newBitset(len(p.cands))
	for ci := range p.cands {
		c := &p.cands[ci]
		names[ci] = c.name
		if c.must || c.tlsa {
			special.set(ci)
		}
	}
	// The previous certificates continued, by pointer while the
	// certificates are built (their IDs lie far apart in memory); retired
	// reads their IDs in one pass over the previous certificates in order.
	prevPtr := map[*model.PlannedCert]bool{}
	for _, c := range p.certs {
		pc := model.PlannedCert{ID: c.id, Default: c.def, Names: make([]string, len(c.names))}
		for i, ci := range c.names {
			pc.Names[i] = names[ci]
			if !special.has(ci) {
				continue
			}
			cd := &p.cands[ci]
			if cd.must {
				pc.MustCover = append(pc.MustCover, cd.name)
			}
			if cd.tlsa {
				c.tlsa = append(c.tlsa, ci)
			}
		}
		for _, i := range c.ips {
			pc.IPs = append(pc.IPs, p.ips[i])
		}
		if c.prev != nil {
			prevPtr[c.prev] = true
		}
		p.setChange(c, &pc)
		out.Certificates = append(out.Certificates, pc)
	}
	slices.SortFunc(out.Certificates, func(a, b model.PlannedCert) int { return strings.Compare(a.ID, b.ID) })
	return prevPtr
}

// setChange records how pc, built from c, differs from the previous
// certificate c continues: "new" without one, else "unchanged" or
// "changed" with the names added and removed.
func (p *planner) setChange(c *bcert, pc *model.PlannedCert) {
	pc.Change = "new"
	if c.prev != nil {
		pc.Change = "unchanged"
		if !p.samePrev(c) {
			old := c.prev.Names
			if !slices.IsSorted(old) {
				old = slices.Clone(old)
				slices.Sort(old)
			}
			pc.Added, pc.Removed = diff(pc.Names, old)
			if len(pc.Added)+len(pc.Removed) > 0 {
				pc.Change = "changed"
			}
		}
	}
	c.change = pc.Change
}

// retired returns the IDs of the previous certificates that no
// certificate continues, sorted.
func (p *planner) retired(continued map[*model.PlannedCert]bool) []string {
	if p.prev == nil {
		return nil
	}
	prevUsed := make(map[string]bool, len(continued))
	for i := range p.prev.Certificates {
		if pc := &p.prev.Certificates[i]; continued[pc] {
			prevUsed[pc.ID] = true
		}
	}
	var ids []string
	for _, c := range p.prev.Certificates {
		if !prevUsed[c.ID] {
			ids = append(ids, c.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// samePrev reports whether c holds exactly its previous certificate's
// names, each found in this plan: then it is unchanged without comparing
// strings.
func (p *planner) samePrev(c *bcert) bool {
	pns := p.prevCands[c.prev]
	if len(pns) != len(c.prev.Names) || len(pns) != len(c.names) {
		return false
	}
	for k, pn := range pns {
		if int(pn.ci) != c.names[k] {
			return false
		}
	}
	return true
}

func (p *planner) warnOverLimit(out *model.Plan, grp *ipGroup, ipNames []string, extra int) {
	if p.shared {
		out.Warnings = append(out.Warnings, model.Warning{Code: model.WarnOverLimit,
			Message: fmt.Sprintf("%d names are planned, more than one certificate may hold (%d): %d of them are on SNI certificates only, since the one default certificate shared by all server IPs (%s) is full; clients without SNI do not get them",
				len(grp.cands), p.limit, grp.overflow, strings.Join(ipNames, ", "))})
		return
	}
	out.Warnings = append(out.Warnings, model.Warning{Code: model.WarnOverLimit,
		Message: fmt.Sprintf("%d names resolve to %s, more than one certificate may hold (%d): %d of them are on SNI certificates only, which clients without SNI do not get; %d more IP address(es) would serve them on default certificates",
			len(grp.cands), strings.Join(ipNames, ", "), p.limit, grp.overflow, extra)})
}

// diff returns the names in a and not in b, and in b and not in a; both
// sorted.
func diff(a, b []string) (added, removed []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			added = append(added, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			removed = append(removed, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

func sortedWarnings(w []model.Warning) []model.Warning {
	slices.SortFunc(w, func(a, b model.Warning) int {
		return cmp.Or(strings.Compare(a.Code, b.Code), strings.Compare(a.Name, b.Name), strings.Compare(a.Message, b.Message))
	})
	return w
}

// planID hashes the certificates' IDs, name sets, IPs and default flags.
// Fields are written with length prefixes, so no two plans hash alike by
// concatenation.
func planID(pl *model.Plan) string {
	h := sha256.New()
	buf := make([]byte, 0, 32<<10)
	put := func(s string) {
		if len(buf)+8+len(s) > cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(s)))
		if len(s) > cap(buf)-len(buf) {
			h.Write(buf)
			buf = buf[:0]
			io.WriteString(h, s)
			return
		}
		buf = append(buf, s...)
	}
	for _, c := range pl.Certificates {
		put(c.ID)
		put(strconv.FormatBool(c.Default))
		put(strconv.Itoa(len(c.IPs)))
		for _, ip := range c.IPs {
			put(ip)
		}
		put(strconv.Itoa(len(c.Names)))
		for _, name := range c.Names {
			put(name)
		}
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil)[:12])
}
