package planner

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/certplan/certplan/model"
)

// withDomains fills inv.Domains from its names, as the inventory does.
func withDomains(inv *model.Inventory) *model.Inventory {
	names := map[string][]string{}
	for _, n := range inv.Names {
		for _, d := range n.Domains {
			names[d] = append(names[d], n.Name)
		}
	}
	inv.Domains = nil
	for d, ns := range names {
		slices.Sort(ns)
		inv.Domains = append(inv.Domains, model.Domain{Domain: d, Names: ns})
	}
	slices.SortFunc(inv.Domains, func(a, b model.Domain) int { return strings.Compare(a.Domain, b.Domain) })
	return inv
}

func name(inv *model.Inventory, n string) *model.Name {
	for i := range inv.Names {
		if inv.Names[i].Name == n {
			return &inv.Names[i]
		}
	}
	panic("no name " + n)
}

func domain(inv *model.Inventory, d string) *model.Domain {
	for i := range inv.Domains {
		if inv.Domains[i].Domain == d {
			return &inv.Domains[i]
		}
	}
	panic("no domain " + d)
}

// dropDomain removes a hosted domain's names from the inventory (and the
// domain from the names it shares), as when its lookups find nothing.
func dropDomain(inv *model.Inventory, d string) {
	inv.Names = slices.DeleteFunc(inv.Names, func(n model.Name) bool {
		return len(n.Domains) == 1 && n.Domains[0] == d
	})
	for i := range inv.Names {
		inv.Names[i].Domains = slices.DeleteFunc(slices.Clone(inv.Names[i].Domains), func(x string) bool { return x == d })
	}
	if i := slices.IndexFunc(inv.Domains, func(x model.Domain) bool { return x.Domain == d }); i >= 0 {
		inv.Domains[i].Names = []string{}
	}
}

const servfail = "A %s: SERVFAIL from 127.0.0.1:53"

func warnedNames(p *model.Plan, code string) []string {
	var out []string
	for _, w := range p.Warnings {
		if w.Code == code {
			out = append(out, w.Name)
		}
	}
	return out
}

func exclusions(p *model.Plan) map[string]string {
	m := map[string]string{}
	for _, e := range p.Excluded {
		m[e.Name] = e.Code
	}
	return m
}

