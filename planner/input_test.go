package planner_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
)

// TestSlimInput plans a generated inventory read whole and read with
// SlimName and SlimDomain, with several policies and with a previous
// plan made from a changed inventory: the plans are byte for byte the
// same. The inventory has what the slim read drops (domains' names,
// sources' records, CAA records of allowed names) and what the rules read
// beside them (wildcard-only names, CAA exclusions that quote their
// records, MX hosts of several domains, failed lookups, TLSA records,
// MTA-STS policies that list a domain's MX hosts).
func TestSlimInput(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	prevInv := slimWorld(2, 150)
	whole, slim := slimRead(t, slimWorld(1, 150))
	policies := []planner.Policy{
		{Hostname: "server.hoster.test"},
		{Hostname: "server.hoster.test", MaxNames: 25, MaxNamesPerDomain: 3, Exclude: []string{"autodiscover.*"}},
		{DefaultCert: planner.DefaultCertShared, Include: []string{"imap.d0003.test"}},
	}
	for i, pol := range policies {
		prev, err := planner.Plan(prevInv, nil, pol, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range []*model.Plan{nil, prev} {
			a, b := slimPlan(t, whole, pol, pr, now), slimPlan(t, slim, pol, pr, now)
			if !bytes.Equal(a, b) {
				t.Errorf("policy %d (previous plan: %v): the plan of the slimmed inventory differs: %s", i, pr != nil, firstDiff(a, b))
			}
		}
	}
}

// slimRead writes inv as certplan does and reads it back whole and
// slimmed, checking that the slim read dropped what it drops.
func slimRead(t *testing.T, inv *model.Inventory) (whole, slim *model.Inventory) {
	t.Helper()
	b, err := model.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "inventory.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	whole, slim = &model.Inventory{}, &model.Inventory{}
	if err := model.ReadFile(path, model.KindInventory, whole); err != nil {
		t.Fatal(err)
	}
	if err := model.ReadInventory(path, slim, planner.SlimName, planner.SlimDomain); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(whole, inv) {
		t.Fatal("the inventory read whole is not the one written")
	}
	var records, caa int
	for i := range whole.Names {
		w, s := &whole.Names[i], &slim.Names[i]
		if len(w.Sources) > 0 && w.Sources[0].Record != s.Sources[0].Record {
			records++
		}
		if len(w.CAA.Records) > len(s.CAA.Records) {
			caa++
		}
	}
	var domNames, sts int
	for i := range whole.Domains {
		if len(whole.Domains[i].Names) > len(slim.Domains[i].Names) {
			domNames++
		}
		if whole.Domains[i].MTASTS != nil {
			sts++
		}
	}
	if records == 0 || caa == 0 || domNames == 0 || sts == 0 {
		t.Fatalf("the slim read dropped %d sources' records, %d CAA record sets and %d domains' names (%d domains with MTA-STS): want some of each", records, caa, domNames, sts)
	}
	return whole, slim
}

func slimPlan(t *testing.T, inv *model.Inventory, pol planner.Policy, prev *model.Plan, now time.Time) []byte {
	t.Helper()
	p, err := planner.Plan(inv, nil, pol, prev, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d: %q, slimmed %q", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("%d lines, slimmed %d", len(la), len(lb))
}

// slimWorld generates a shared host's inventory of n domains on two
// server IPs: per domain mail. (MX), smtp. (SRV), autoconfig. and imap.
// (found by lookup; some only through a wildcard), some MX records to one
// of the hoster's MX hosts shared by many domains, some names elsewhere,
// forbidden by CAA or with a failed lookup, and some failed domains.
func slimWorld(seed uint64, n int) *model.Inventory {
	r := rand.New(rand.NewPCG(seed, 14))
	ips := []string{"127.0.0.2", "127.0.0.3"}
	inv := &model.Inventory{Header: model.Header{Kind: model.KindInventory, Version: model.Version},
		CAIdentifier: "letsencrypt.org", ServerIPs: ips}
	names := map[string]*model.Name{}
	use := func(name, d, role, record string, addr string) *model.Name {
		nm := names[name]
		if nm == nil {
			nm = &model.Name{Name: name, Addresses: []string{addr}, Here: model.HereAll, CAAOK: true,
				CAA: model.CAAVerdict{At: d, Records: []string{`0 issue "letsencrypt.org"`}, Reason: `CAA at ` + d + ` allows "letsencrypt.org"`}}
			names[name] = nm
		}
		nm.Roles = append(nm.Roles, role)
		nm.Domains = append(nm.Domains, d)
		nm.Sources = append(nm.Sources, model.Source{Domain: d, Role: role, Record: record})
		return nm
	}
	for i := range n {
		d := fmt.Sprintf("d%04d.test", i)
		ip := ips[r.IntN(len(ips))]
		dom := model.Domain{Domain: d, Source: "domains:list"}
		mx := "mail." + d
		if r.IntN(3) == 0 {
			mx = fmt.Sprintf("mx%d.hoster.test", r.IntN(4))
		}
		use(mx, d, model.RoleMX, d+". MX 10 "+mx+".", ips[0])
		use("smtp."+d, d, model.RoleSubmission, "_submission._tcp."+d+". SRV 0 1 587 smtp."+d+".", ip)
		use("autoconfig."+d, d, model.RoleAutoconfig, "exists", ip)
		imap := use("imap."+d, d, model.RoleIMAP, "exists", ip)
		imap.Wildcard = r.IntN(4) == 0
		if mx != "mail."+d {
			use("mail."+d, d, model.RoleMail, "exists", ip)
		}
		slimOddities(r, names, d, &dom)
		inv.Domains = append(inv.Domains, dom)
	}
	for _, nm := range names {
		slices.Sort(nm.Roles)
		nm.Roles = slices.Compact(nm.Roles)
		slices.Sort(nm.Domains)
		nm.Domains = slices.Compact(nm.Domains)
		slices.SortFunc(nm.Sources, func(a, b model.Source) int {
			return strings.Compare(a.Domain+a.Role+a.Record, b.Domain+b.Role+b.Record)
		})
		inv.Names = append(inv.Names, *nm)
		for _, d := range nm.Domains {
			i, _ := slices.BinarySearchFunc(inv.Domains, d, func(x model.Domain, d string) int { return strings.Compare(x.Domain, d) })
			inv.Domains[i].Names = append(inv.Domains[i].Names, nm.Name)
		}
	}
	slices.SortFunc(inv.Names, func(a, b model.Name) int { return strings.Compare(a.Name, b.Name) })
	for i := range inv.Domains {
		slices.Sort(inv.Domains[i].Names)
	}
	return inv
}

// slimOddities gives some of domain d's names what the rules look at:
// CAA that forbids (its records quoted in the reason), a failed CAA
// lookup, a failed lookup, addresses elsewhere, TLSA records; and fails
// some domains; gives some domains an MTA-STS policy.
func slimOddities(r *rand.Rand, names map[string]*model.Name, d string, dom *model.Domain) {
	switch r.IntN(12) {
	case 0:
		n := names["smtp."+d]
		n.CAAOK, n.CAA = false, model.CAAVerdict{At: d, Records: []string{`0 issue "sectigo.com"`}, Reason: `CAA at ` + d + ` allows only "sectigo.com"`}
	case 1:
		names["autoconfig."+d].CAAOK, names["autoconfig."+d].CAA = false, model.CAAVerdict{Error: "SERVFAIL"}
	case 2:
		names["imap."+d].Error, names["imap."+d].Addresses, names["imap."+d].Here = "A: SERVFAIL", nil, model.HereNone
	case 3:
		names["imap."+d].Addresses, names["imap."+d].Here = []string{"127.0.0.77"}, model.HereNone
	case 4:
		// DANE-TA: it pins the CA, so that a previous plan's names may
		// move (a pinned key would refuse the plan).
		names["smtp."+d].TLSA = []model.TLSA{{Usage: 2, Selector: 1, MatchingType: 1, Data: "ab"}}
		names["smtp."+d].TLSADNSSEC = model.DNSSECSecure
	case 5:
		dom.Error = "MX " + d + ": SERVFAIL"
	case 6, 7:
		// An MTA-STS policy that lists the domain's MX host, or not.
		mode := []string{model.MTASTSEnforce, model.MTASTSTesting}[r.IntN(2)]
		mx := []string{"mail." + d, "*.hoster.test", "other.test"}[r.IntN(3)]
		dom.MTASTS = &model.MTASTS{TXT: "v=STSv1; id=1", ID: "1", Policy: &model.MTASTSPolicy{Mode: mode, MaxAge: 86400, MX: []string{mx}}}
	}
}
