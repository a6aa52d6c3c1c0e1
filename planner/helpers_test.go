package planner

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/model"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var now = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// nm builds an inventory name that points here (Here all) on ips.
func nm(name string, domains []string, ips []string, roles ...string) model.Name {
	slices.Sort(roles)
	n := model.Name{Name: name, Roles: roles, Domains: domains, Addresses: ips, Here: model.HereAll, CAAOK: true}
	return n
}

func inventory(ips []string, names ...model.Name) *model.Inventory {
	slices.SortFunc(names, func(a, b model.Name) int { return strings.Compare(a.Name, b.Name) })
	return &model.Inventory{Header: model.Header{Kind: model.KindInventory, Version: model.Version},
		CAIdentifier: "letsencrypt.org", ServerIPs: ips, Names: names}
}

// golden compares got with testdata/<name>.golden, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", path, got)
	}
}

func mustPlan(t testing.TB, inv *model.Inventory, pr *model.ProbeReport, pol Policy, prev *model.Plan) *model.Plan {
	t.Helper()
	p, err := Plan(inv, pr, pol, prev, now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func certByID(p *model.Plan, id string) *model.PlannedCert {
	for i := range p.Certificates {
		if p.Certificates[i].ID == id {
			return &p.Certificates[i]
		}
	}
	return nil
}

var roleChoices = []string{model.RoleMX, model.RoleSubmission, model.RoleIMAP, model.RoleMail, model.RoleSMTP, model.RoleAutoconfig, model.RoleAutodiscover, model.RolePOP3}

// genInventory makes an inventory of about n names over domains with a few
// names each, on the given IPs: each domain's names resolve to one IP, or
// (one domain in ten) to two.
func genInventory(seed uint64, n int, ips []string) *model.Inventory {
	r := rand.New(rand.NewPCG(seed, 7))
	inv := inventory(ips)
	for d := 0; len(inv.Names) < n; d++ {
		dom := fmt.Sprintf("d%06d.test", d)
		inv.Names = append(inv.Names, genDomain(r, dom, ips)...)
	}
	inv.Names = inv.Names[:n]
	slices.SortFunc(inv.Names, func(a, b model.Name) int { return strings.Compare(a.Name, b.Name) })
	return inv
}

func genDomain(r *rand.Rand, dom string, ips []string) []model.Name {
	on := []string{ips[r.IntN(len(ips))]}
	if len(ips) > 1 && r.IntN(10) == 0 {
		other := ips[r.IntN(len(ips))]
		if other != on[0] {
			on = append(on, other)
			slices.Sort(on)
		}
	}
	k := 1 + r.IntN(6)
	var out []model.Name
	for i := 0; i < k; i++ {
		role := roleChoices[i%len(roleChoices)]
		out = append(out, nm(role+"."+dom, []string{dom}, on, role))
	}
	return out
}