// TestKeptLookupFailed: with a previous plan, a name whose lookup failed
// stays on its certificate; a definitive answer removes it as before.
func TestKeptLookupFailed(t *testing.T) {
	pol := Policy{MaxNames: 4}
	base := func() *model.Inventory { return withDomains(overLimitInventory()) }
	prev := mustPlan(t, base(), nil, pol, nil)
	if len(prev.NameDomains) != 1 || prev.NameDomains[0].Name != "mx.hoster.test" {
		t.Fatalf("previous plan's name_domains %+v: want the shared MX only", prev.NameDomains)
	}
	tests := []struct {
		name     string
		mutate   func(inv *model.Inventory)
		pol      *Policy
		kept     []string          // names with a kept-lookup-failed warning
		changed  []string          // certificates new or changed
		retired  []string          // previous certificates dropped
		excluded map[string]string // name → exclusion code
		more     bool              // other names are excluded too
	}{
		{name: "name lookup fails", kept: []string{"smtp.a.test"},
			mutate: func(inv *model.Inventory) {
				n := name(inv, "smtp.a.test")
				n.Error, n.Addresses, n.Here = fmt.Sprintf(servfail, n.Name), []string{}, model.HereNone
				domain(inv, "a.test").Error = n.Error
			}},
		{name: "AAAA fails, A points elsewhere", kept: []string{"mail.b.test"},
			mutate: func(inv *model.Inventory) {
				n := name(inv, "mail.b.test")
				n.Error, n.Addresses, n.Here = "AAAA mail.b.test: i/o timeout", []string{"127.0.0.77"}, model.HereNone
			}},
		{name: "TLSA lookup fails", kept: []string{"mx.hoster.test"},
			mutate: func(inv *model.Inventory) {
				name(inv, "mx.hoster.test").Error = "TLSA _25._tcp.mx.hoster.test: REFUSED from 127.0.0.1:53"
			}},
		{name: "CAA lookup fails", kept: []string{"imap.b.test"},
			mutate: func(inv *model.Inventory) {
				n := name(inv, "imap.b.test")
				n.CAAOK, n.CAA = false, model.CAAVerdict{Error: "CAA b.test: SERVFAIL from 127.0.0.1:53"}
			}},
		{name: "domain lookups fail, its names missing", kept: []string{"autoconfig.c.test", "imap.c.test", "mail.c.test", "smtp.c.test"},
			mutate: func(inv *model.Inventory) {
				dropDomain(inv, "c.test")
				domain(inv, "c.test").Error = "MX c.test: SERVFAIL from 127.0.0.1:53 (and 6 more lookups failed)"
			}},
		{name: "shared MX missing, one of its domains failing", kept: []string{"mx.hoster.test"},
			mutate: func(inv *model.Inventory) {
				inv.Names = slices.DeleteFunc(inv.Names, func(n model.Name) bool { return n.Name == "mx.hoster.test" })
				domain(inv, "b.test").Error = "MX b.test: i/o timeout"
			}},
		{name: "name NXDOMAIN", changed: []string{"default-127.0.0.2"},
			excluded: map[string]string{"smtp.a.test": model.ExcludeLookupFailed},
			mutate: func(inv *model.Inventory) {
				n := name(inv, "smtp.a.test")
				n.Error, n.Addresses, n.Here = model.NameErrNXDOMAIN, []string{}, model.HereNone
			}},
		{name: "name NXDOMAIN and its TLSA lookup fails", changed: []string{"default-127.0.0.2"},
			excluded: map[string]string{"mx.hoster.test": model.ExcludeLookupFailed},
			mutate: func(inv *model.Inventory) {
				n := name(inv, "mx.hoster.test")
				n.Error, n.Addresses, n.Here = model.NameErrNXDOMAIN+"; TLSA _25._tcp.mx.hoster.test: SERVFAIL", []string{}, model.HereNone
			}},
		{name: "points elsewhere", changed: []string{"sni-a.test"},
			excluded: map[string]string{"mail.a.test": model.ExcludePointsElsewhere},
			mutate: func(inv *model.Inventory) {
				n := name(inv, "mail.a.test")
				n.Addresses, n.Here = []string{"127.0.0.77"}, model.HereNone
			}},
		{name: "CAA forbids", changed: []string{"sni-a.test"},
			excluded: map[string]string{"imap.a.test": model.ExcludeCAAForbids},
			mutate: func(inv *model.Inventory) {
				n := name(inv, "imap.a.test")
				n.CAAOK, n.CAA = false, model.CAAVerdict{At: "a.test", Records: []string{`0 issue "sectigo.com"`}}
			}},
		{name: "domain NXDOMAIN", changed: []string{"default-127.0.0.2"}, retired: []string{"sni-c.test"},
			mutate: func(inv *model.Inventory) {
				dropDomain(inv, "c.test")
				domain(inv, "c.test").Error = "MX c.test: " + model.DomainErrNXDOMAIN
			}},
		{name: "domain removed from the list", changed: []string{"default-127.0.0.2"}, retired: []string{"sni-c.test"},
			mutate: func(inv *model.Inventory) {
				dropDomain(inv, "c.test")
				inv.Domains = slices.DeleteFunc(inv.Domains, func(d model.Domain) bool { return d.Domain == "c.test" })
			}},
		{name: "domain answers without the name", changed: []string{"sni-c.test"},
			mutate: func(inv *model.Inventory) {
				inv.Names = slices.DeleteFunc(inv.Names, func(n model.Name) bool { return n.Name == "imap.c.test" })
			}},
		{name: "shared MX missing, its domains answering", changed: []string{"default-127.0.0.2"},
			mutate: func(inv *model.Inventory) {
				inv.Names = slices.DeleteFunc(inv.Names, func(n model.Name) bool { return n.Name == "mx.hoster.test" })
				// Another domain failing changes nothing.
				inv.Domains = append(inv.Domains, model.Domain{Domain: "z.test", Error: "MX z.test: i/o timeout", Names: []string{}})
			}},
		{name: "new name with a failed lookup is not added",
			excluded: map[string]string{"mail.d.test": model.ExcludeLookupFailed},
			mutate: func(inv *model.Inventory) {
				n := nm("mail.d.test", []string{"d.test"}, nil, model.RoleMail)
				n.Error = fmt.Sprintf(servfail, n.Name)
				inv.Names = append(inv.Names, n)
				withDomains(inv)
			}},
		{name: "new name with a failed CAA lookup is not added",
			excluded: map[string]string{"mail.d.test": model.ExcludeCAAForbids},
			mutate: func(inv *model.Inventory) {
				n := nm("mail.d.test", []string{"d.test"}, []string{"127.0.0.2"}, model.RoleMail)
				n.CAAOK, n.CAA = false, model.CAAVerdict{Error: "CAA d.test: SERVFAIL"}
				inv.Names = append(inv.Names, n)
			}},
		{name: "an exclude pattern still excludes", pol: &Policy{MaxNames: 4, Exclude: []string{"smtp.*"}},
			changed:  []string{"default-127.0.0.2"},
			excluded: map[string]string{"smtp.a.test": model.ExcludePolicy, "smtp.b.test": model.ExcludePolicy, "smtp.c.test": model.ExcludePolicy},
			mutate: func(inv *model.Inventory) {
				n := name(inv, "smtp.a.test")
				n.Error, n.Addresses = fmt.Sprintf(servfail, n.Name), []string{}
			}},
		{name: "an exclude pattern excludes a name its domain's failure hid", pol: &Policy{MaxNames: 4, Exclude: []string{"imap.c.test"}},
			kept:     []string{"autoconfig.c.test", "mail.c.test", "smtp.c.test"},
			changed:  []string{"sni-c.test"},
			excluded: map[string]string{"imap.c.test": model.ExcludePolicy},
			mutate: func(inv *model.Inventory) {
				dropDomain(inv, "c.test")
				domain(inv, "c.test").Error = "MX c.test: SERVFAIL"
			}},
		{name: "a server IP gone from the policy", pol: &Policy{MaxNames: 4, ServerIPs: []string{"127.0.0.3"}},
			retired:  []string{"default-127.0.0.2", "sni-a.test", "sni-b.test", "sni-c.test"},
			excluded: map[string]string{"smtp.a.test": model.ExcludeLookupFailed, "mail.a.test": model.ExcludePointsElsewhere}, more: true,
			mutate: func(inv *model.Inventory) {
				n := name(inv, "smtp.a.test")
				n.Error, n.Addresses = fmt.Sprintf(servfail, n.Name), []string{}
				dropDomain(inv, "c.test")
				domain(inv, "c.test").Error = "MX c.test: SERVFAIL"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := base()
			tt.mutate(inv)
			pl := pol
			if tt.pol != nil {
				pl = *tt.pol
			}
			p := mustPlan(t, inv, nil, pl, prev)
			if got := warnedNames(p, model.WarnKeptLookupFailed); !slices.Equal(got, tt.kept) {
				t.Errorf("kept %v, want %v", got, tt.kept)
			}
			if got := changed(p); !slices.Equal(got, tt.changed) {
				t.Errorf("changed %v, want %v", got, tt.changed)
			}
			if !slices.Equal(p.Retired, tt.retired) {
				t.Errorf("retired %v, want %v", p.Retired, tt.retired)
			}
			got := exclusions(p)
			for n, code := range tt.excluded {
				if got[n] != code {
					t.Errorf("%s excluded as %q, want %q", n, got[n], code)
				}
			}
			if len(got) != len(tt.excluded) && !tt.more {
				t.Errorf("excluded %v, want %v", got, tt.excluded)
			}
			for _, n := range tt.kept {
				if slices.Contains(p.SNIOnly, n) != slices.Contains(prev.SNIOnly, n) {
					t.Errorf("%s: sni_only changed", n)
				}
			}
			if len(tt.changed)+len(tt.retired) == 0 && p.ID != prev.ID {
				t.Errorf("plan ID %s, want the previous %s", p.ID, prev.ID)
			}
		})
	}
}

