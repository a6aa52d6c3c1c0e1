package apply

// This file maps a certificate's wildcard names to the hosts that
// verification probes (issue 19): "*.d.test" is no name a client dials,
// and a probe with it as SNI proves nothing.

import (
	"slices"

	"github.com/certplan/certplan/names"
)

// verifyHosts are the names to probe on ip for a certificate that lists
// issued: its explicit names, and for each wildcard the hosts it covers
// (RFC 6125, names.Covers) that the inventory resolves to ip, or, without
// an inventory, that the plan's coverage rows saw on ip. A wildcard whose
// hosts neither knows is not probed.
func (r *runner) verifyHosts(issued []string, ip string) []string {
	var out []string
	for _, n := range issued {
		if !names.IsWildcard(n) {
			out = append(out, n)
			continue
		}
		for _, h := range r.knownHosts(ip) {
			if names.Covers(n, h) {
				out = append(out, h)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
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

// listsHost reports whether a planned certificate's names cover host.
func listsHost(planned []string, host string) bool {
	return slices.ContainsFunc(normNames(planned), func(n string) bool { return names.Covers(n, host) })
}
