package apply

// This file maps a certificate's wildcard names to the hosts that
// verification probes (issue 19): "*.d.test" is no name a client dials,
// and a probe with it as SNI proves nothing.

import (
	"slices"

	"github.com/certplan/certplan/names"
)

// verifyHosts are the names to probe on ip for a certificate that lists
// issued: dialNames, and for a wildcard whose replaced names the plan
// does not list (a plan written by hand, or by a certplan before
// Plan.WildcardNames) the hosts it covers (names.Covers) that the
// inventory resolves to ip, or, without an inventory, that the plan's
// coverage rows saw on ip. A wildcard whose hosts none of these knows is
// not probed.
func (r *runner) verifyHosts(issued []string, ip string) []string {
	out := dialNames(r.o.Plan, issued)
	for _, n := range issued {
		if !names.IsWildcard(n) || len(r.o.Plan.DialNames(n)) > 0 {
			continue
		}
		for _, h := range r.knownHosts(ip) {
			if names.Covers(n, h) && !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	return out
}

// knownHosts are the names known to be served on ip: the inventory's
// that resolve there, else the plan's coverage rows for ip.
func (r *runner) knownHosts(ip string) []string {
	var out []string
	if inv := r.o.Inventory; inv != nil {
		for _, n := range inv.Names {
			if slices.Contains(n.Addresses, ip) {
				out = append(out, n.Name)
			}
		}
		return out
	}
	for _, c := range r.o.Plan.Coverage {
		if c.IP == ip {
			out = append(out, c.Name)
		}
	}
	return out
}