// TestKeptMustCover: a must-cover name whose lookup failed is kept when a
// previous certificate has it, and excluded (with the must-cover warning)
// when none does.
func TestKeptMustCover(t *testing.T) {
	ip := []string{"127.0.0.2"}
	inv := withDomains(inventory(ip, nm("mail.a.test", []string{"a.test"}, ip, model.RoleMail), nm("host.hoster.test", nil, ip)))
	pol := Policy{Hostname: "host.hoster.test"}
	prev := mustPlan(t, inv, nil, pol, nil)
	name(inv, "host.hoster.test").Error = fmt.Sprintf(servfail, "host.hoster.test")
	p := mustPlan(t, inv, nil, pol, prev)
	if len(changed(p)) != 0 || len(warnedNames(p, model.WarnMustCoverIssue)) != 0 || !slices.Equal(warnedNames(p, model.WarnKeptLookupFailed), []string{"host.hoster.test"}) {
		t.Errorf("changed %v, warnings %+v", changed(p), p.Warnings)
	}
	if c := p.Certificates[0]; !slices.Equal(c.MustCover, []string{"host.hoster.test"}) {
		t.Errorf("must_cover %v", c.MustCover)
	}
	p = mustPlan(t, inv, nil, Policy{Hostname: "host.hoster.test", Include: []string{"mail.a.test"}}, nil)
	if !slices.Equal(warnedNames(p, model.WarnMustCoverIssue), []string{"host.hoster.test"}) {
		t.Errorf("without a previous plan: warnings %+v", p.Warnings)
	}
	noHost := mustPlan(t, withDomains(inventory(ip, nm("mail.a.test", []string{"a.test"}, ip, model.RoleMail))), nil, Policy{}, nil)
	p = mustPlan(t, inv, nil, pol, noHost)
	if exclusions(p)["host.hoster.test"] != model.ExcludeLookupFailed || !slices.Equal(warnedNames(p, model.WarnMustCoverIssue), []string{"host.hoster.test"}) {
		t.Errorf("not on a previous certificate: excluded %v, warnings %+v", p.Excluded, p.Warnings)
	}
}

