package planner

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/certplan/certplan/model"
)

// dropNames returns inv without the names for which drop is true.
func dropNames(inv *model.Inventory, drop func(model.Name) bool) *model.Inventory {
	inv.Names = slices.DeleteFunc(inv.Names, drop)
	return inv
}

// TestDefaultEmptied: every name of an IP's default certificate goes away
// while its SNI certificates still hold names. The IP still gets a default
// certificate, with names: a client without SNI gets it.
func TestDefaultEmptied(t *testing.T) {
	pol := Policy{MaxNames: 4}
	prev := mustPlan(t, overLimitInventory(), nil, pol, nil)
	// The default held mx.hoster.test and smtp.{a,b,c}.test.
	onDefault := func(n model.Name) bool { return n.Name == "mx.hoster.test" || n.HasRole(model.RoleSMTP) }
	inv := dropNames(overLimitInventory(), onDefault)
	p := mustPlan(t, inv, nil, pol, prev)
	for _, c := range p.Certificates {
		if len(c.Names) == 0 {
			t.Fatalf("%s has no names: %+v", c.ID, p.Certificates)
		}
	}
	checkInvariants(t, inv, p, 4)
	def := certByID(p, "default-127.0.0.2")
	if def == nil || !def.Default {
		t.Fatalf("the previous default's ID is gone: %+v (retired %v)", p.Certificates, p.Retired)
	}
	// The IP's highest-priority names, IMAP and mail names (one tier),
	// refilled fairly: every client domain's first before any one's second.
	if want := []string{"imap.a.test", "imap.b.test", "imap.c.test", "mail.a.test"}; !slices.Equal(def.Names, want) || def.Change != "changed" {
		t.Errorf("default: %+v, want names %v, changed", def, want)
	}
	if want := []string{"autoconfig.c.test", "mail.c.test"}; !slices.Equal(certByID(p, "sni-c.test").Names, want) {
		t.Errorf("sni-c.test: %+v", certByID(p, "sni-c.test"))
	}
	if len(p.Retired) != 0 {
		t.Errorf("retired %v", p.Retired)
	}
	// The next run changes nothing.
	again := mustPlan(t, inv, nil, pol, p)
	if ids := changed(again); len(ids) != 0 || again.ID != p.ID {
		t.Errorf("next run changed %v", ids)
	}
}

// TestDefaultEmptiedNewGroup: an IP whose names were all on an SNI
// certificate of another IP (a client domain moved to a new IP) has no
// previous default; its new default takes the names and the SNI
// certificate, left empty, is retired.
func TestDefaultEmptiedNewGroup(t *testing.T) {
	pol := Policy{MaxNames: 4}
	prev := mustPlan(t, overLimitInventory(), nil, pol, nil)
	inv := overLimitInventory()
	inv.ServerIPs = twoIPs
	for i := range inv.Names {
		if n := &inv.Names[i]; slices.Equal(n.Domains, []string{"a.test"}) && n.Name != "smtp.a.test" {
			n.Addresses = []string{"127.0.0.3"}
		}
	}
	p := mustPlan(t, inv, nil, Policy{MaxNames: 4, ServerIPs: twoIPs}, prev)
	checkInvariants(t, inv, p, 4)
	def := certByID(p, "default-127.0.0.3")
	if want := []string{"autoconfig.a.test", "imap.a.test", "mail.a.test"}; def == nil || !def.Default || !slices.Equal(def.Names, want) || def.Change != "new" {
		t.Fatalf("default of 127.0.0.3: %+v, want new with %v; plan %+v", def, want, p.Certificates)
	}
	if !slices.Equal(p.Retired, []string{"sni-a.test"}) {
		t.Errorf("retired %v, want [sni-a.test]", p.Retired)
	}
	if c := certByID(p, "default-127.0.0.2"); c == nil || c.Change != "unchanged" {
		t.Errorf("default of 127.0.0.2: %+v", c)
	}
}

