package planner

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// wnm is nm with CAA allowing a wildcard over the name.
func wnm(name, dom string, ips []string, roles ...string) model.Name {
	n := nm(name, []string{dom}, ips, roles...)
	n.CAAWildOK = true
	n.CAAWild = &model.CAAVerdict{Reason: "no CAA record: any CA may issue"}
	return n
}

// wildInv is d.test's mail., smtp. and imap. names on one IP, with
// d.test listed as a hosted domain, and what a case adds.
func wildInv(extra ...model.Name) *model.Inventory {
	ip := []string{"127.0.0.2"}
	ns := []model.Name{
		wnm("mail.d.test", "d.test", ip, model.RoleMail),
		wnm("smtp.d.test", "d.test", ip, model.RoleSMTP),
		wnm("imap.d.test", "d.test", ip, model.RoleIMAP),
	}
	inv := inventory(ip, append(ns, extra...)...)
	inv.Domains = []model.Domain{{Domain: "d.test"}}
	return inv
}

// allNames returns every name of every certificate of p, sorted.
func allNames(p *model.Plan) []string {
	var out []string
	for _, c := range p.Certificates {
		out = append(out, c.Names...)
	}
	slices.Sort(out)
	return out
}

func hasWildWarning(p *model.Plan, code, name, text string) bool {
	for _, w := range p.Warnings {
		if w.Code == code && (name == "" || w.Name == name) && strings.Contains(w.Message, text) {
			return true
		}
	}
	return false
}

func TestWildcardRules(t *testing.T) {
	ip := []string{"127.0.0.2"}
	forbid := wnm("pop.d.test", "d.test", ip, model.RolePOP3)
	auto := Policy{Wildcards: WildcardsAuto, WildcardZones: []string{"d.test"}}
	for _, tc := range []struct {
		name     string
		inv      *model.Inventory
		pol      Policy
		want     []string
		warnCode string
		warnText string
	}{
		{"two one-label names become a wildcard", wildInv(), auto,
			[]string{"*.d.test"}, model.WarnWildcardName, "*.d.test replaces imap.d.test, mail.d.test, smtp.d.test on 127.0.0.2"},
		{"a deep name stays explicit", wildInv(wnm("a.mail.d.test", "d.test", ip, model.RoleMail)), auto,
			[]string{"*.d.test", "a.mail.d.test"}, "", ""},
		{"the apex MX stays beside the wildcard", wildInv(wnm("d.test", "d.test", ip, model.RoleMX)), auto,
			[]string{"*.d.test", "d.test"}, "", ""},
		{"never plans no wildcard", wildInv(), Policy{},
			[]string{"imap.d.test", "mail.d.test", "smtp.d.test"}, "", ""},
		{"a zone not allowed stays explicit", wildInv(), Policy{Wildcards: WildcardsAuto, WildcardZones: []string{"other.test"}},
			[]string{"imap.d.test", "mail.d.test", "smtp.d.test"}, model.WarnWildcardExplicit, "names stay explicit under *.d.test, under no --wildcard-zones zone"},
		{"a zone matches the names under it", wildInv(), Policy{Wildcards: WildcardsAuto, WildcardZones: []string{"test"}},
			[]string{"*.d.test"}, "", ""},
		{"auto without zones or DNS-01 plans none", wildInv(), Policy{Wildcards: WildcardsAuto},
			[]string{"imap.d.test", "mail.d.test", "smtp.d.test"}, model.WarnWildcardExplicit, "no DNS-01 provider configured"},
		{"auto with DNS-01 uses the hosted zones", wildInv(), Policy{Wildcards: WildcardsAuto, DNS01: true},
			[]string{"*.d.test"}, "", ""},
		{"always uses every zone", wildInv(), Policy{Wildcards: WildcardsAlways},
			[]string{"*.d.test"}, "", ""},
		{"issuewild forbidding leaves them explicit", caaWildInv(false), Policy{Wildcards: WildcardsAlways},
			[]string{"imap.d.test", "mail.d.test", "smtp.d.test"}, model.WarnWildcardExplicit, `CAA at d.test forbids every CA for wildcards (issuewild ";")`},
		{"an inventory without the issuewild verdict leaves them explicit", caaWildInv(true), auto,
			[]string{"imap.d.test", "mail.d.test", "smtp.d.test"}, model.WarnWildcardExplicit, "no CAA verdict for a wildcard"},
		{"one name refused by issuewild stays explicit beside it", wildInv(refuse(forbid)), auto,
			[]string{"*.d.test", "pop.d.test"}, model.WarnWildcardExplicit, "pop.d.test stay explicit"},
		{"a must-cover name stays explicit", wildInv(), Policy{Wildcards: WildcardsAuto, WildcardZones: []string{"d.test"}, Include: []string{"mail.d.test"}},
			[]string{"*.d.test", "mail.d.test"}, "", ""},
		{"one name alone is not replaced", inventory(ip, wnm("mail.d.test", "d.test", ip, model.RoleMail), wnm("mail.e.test", "e.test", ip, model.RoleMail)),
			Policy{Wildcards: WildcardsAlways}, []string{"mail.d.test", "mail.e.test"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPlan(t, tc.inv, nil, tc.pol, nil)
			if got := allNames(p); !slices.Equal(got, tc.want) {
				t.Errorf("names %v, want %v", got, tc.want)
			}
			for _, w := range p.WildcardNames {
				for _, n := range p.DialNames(w.Wildcard) {
					if !names.Covers(w.Wildcard, n) {
						t.Errorf("wildcard_names: %s does not cover %s", w.Wildcard, n)
					}
				}
			}
			if tc.warnCode != "" && !hasWildWarning(p, tc.warnCode, "", tc.warnText) {
				t.Errorf("no %s warning saying %q: %+v", tc.warnCode, tc.warnText, p.Warnings)
			}
			if tc.pol.Wildcards == "" && (hasWildWarning(p, model.WarnWildcardName, "", "") || hasWildWarning(p, model.WarnWildcardExplicit, "", "")) {
				t.Errorf("wildcard warnings with --wildcards never: %+v", p.Warnings)
			}
		})
	}
}

