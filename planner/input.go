package planner

import "github.com/certplan/certplan/model"

// What Plan reads of an inventory.
//
// A caller that holds an inventory only to plan it (certplan plan
// --inventory, whose inventory of 100,000 domains is most of its memory)
// can drop the rest as each name and domain is read ([model.ReadInventory]
// with [SlimName] and [SlimDomain]); the plan of the slimmed inventory is
// byte for byte the plan of the whole one (TestSlimInput). What goes:
//
//   - a domain's Names, unless it has an MTA-STS policy: the planner
//     takes names from the inventory's names, each with its hosted
//     domains, and only stsHosts looks up a domain's names (those its
//     policy may list);
//   - a source's Record, unless it is "exists": [WildcardOnly] asks only
//     whether every source of a name is a conventional name found by
//     lookup, and capExempt only the source's domain and role;
//   - the CAA record set of a name CAA allows: caaReason quotes it only
//     to explain an exclusion.
//
// A planner rule that comes to read one of these must drop it from this
// list; TestSlimInput plans inventories that have each of them.

// SlimName drops from n what Plan does not read.
func SlimName(n *model.Name) {
	for i := range n.Sources {
		if s := &n.Sources[i]; s.Record != "exists" {
			s.Record = ""
		}
	}
	if n.CAAOK && n.CAA.Error == "" {
		n.CAA.Records = nil
	}
}

// SlimDomain drops from d what Plan does not read.
func SlimDomain(d *model.Domain) {
	if d.MTASTS == nil || d.MTASTS.Policy == nil {
		d.Names = nil
	}
}