// TestDefaultKeepsIDAllNamesNew: every name of an IP is new; the IP's
// default keeps its ID (changed), rather than a new one beside a retired
// one.
func TestDefaultKeepsIDAllNamesNew(t *testing.T) {
	ip := []string{"127.0.0.2"}
	pol := Policy{MaxNames: 4}
	prev := mustPlan(t, inventory(ip, nm("mail.a.test", []string{"a.test"}, ip, model.RoleMail)), nil, pol, nil)
	inv := inventory(ip, nm("mail.b.test", []string{"b.test"}, ip, model.RoleMail), nm("smtp.b.test", []string{"b.test"}, ip, model.RoleSMTP))
	p := mustPlan(t, inv, nil, pol, prev)
	checkInvariants(t, inv, p, 4)
	c := certByID(p, "default-127.0.0.2")
	if len(p.Certificates) != 1 || c == nil || c.Change != "changed" || !slices.Equal(c.Removed, []string{"mail.a.test"}) || len(p.Retired) != 0 {
		t.Errorf("got %+v, retired %v; want default-127.0.0.2 changed", p.Certificates, p.Retired)
	}
}

// TestIdleIPNoDefault: an IP that no planned name resolves to any more gets
// no certificate at all (not one without names), and the plan says which
// previous default no longer covers it.
func TestIdleIPNoDefault(t *testing.T) {
	pol := Policy{MaxNames: 4, ServerIPs: twoIPs}
	inv := overLimitInventory()
	inv.ServerIPs = twoIPs
	inv.Names = append(inv.Names, nm("mail.z.test", []string{"z.test"}, ipB, model.RoleMail))
	prev := mustPlan(t, inv, nil, pol, nil)
	if certByID(prev, "default-127.0.0.3") == nil {
		t.Fatalf("no default for 127.0.0.3: %+v", prev.Certificates)
	}
	inv = dropNames(inv, func(n model.Name) bool { return n.Name == "mail.z.test" })
	p := mustPlan(t, inv, nil, pol, prev)
	checkInvariants(t, inv, p, 4)
	for _, c := range p.Certificates {
		if slices.Contains(c.IPs, "127.0.0.3") {
			t.Errorf("%s is planned on the idle IP: %+v", c.ID, c)
		}
	}
	if !slices.Equal(p.Retired, []string{"default-127.0.0.3"}) {
		t.Errorf("retired %v", p.Retired)
	}
	var msg string
	for _, w := range p.Warnings {
		if w.Code == model.WarnIdleIP {
			msg = w.Message
		}
	}
	if !strings.Contains(msg, "127.0.0.3") || !strings.Contains(msg, "no default certificate is planned") || !strings.Contains(msg, "default-127.0.0.3") {
		t.Errorf("idle-IP warning %q", msg)
	}
}

// TestDefaultEmptiedMerged: two IPs' defaults were one certificate (the
// same names once trimmed); those names go away on both. Each IP gets a
// default with its own highest-priority names, and one of them keeps the
// previous ID.
func TestDefaultEmptiedMerged(t *testing.T) {
	pol := Policy{MaxNames: 4}
	prev := mustPlan(t, trimmedAlikeInventory(), nil, pol, nil)
	if c := certByID(prev, "default-127.0.0.2"); c == nil || !slices.Equal(c.IPs, twoIPs) {
		t.Fatalf("previous default not merged: %+v", prev.Certificates)
	}
	inv := dropNames(trimmedAlikeInventory(), func(n model.Name) bool { return n.HasRole(model.RoleMX) })
	p := mustPlan(t, inv, nil, pol, prev)
	checkInvariants(t, inv, p, 4)
	kept := 0
	for _, c := range p.Certificates {
		if c.Default && c.ID == "default-127.0.0.2" {
			kept++
		}
	}
	if kept != 1 || slices.Contains(p.Retired, "default-127.0.0.2") {
		t.Errorf("previous default's ID: kept by %d certificates, retired %v; plan %+v", kept, p.Retired, p.Certificates)
	}
	again := mustPlan(t, inv, nil, pol, p)
	if ids := changed(again); len(ids) != 0 || again.ID != p.ID {
		t.Errorf("next run changed %v", ids)
	}
}