// caaWildInv is wildInv with CAA forbidding wildcards (issuewild ";" at
// d.test), or with no wildcard verdict at all (an older inventory).
func caaWildInv(unknown bool) *model.Inventory {
	inv := wildInv()
	for i := range inv.Names {
		inv.Names[i] = refuse(inv.Names[i])
		if unknown {
			inv.Names[i].CAAWild = nil
		}
	}
	return inv
}

func refuse(n model.Name) model.Name {
	n.CAAWildOK = false
	n.CAAWild = &model.CAAVerdict{At: "d.test", Records: []string{`0 issuewild ";"`},
		Reason: `CAA at d.test forbids every CA for wildcards (issuewild ";")`}
	return n
}

// A member resolving to two IPs, one of them where it is the only member,
// stays explicit there; the wildcard is planned where two members are.
func TestWildcardPerIP(t *testing.T) {
	a, b := "127.0.0.2", "127.0.0.3"
	inv := inventory([]string{a, b},
		wnm("mail.d.test", "d.test", []string{a, b}, model.RoleMail),
		wnm("smtp.d.test", "d.test", []string{a}, model.RoleSMTP))
	p := mustPlan(t, inv, nil, Policy{Wildcards: WildcardsAlways}, nil)
	got := map[string][]string{}
	for _, c := range p.Certificates {
		for _, ip := range c.IPs {
			got[ip] = append(got[ip], c.Names...)
		}
	}
	if !slices.Equal(got[a], []string{"*.d.test"}) || !slices.Equal(got[b], []string{"mail.d.test"}) {
		t.Errorf("got %v, want *.d.test on %s and mail.d.test on %s", got, a, b)
	}
}

// world300 is 300 hosted domains with the six conventional names each,
// all on one IP, CAA allowing wildcards.
func world300() *model.Inventory {
	ip := []string{"127.0.0.2"}
	roles := map[string]string{"mail": model.RoleMX, "smtp": model.RoleSMTP, "imap": model.RoleIMAP,
		"pop": model.RolePOP3, "autoconfig": model.RoleAutoconfig, "autodiscover": model.RoleAutodiscover}
	var ns []model.Name
	var doms []model.Domain
	for d := range 300 {
		dom := fmt.Sprintf("client%03d.test", d)
		doms = append(doms, model.Domain{Domain: dom})
		for label, role := range roles {
			ns = append(ns, wnm(label+"."+dom, dom, ip, role))
		}
	}
	inv := inventory(ip, ns...)
	inv.Domains = doms
	return inv
}

// The world: 300 domains of six names on one IP, a 100-name
// default. Without wildcards about 16 domains are fully covered without
// SNI; with them every domain's names take one SAN, and 100 are.
func TestWildcardWorld300(t *testing.T) {
	inv := world300()
	never := mustPlan(t, inv, nil, Policy{}, nil)
	auto := mustPlan(t, inv, nil, Policy{Wildcards: WildcardsAuto, DNS01: true}, nil)
	for _, tc := range []struct {
		name     string
		p        *model.Plan
		min, max int
	}{{"never", never, 0, 16}, {"auto", auto, 95, 100}} {
		if len(tc.p.NoSNI) != 1 {
			t.Fatalf("%s: no_sni %+v, want one IP", tc.name, tc.p.NoSNI)
		}
		r := tc.p.NoSNI[0]
		if r.Domains != 300 || r.After < tc.min || r.After > tc.max {
			t.Errorf("%s: %+v, want 300 domains, %d to %d fully covered", tc.name, r, tc.min, tc.max)
		}
		// Recount from the default certificate itself, by names.Covers.
		if got := coveredDomains(tc.p, inv); got != r.After {
			t.Errorf("%s: the default covers %d domains fully, no_sni says %d", tc.name, got, r.After)
		}
		t.Logf("%s: %d of %d domains fully covered without SNI, %d certificates", tc.name, r.After, r.Domains, len(tc.p.Certificates))
	}
	if len(auto.Certificates) >= len(never.Certificates) {
		t.Errorf("auto plans %d certificates, never %d: wildcards should need fewer", len(auto.Certificates), len(never.Certificates))
	}
}

