package main

import (
	"fmt"
	"sort"

	"github.com/certplan/certplan/model"
)

// planInventory returns an inventory of n names over ips, as a shared host's
// would look: per client domain, mail.D (MX), autoconfig.D and
// autodiscover.D, all here and allowed by CAA, each domain on one IP. It is
// built directly, not looked up: the planner is measured alone.
func planInventory(n int, ips []string) *model.Inventory {
	inv := &model.Inventory{
		Header:       model.Header{Kind: model.KindInventory, Version: model.Version},
		CAIdentifier: "letsencrypt.org",
		ServerIPs:    append([]string(nil), ips...),
		Names:        make([]model.Name, 0, n),
	}
	roles := []struct{ label, role string }{{"mail", model.RoleMX}, {"autoconfig", model.RoleAutoconfig}, {"autodiscover", model.RoleAutodiscover}}
	for i := 0; len(inv.Names) < n; i++ {
		d := fmt.Sprintf("d%07d.test", i+1)
		dom := model.Domain{Domain: d}
		for _, r := range roles {
			if len(inv.Names) == n {
				break
			}
			name := r.label + "." + d
			dom.Names = append(dom.Names, name)
			inv.Names = append(inv.Names, model.Name{
				Name:      name,
				Roles:     []string{r.role},
				Domains:   []string{d},
				Addresses: []string{ips[i%len(ips)]},
				Here:      model.HereAll,
				CAAOK:     true,
			})
		}
		sort.Strings(dom.Names)
		inv.Domains = append(inv.Domains, dom)
	}
	sort.Slice(inv.Names, func(a, b int) bool { return inv.Names[a].Name < inv.Names[b].Name })
	inv.Stats = model.InventoryStats{Domains: len(inv.Domains), Names: len(inv.Names), NamesHere: len(inv.Names)}
	return inv
}