// TestNoEmptyCertificateProperty runs chains of plans, each with the one
// before as the previous plan, over inventories mutated at random in the
// ways that empty a certificate: every name of an IP's default gone, every
// name of an IP gone, client domains moved to another IP or dropped, new
// ones added. Every plan must hold no certificate without names, give
// every IP a planned name resolves to one default certificate, and be
// planned again without a change.
func TestNoEmptyCertificateProperty(t *testing.T) {
	for _, c := range []struct {
		n, limit, seeds int
		ips             []string
	}{{40, 4, 20, twoIPs}, {120, 6, 15, fourIPs}, {600, 10, 8, fourIPs}, {3000, 25, 3, fourIPs}} {
		t.Run(fmt.Sprintf("%d names on %d IPs, limit %d", c.n, len(c.ips), c.limit), func(t *testing.T) {
			pol := Policy{MaxNames: c.limit}
			for seed := range uint64(c.seeds) {
				r := rand.New(rand.NewPCG(seed, 13))
				inv := genInventory(seed+100, c.n, c.ips)
				prev := mustPlan(t, inv, nil, pol, nil)
				checkInvariants(t, inv, prev, c.limit)
				for step := range 6 {
					op := mutate(r, inv, prev, c.ips, step)
					p := mustPlan(t, inv, nil, pol, prev)
					t.Run(fmt.Sprintf("seed %d step %d %s", seed, step, op), func(t *testing.T) {
						checkInvariants(t, inv, p, c.limit)
						checkIDs(t, p)
						again := mustPlan(t, inv, nil, pol, p)
						if ids := changed(again); len(ids) != 0 || len(again.Retired) != 0 || again.ID != p.ID {
							t.Fatalf("planned again: changed %v, retired %v", ids, again.Retired)
						}
					})
					if t.Failed() {
						return
					}
					prev = p
				}
			}
		})
	}
}

// mutate changes inv at random and says how.
func mutate(r *rand.Rand, inv *model.Inventory, prev *model.Plan, ips []string, step int) string {
	ip := ips[r.IntN(len(ips))]
	switch op := (step + r.IntN(2)) % 5; op {
	case 0, 1: // every name on ip's default goes, or one in two of them
		gone := map[string]bool{}
		for _, c := range prev.Certificates {
			if c.Default && slices.Contains(c.IPs, ip) {
				for _, n := range c.Names {
					gone[n] = op == 0 || r.IntN(2) == 0
				}
			}
		}
		dropNames(inv, func(n model.Name) bool { return gone[n.Name] })
		return fmt.Sprintf("default names of %s gone (op %d)", ip, op)
	case 2: // a few client domains move to another IP
		moved := map[string]bool{}
		for range 1 + r.IntN(4) {
			moved[inv.Names[r.IntN(len(inv.Names))].Domains[0]] = true
		}
		for i := range inv.Names {
			if moved[inv.Names[i].Domains[0]] {
				inv.Names[i].Addresses = []string{ip}
			}
		}
		return fmt.Sprintf("%d domains moved to %s", len(moved), ip)
	case 3: // every name of ip goes (it is left idle), and a new domain comes
		dropNames(inv, func(n model.Name) bool { return slices.Contains(n.Addresses, ip) })
		inv.Names = append(inv.Names, genDomain(r, fmt.Sprintf("new%d.test", r.IntN(1000)), ips)...)
		slices.SortFunc(inv.Names, func(a, b model.Name) int { return strings.Compare(a.Name, b.Name) })
		inv.Names = slices.CompactFunc(inv.Names, func(a, b model.Name) bool { return a.Name == b.Name })
		return fmt.Sprintf("%s idle, a domain added", ip)
	default: // a few new domains
		for range 1 + r.IntN(3) {
			inv.Names = append(inv.Names, genDomain(r, fmt.Sprintf("new%d.test", r.IntN(1000)), ips)...)
		}
		slices.SortFunc(inv.Names, func(a, b model.Name) int { return strings.Compare(a.Name, b.Name) })
		inv.Names = slices.CompactFunc(inv.Names, func(a, b model.Name) bool { return a.Name == b.Name })
		return "domains added"
	}
}

// checkIDs asserts that a plan's IDs are distinct and none is also retired.
func checkIDs(t *testing.T, p *model.Plan) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range p.Certificates {
		if seen[c.ID] {
			t.Fatalf("ID %s twice", c.ID)
		}
		seen[c.ID] = true
	}
	for _, id := range p.Retired {
		if seen[id] {
			t.Fatalf("%s planned and retired", id)
		}
	}
}