// coveredDomains counts the hosted domains all of whose names verify on
// p's default certificate.
func coveredDomains(p *model.Plan, inv *model.Inventory) int {
	var def []string
	for _, c := range p.Certificates {
		if c.Default {
			def = c.Names
		}
	}
	bad := map[string]bool{}
	all := map[string]bool{}
	for _, n := range inv.Names {
		d := n.Domains[0]
		all[d] = true
		if !slices.ContainsFunc(def, func(cn string) bool { return names.Covers(cn, n.Name) }) {
			bad[d] = true
		}
	}
	return len(all) - len(bad)
}

// Switching a domain to a wildcard, and back, changes the names of the one
// certificate that held it (its ID kept), one order in the budget; the
// other certificates are unchanged.
func TestWildcardSwitchIsOneChange(t *testing.T) {
	ip := []string{"127.0.0.2"}
	// a.test's three MX hosts fill the 3-name default; b.test and c.test
	// get an SNI certificate each.
	ns := []model.Name{wnm("mx1.a.test", "a.test", ip, model.RoleMX), wnm("mx2.a.test", "a.test", ip, model.RoleMX), wnm("mx3.a.test", "a.test", ip, model.RoleMX)}
	for _, d := range []string{"b.test", "c.test"} {
		ns = append(ns, wnm("mail."+d, d, ip, model.RoleMail), wnm("smtp."+d, d, ip, model.RoleSMTP), wnm("imap."+d, d, ip, model.RoleIMAP))
	}
	inv := inventory(ip, ns...)
	explicit := mustPlan(t, inv, nil, Policy{MaxNames: 3}, nil)
	if c := certByID(explicit, "sni-b.test"); c == nil || len(c.Names) != 3 {
		t.Fatalf("want b.test's names on sni-b.test: %+v", explicit.Certificates)
	}
	wild := Policy{MaxNames: 3, Wildcards: WildcardsAuto, WildcardZones: []string{"b.test"}}
	to := mustPlan(t, inv, nil, wild, explicit)
	checkOneChange(t, "to a wildcard", explicit, to, []string{"*.b.test"}, []string{"imap.b.test", "mail.b.test", "smtp.b.test"})
	back := mustPlan(t, inv, nil, Policy{MaxNames: 3}, to)
	checkOneChange(t, "back", to, back, []string{"imap.b.test", "mail.b.test", "smtp.b.test"}, []string{"*.b.test"})
	if again := mustPlan(t, inv, nil, wild, to); again.Budget.Orders != 0 {
		t.Errorf("planning the wildcard plan again orders %d certificates, want 0", again.Budget.Orders)
	}
}

func checkOneChange(t *testing.T, what string, prev, p *model.Plan, added, removed []string) {
	t.Helper()
	if p.Budget.Orders != 1 || len(p.Retired) != 0 {
		t.Errorf("%s: %d orders, retired %v; want 1 order, none retired", what, p.Budget.Orders, p.Retired)
	}
	for _, c := range p.Certificates {
		if certByID(prev, c.ID) == nil {
			t.Errorf("%s: new certificate %s %v", what, c.ID, c.Names)
		}
		switch c.Change {
		case "unchanged":
		case "changed":
			if !slices.Equal(c.Added, added) || !slices.Equal(c.Removed, removed) {
				t.Errorf("%s: %s added %v removed %v, want %v and %v", what, c.ID, c.Added, c.Removed, added, removed)
			}
		default:
			t.Errorf("%s: %s is %s", what, c.ID, c.Change)
		}
	}
}

