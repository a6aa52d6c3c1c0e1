package planner

import (
	"slices"
)

// Merging identical certificates. Certificates whose names are identical
// once trimmed (two IP groups with the same highest-priority names, more
// than a certificate holds; or one client domain filling an SNI
// certificate on two groups' IPs) would be identical orders, counted twice
// against the CA's duplicate-certificate limit: they are merged into one,
// served on the union of their IPs. Only certificates of the same kind
// merge: a default and an SNI certificate with the same names stay two,
// since Default holds for all of a certificate's IPs. Each IP group keeps
// its own sni_only names, over-limit warning and coverage notes.

// merge folds the certificates that would be identical orders into one.
// Groups hold different name sets, but trimming each to the limit can
// leave two groups' defaults with the same names (the same highest-priority
// names, more than a certificate holds), and a client domain on several
// groups' IPs can fill identical SNI certificates. Two orders for one
// identifier set cost an order twice and count twice against the CA's
// limit on duplicate certificates (Let's Encrypt: 5 per week), so
// certificates with the same names and the same Default flag become one,
// served on the union of their IPs, in the place of the first (groups by
// first IP). A default and an SNI certificate with the same names stay two:
// Default holds for all of a certificate's IPs. Everything else that
// deploys a certificate (key type, hooks) is the same for all of a plan's
// certificates. Each group keeps its own name set, default marks and
// overflow, so SNI-only names, over-limit warnings and coverage notes stay
// per IP. A certificate without names is dropped, not merged.
func (p *planner) merge() {
	sets := setIndex{} // positions in out
	out := p.certs[:0]
	into := map[*bcert]*bcert{}
	for _, c := range p.certs {
		if len(c.names) == 0 {
			// Nothing to order, nothing to serve: never planned. build
			// gives every group's default names (refillDefault) and makes
			// no SNI certificate without them; this only keeps an empty
			// one out of the plan should that ever change.
			continue
		}
		h := nameSetHash(c.names)
		k, ok := sets.find(h, func(k int) bool { return out[k].def == c.def && slices.Equal(out[k].names, c.names) })
		if !ok {
			sets.add(h, len(out))
			out = append(out, c)
			continue
		}
		rep := out[k]
		// Groups share no IP: the union is both lists, sorted.
		rep.ips = append(slices.Clip(rep.ips), c.ips...)
		slices.Sort(rep.ips)
		if c.prev != nil && c.prev != rep.prev && !slices.Contains(rep.alt, c.prev) {
			if rep.prev == nil {
				rep.prev = c.prev
			} else {
				rep.alt = append(rep.alt, c.prev)
			}
		}
		into[c] = rep
	}
	clear(p.certs[len(out):])
	p.certs = out
	if len(into) == 0 {
		return
	}
	for _, grp := range p.groups {
		if r := into[grp.def]; r != nil {
			grp.def = r
		}
		for k, c := range grp.sni {
			if r := into[c]; r != nil {
				grp.sni[k] = r
			}
		}
	}
}