// TestKeptCarriesDomains: a name seen only through some of its domains
// while another fails keeps that domain's claim in the plan, so a later
// run that cannot see the name at all still keeps it.
func TestKeptCarriesDomains(t *testing.T) {
	pol := Policy{MaxNames: 4}
	prev := mustPlan(t, withDomains(overLimitInventory()), nil, pol, nil)
	inv := withDomains(overLimitInventory())
	dropDomain(inv, "c.test")
	domain(inv, "c.test").Error = "MX c.test: SERVFAIL"
	p1 := mustPlan(t, inv, nil, pol, prev)
	if want := []model.NameDomains{{Name: "mx.hoster.test", Domains: []string{"a.test", "b.test", "c.test"}}}; !slices.EqualFunc(p1.NameDomains, want, func(a, b model.NameDomains) bool {
		return a.Name == b.Name && slices.Equal(a.Domains, b.Domains)
	}) {
		t.Errorf("name_domains %+v, want %+v", p1.NameDomains, want)
	}
	// Now a.test and b.test move their MX away; c.test still fails.
	inv.Names = slices.DeleteFunc(inv.Names, func(n model.Name) bool { return n.Name == "mx.hoster.test" })
	p2 := mustPlan(t, inv, nil, pol, p1)
	if len(changed(p2)) != 0 || !slices.Contains(warnedNames(p2, model.WarnKeptLookupFailed), "mx.hoster.test") {
		t.Errorf("changed %v, kept %v", changed(p2), warnedNames(p2, model.WarnKeptLookupFailed))
	}
	// c.test answers again, without the shared MX: it goes.
	inv = withDomains(overLimitInventory())
	inv.Names = slices.DeleteFunc(inv.Names, func(n model.Name) bool { return n.Name == "mx.hoster.test" })
	p3 := mustPlan(t, inv, nil, pol, p2)
	if !slices.Equal(changed(p3), []string{"default-127.0.0.2"}) || slices.Contains(certByID(p3, "default-127.0.0.2").Names, "mx.hoster.test") {
		t.Errorf("changed %v, default %v", changed(p3), certByID(p3, "default-127.0.0.2").Names)
	}
}

