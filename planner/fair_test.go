package planner

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/certplan/certplan/model"
)

// bigDomainInventory: on one IP, big.test names 150 MX targets, and 20
// other customers (d00.test ... d19.test) each have one MX target, an
// smtp. name and a mail. name.
func bigDomainInventory(withOthers bool) *model.Inventory {
	ip := []string{"127.0.0.2"}
	var names []model.Name
	for i := range 150 {
		names = append(names, nm(fmt.Sprintf("mx%03d.big.test", i), []string{"big.test"}, ip, model.RoleMX))
	}
	if withOthers {
		for i := range 20 {
			d := fmt.Sprintf("d%02d.test", i)
			names = append(names,
				nm("mx."+d, []string{d}, ip, model.RoleMX),
				nm("smtp."+d, []string{d}, ip, model.RoleSMTP),
				nm("mail."+d, []string{d}, ip, model.RoleMail))
		}
	}
	return inventory(ip, names...)
}

func defaultCert(t *testing.T, p *model.Plan) *model.PlannedCert {
	t.Helper()
	for i := range p.Certificates {
		if p.Certificates[i].Default {
			return &p.Certificates[i]
		}
	}
	t.Fatal("no default certificate")
	return nil
}

// countUnder counts the names of list under domain.
func countUnder(list []string, domain string) int {
	n := 0
	for _, s := range list {
		if strings.HasSuffix(s, "."+domain) {
			n++
		}
	}
	return n
}

// TestFairDefault: one domain with 150 MX targets must not push the other
// customers' MX targets (nor their submission and mail names) to SNI-only.
// The default holds every other domain's names, and big.test the rest of
// its room; big.test's other 110 names go on SNI certificates of its own,
// ordered (budget) and warned about by domain and count.
func TestFairDefault(t *testing.T) {
	p := mustPlan(t, bigDomainInventory(true), nil, Policy{}, nil)
	def := defaultCert(t, p)
	for i := range 20 {
		d := fmt.Sprintf("d%02d.test", i)
		for _, n := range []string{"mx." + d, "smtp." + d, "mail." + d} {
			if !slices.Contains(def.Names, n) {
				t.Errorf("%s is not on the default certificate (SNI-only: %v)", n, slices.Contains(p.SNIOnly, n))
			}
		}
	}
	if got := countUnder(def.Names, "big.test"); got != 40 {
		t.Errorf("big.test has %d names on the default, want 40 (the room left)", got)
	}
	if got := countUnder(p.SNIOnly, "big.test"); got != 110 || len(p.SNIOnly) != 110 {
		t.Errorf("sni_only: %d of big.test, %d in all; want 110, 110", got, len(p.SNIOnly))
	}
	// big.test's SNI certificates: 100 + 10 names, both ordered.
	var sni []int
	for _, c := range p.Certificates {
		if !c.Default {
			if countUnder(c.Names, "big.test") != len(c.Names) {
				t.Errorf("SNI certificate %s holds names of other domains: %v", c.ID, c.Names)
			}
			sni = append(sni, len(c.Names))
		}
	}
	slices.Sort(sni)
	if !slices.Equal(sni, []int{10, 100}) {
		t.Errorf("SNI certificates of %v names, want [10 100]", sni)
	}
	if p.Budget.Orders != 3 {
		t.Errorf("budget: %d orders, want 3", p.Budget.Orders)
	}
	for _, dc := range p.Budget.PerRegisteredDomain {
		if dc.Domain == "big.test" && dc.Orders != 3 {
			t.Errorf("budget: big.test %d orders, want 3", dc.Orders)
		}
	}
	if !hasWarning(p, model.WarnSNIOnly, "big.test", "has 110 names on SNI certificates only") {
		t.Errorf("no sni-only warning naming big.test and its 110 names: %+v", p.Warnings)
	}
}

func hasWarning(p *model.Plan, code, name, text string) bool {
	for _, w := range p.Warnings {
		if w.Code == code && w.Name == name && strings.Contains(w.Message, text) {
			return true
		}
	}
	return false
}

// TestFairCapExemptions: with 8 names on the default and 2 per domain, a
// shared MX host counts against none of its domains and a DANE-pinned MX
// host is exempt from the cap; c.test, capped, keeps one MX target SNI-only
// and is told why.
func TestFairCapExemptions(t *testing.T) {
	ip := []string{"127.0.0.2"}
	a, b, c := []string{"a.test"}, []string{"b.test"}, []string{"c.test"}
	dane := nm("mx9.a.test", a, ip, model.RoleMX)
	dane.TLSA = []model.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: "00"}}
	inv := inventory(ip,
		nm("mx.hoster.test", []string{"a.test", "b.test"}, ip, model.RoleMX),
		nm("mx1.a.test", a, ip, model.RoleMX), nm("mx2.a.test", a, ip, model.RoleMX),
		nm("mx3.a.test", a, ip, model.RoleMX), dane,
		nm("mx1.b.test", b, ip, model.RoleMX),
		nm("mx1.c.test", c, ip, model.RoleMX), nm("mx2.c.test", c, ip, model.RoleMX),
		nm("mx3.c.test", c, ip, model.RoleMX))
	// Its (unvalidated) record trusts the default's key: it may go on it.
	keys := KeyState{Current: map[string]string{"default-127.0.0.2": "00"}}
	p := mustPlan(t, inv, nil, Policy{MaxNames: 8, MaxNamesPerDomain: 2, Keys: keys}, nil)
	def := defaultCert(t, p)
	if !slices.Contains(def.Names, "mx9.a.test") {
		t.Errorf("default %v: want the DANE-pinned mx9.a.test on it", def.Names)
	}
	if !slices.Equal(p.SNIOnly, []string{"mx3.c.test"}) {
		t.Errorf("sni_only %v, want [mx3.c.test]; default %v", p.SNIOnly, def.Names)
	}
	if !hasWarning(p, model.WarnSNIOnly, "c.test", "has 1 name on SNI certificates only on 127.0.0.2, which clients without SNI do not get: its share of the default certificate is capped at 2") {
		t.Errorf("no sni-only warning for c.test's cap: %+v", p.Warnings)
	}
}