// A DNS hiccup under a planned wildcard changes nothing: a member whose
// lookup failed stays covered, and a wildcard whose hosted domain failed
// stays on its certificate.
func TestWildcardKeptThroughFailure(t *testing.T) {
	pol := Policy{Wildcards: WildcardsAuto, WildcardZones: []string{"d.test"}}
	prev := mustPlan(t, wildInv(), nil, pol, nil)
	failed := wildInv()
	failed.Names[1].Error = "SERVFAIL"
	failed.Names[1].CAAWildOK = false
	p := mustPlan(t, failed, nil, pol, prev)
	if p.Budget.Orders != 0 || !slices.Equal(allNames(p), []string{"*.d.test"}) {
		t.Errorf("a member's failed lookup: names %v, %d orders; want *.d.test unchanged", allNames(p), p.Budget.Orders)
	}
	gone := inventory([]string{"127.0.0.2"})
	gone.Domains = []model.Domain{{Domain: "d.test", Error: "MX d.test: SERVFAIL"}}
	p = mustPlan(t, gone, nil, pol, prev)
	if p.Budget.Orders != 0 || !slices.Equal(allNames(p), []string{"*.d.test"}) || !hasWildWarning(p, model.WarnKeptLookupFailed, "*.d.test", "") {
		t.Errorf("the domain's failed lookup: names %v, %d orders, warnings %+v; want *.d.test kept", allNames(p), p.Budget.Orders, p.Warnings)
	}
}

// Coverage and the no-SNI counts see a name covered by a wildcard on the
// default certificate as verifying.
func TestWildcardCoverage(t *testing.T) {
	inv := wildInv()
	row := func(name, without string) model.Coverage {
		return model.Coverage{Name: name, IP: "127.0.0.2", Port: 25, WithSNI: model.VerdictOK, WithoutSNI: without}
	}
	pr := &model.ProbeReport{Coverage: []model.Coverage{
		row("mail.d.test", model.VerdictMismatch), row("smtp.d.test", model.VerdictOK), row("imap.d.test", model.VerdictOK),
	}}
	p := mustPlan(t, inv, pr, Policy{Wildcards: WildcardsAlways}, nil)
	for _, c := range p.Coverage {
		if c.AfterWithSNI != model.VerdictOK || c.AfterWithoutSNI != model.VerdictOK || c.Note != "" {
			t.Errorf("%+v: want ok both ways after", c)
		}
	}
	want := []model.IPNoSNI{{IP: "127.0.0.2", Domains: 1, Before: 0, BeforeFrom: model.NoSNIFromProbe, After: 1}}
	if !slices.Equal(p.NoSNI, want) {
		t.Errorf("no_sni %+v, want %+v", p.NoSNI, want)
	}
	// Before from the previous plan: its default covers the domain.
	next := mustPlan(t, inv, nil, Policy{Wildcards: WildcardsAlways}, p)
	want[0].Before, want[0].BeforeFrom = 1, model.NoSNIFromPrevious
	if !slices.Equal(next.NoSNI, want) {
		t.Errorf("no_sni against the previous plan %+v, want %+v", next.NoSNI, want)
	}
}

// The plan lists the names each wildcard replaced, for probes to dial.
func TestWildcardNames(t *testing.T) {
	p := mustPlan(t, wildInv(wnm("d.test", "d.test", []string{"127.0.0.2"}, model.RoleMX)), nil, Policy{Wildcards: WildcardsAlways}, nil)
	want := []model.WildcardNames{{Wildcard: "*.d.test", Names: []string{"imap.d.test", "mail.d.test", "smtp.d.test"}}}
	if len(p.WildcardNames) != 1 || p.WildcardNames[0].Wildcard != want[0].Wildcard || !slices.Equal(p.WildcardNames[0].Names, want[0].Names) {
		t.Errorf("wildcard_names %+v, want %+v", p.WildcardNames, want)
	}
	if got := p.DialNames("d.test"); !slices.Equal(got, []string{"d.test"}) {
		t.Errorf("DialNames(d.test) = %v", got)
	}
}

// A name whose key DANE pins is not hidden under a wildcard: the DANE
// gates judge it by its own records (here: no key it trusts is held, so
// it is left out, and the other two names still become the wildcard).
func TestWildcardSkipsDANEPinned(t *testing.T) {
	inv := wildInv()
	for i := range inv.Names {
		if inv.Names[i].Name == "smtp.d.test" {
			inv.Names[i].TLSA = []model.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: strings.Repeat("ab", 32)}}
			inv.Names[i].TLSADNSSEC = model.DNSSECSecure
		}
	}
	p := mustPlan(t, inv, nil, Policy{Wildcards: WildcardsAuto, WildcardZones: []string{"d.test"}}, nil)
	if got := allNames(p); !slices.Equal(got, []string{"*.d.test"}) {
		t.Errorf("names %v, want [*.d.test]", got)
	}
	for _, w := range p.WildcardNames {
		if slices.Contains(p.DialNames(w.Wildcard), "smtp.d.test") {
			t.Errorf("%s replaced the DANE-pinned smtp.d.test", w.Wildcard)
		}
	}
	if !slices.ContainsFunc(p.Excluded, func(e model.Exclusion) bool { return e.Name == "smtp.d.test" && e.Code == model.ExcludeDANEPinned }) {
		t.Errorf("smtp.d.test not excluded as dane-pinned: %+v", p.Excluded)
	}
}