// TestKeptGolden: every kind of failure at once, with the warnings' wording.
func TestKeptGolden(t *testing.T) {
	pol := Policy{MaxNames: 4}
	prev := mustPlan(t, withDomains(overLimitInventory()), nil, pol, nil)
	inv := withDomains(overLimitInventory())
	n := name(inv, "smtp.a.test")
	n.Error, n.Addresses, n.Here = fmt.Sprintf(servfail, n.Name), []string{}, model.HereNone
	n = name(inv, "imap.b.test")
	n.CAAOK, n.CAA = false, model.CAAVerdict{Error: "CAA b.test: SERVFAIL from 127.0.0.1:53"}
	dropDomain(inv, "c.test")
	domain(inv, "c.test").Error = "MX c.test: i/o timeout (and 6 more lookups failed)"
	p := mustPlan(t, inv, nil, pol, prev)
	if len(changed(p)) != 0 || len(p.Retired) != 0 || p.ID != prev.ID {
		t.Errorf("changed %v, retired %v", changed(p), p.Retired)
	}
	b, err := model.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "kept", b)
}

// TestKeptProperty: with a previous plan, an inventory in which a random
// subset of hosted domains fails, in any of the ways a lookup fails,
// changes no certificate; once DNS answers again, neither does the next
// run.
func TestKeptProperty(t *testing.T) {
	for _, c := range []struct {
		n, limit int
		ips      []string
	}{{300, 25, twoIPs}, {5000, 25, fourIPs}, {20000, 100, fourIPs}} {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%d names, limit %d, seed %d", c.n, c.limit, seed), func(t *testing.T) {
				pol := Policy{MaxNames: c.limit}
				healthy := func() *model.Inventory { return withDomains(genInventory(uint64(c.n), c.n, c.ips)) }
				prev := mustPlan(t, healthy(), nil, pol, nil)
				inv := healthy()
				r := rand.New(rand.NewPCG(seed, 11))
				nameAt := inv.NameIndex()
				failed := 0
				drop := map[string]bool{}
				for di := range inv.Domains {
					d := &inv.Domains[di]
					if r.IntN(5) != 0 {
						continue
					}
					failed++
					switch r.IntN(4) {
					case 0: // every lookup of the domain failed: its names are missing
						drop[d.Domain] = true
						d.Error = "MX " + d.Domain + ": i/o timeout (and 14 more lookups failed)"
					case 1: // the names' address lookups failed
						d.Error = fmt.Sprintf(servfail, d.Names[0])
						for _, hn := range d.Names {
							n := &inv.Names[nameAt[hn]]
							n.Error, n.Addresses, n.Here = fmt.Sprintf(servfail, hn), []string{}, model.HereNone
						}
					case 2: // CAA lookups failed
						for _, hn := range d.Names {
							n := &inv.Names[nameAt[hn]]
							n.CAAOK, n.CAA = false, model.CAAVerdict{Error: "CAA " + hn + ": SERVFAIL"}
						}
					case 3: // one name's lookup failed, the others answered
						d.Error = fmt.Sprintf(servfail, d.Names[0])
						n := &inv.Names[nameAt[d.Names[r.IntN(len(d.Names))]]]
						n.Error = "AAAA " + n.Name + ": i/o timeout"
					}
				}
				// Every generated name has one domain: a dropped domain's
				// names are missing.
				inv.Names = slices.DeleteFunc(inv.Names, func(n model.Name) bool { return drop[n.Domains[0]] })
				for di := range inv.Domains {
					if drop[inv.Domains[di].Domain] {
						inv.Domains[di].Names = []string{}
					}
				}
				if failed == 0 {
					t.Fatal("no domain failed")
				}
				p := mustPlan(t, inv, nil, pol, prev)
				if ids := changed(p); len(ids) != 0 || len(p.Retired) != 0 || p.ID != prev.ID {
					t.Fatalf("%d failing domains: changed %v, retired %v", failed, ids, p.Retired)
				}
				if len(p.Excluded) != 0 {
					t.Fatalf("excluded %v", p.Excluded[0])
				}
				checkInvariants(t, healthy(), p, c.limit)
				again := mustPlan(t, healthy(), nil, pol, p)
				if ids := changed(again); len(ids) != 0 || again.ID != prev.ID || len(warnedNames(again, model.WarnKeptLookupFailed)) != 0 {
					t.Fatalf("after recovery: changed %v", ids)
				}
			})
		}
	}
}