// TestFairStable: with a previous plan, names stay where they are (the
// previous default, filled by big.test alone, keeps its names and the new
// domains go to SNI certificates); with Repack the plan is fair again.
func TestFairStable(t *testing.T) {
	prev := mustPlan(t, bigDomainInventory(false), nil, Policy{}, nil)
	prevDef := defaultCert(t, prev)
	if len(prevDef.Names) != 100 {
		t.Fatalf("previous default has %d names, want 100", len(prevDef.Names))
	}
	inv := bigDomainInventory(true)
	stay := mustPlan(t, inv, nil, Policy{}, prev)
	if def := defaultCert(t, stay); !slices.Equal(def.Names, prevDef.Names) || def.ID != prevDef.ID {
		t.Errorf("with a previous plan the default changed: %s %v", def.ID, def.Names)
	}
	if !hasWarning(stay, model.WarnSNIOnly, "", "20 MX targets of other domains (mx.d00.test, mx.d01.test, mx.d02.test, ...) are on SNI certificates only on 127.0.0.2 while big.test holds 100 names of its default certificate") ||
		!hasWarning(stay, model.WarnSNIOnly, "", "--repack") {
		t.Errorf("no warning that a repack would serve the other domains' MX targets: %+v", stay.Warnings)
	}
	re := mustPlan(t, inv, nil, Policy{Repack: true}, prev)
	def := defaultCert(t, re)
	if def.ID != prevDef.ID {
		t.Errorf("repacked default has ID %s, want the previous %s", def.ID, prevDef.ID)
	}
	if countUnder(def.Names, "big.test") != 40 || !slices.Contains(def.Names, "mx.d19.test") {
		t.Errorf("repacked default is not fair: %v", def.Names)
	}
	// big.test's SNI certificates continue the previous one (its ID kept).
	if c := certByID(re, "sni-big.test"); c == nil || c.Change == "new" {
		t.Errorf("repacked SNI certificate does not continue sni-big.test: %+v", re.Certificates)
	}
	// Repacking a repacked plan (--repack in renew's config) orders nothing.
	again := mustPlan(t, inv, nil, Policy{Repack: true}, re)
	if ids := changed(again); len(ids) != 0 || again.ID != re.ID {
		t.Errorf("repacking again changed %v", ids)
	}
	if hasWarning(again, model.WarnSNIOnly, "", "--repack") {
		t.Errorf("a fair plan warns of --repack: %+v", again.Warnings)
	}
	// Without --repack, a plan continuing a fair one does not warn either.
	if p := mustPlan(t, inv, nil, Policy{}, re); hasWarning(p, model.WarnSNIOnly, "", "--repack") {
		t.Errorf("a fair previous plan warns of --repack: %+v", p.Warnings)
	}
}

// TestFairSharedMXSources: with the inventory's sources, a host counts as a
// shared MX host only when several domains name it in MX records.
func TestFairSharedMXSources(t *testing.T) {
	ip := []string{"127.0.0.2"}
	a, c := []string{"a.test"}, []string{"c.test"}
	for _, tc := range []struct {
		bRole, sniOnly string
	}{{model.RoleMX, "mx3.c.test"}, {model.RoleSubmission, "mx3.a.test"}} {
		hoster := nm("mx.hoster.test", []string{"a.test", "b.test"}, ip, model.RoleMX, tc.bRole)
		hoster.Sources = []model.Source{
			{Domain: "a.test", Role: model.RoleMX, Record: "a.test. MX 10 mx.hoster.test."},
			{Domain: "b.test", Role: tc.bRole, Record: "b.test. some record"}}
		inv := inventory(ip, hoster,
			nm("mx1.a.test", a, ip, model.RoleMX), nm("mx2.a.test", a, ip, model.RoleMX),
			nm("mx3.a.test", a, ip, model.RoleMX),
			nm("mx1.c.test", c, ip, model.RoleMX), nm("mx2.c.test", c, ip, model.RoleMX),
			nm("mx3.c.test", c, ip, model.RoleMX))
		p := mustPlan(t, inv, nil, Policy{MaxNames: 6, MaxNamesPerDomain: 2}, nil)
		if !slices.Equal(p.SNIOnly, []string{tc.sniOnly}) {
			t.Errorf("b.test names it as %s: sni_only %v, want [%s]", tc.bRole, p.SNIOnly, tc.sniOnly)
		}
	}
}
