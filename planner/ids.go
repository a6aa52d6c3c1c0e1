package planner

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/certplan/certplan/model"
)

// Certificate IDs. New default certificates are named "default-<first
// IP>", new SNI certificates "sni-<first client domain>"; an ID already
// used, in this plan or the previous one, gets a "-2", "-3", ... suffix.
// Matched certificates keep their previous ID even when their IPs change,
// and one whose name set did not change is "unchanged": its renewal stays
// inside the CA's rate-limit exemptions. An IP's default keeps the ID of
// the previous default served on it even when none of its names remain,
// unless another group's default continues that certificate.
//
// When a certificate continues several previous ones (two merged) or a
// previous one continues in several certificates (their names diverged),
// each previous ID goes to one certificate: first to one whose names are
// exactly the previous certificate's, then to the one sharing most names
// with it, then to the first (IP groups by first IP) and the lowest ID.
// The other certificates get new IDs; a previous ID left over is retired.

// assignIDs gives each certificate its ID. A certificate that continues a
// previous one keeps that ID (previous IDs are reserved); the others get a
// new one: "default-<first IP>" or "sni-<first client domain>".
//
// A certificate may continue several previous ones (two that merge) and a
// previous one may be continued by several (a merged default or SNI
// certificate seeds each of its groups, and their names now differ). Each
// previous ID then goes to one certificate and each certificate keeps at
// most one: first to a certificate whose names are exactly the previous
// one's (it stays "unchanged": no order), then to the one sharing most
// names with it, then to the first certificate (groups by first IP) and
// the lowest previous ID. A previous ID left over is retired; a
// certificate left without one is new.
func (p *planner) assignIDs() {
	contested := false
	claims := map[*model.PlannedCert]int{}
	for _, c := range p.certs {
		if c.prev != nil {
			claims[c.prev]++
			contested = contested || claims[c.prev] > 1 || len(c.alt) > 0
		}
	}
	if contested {
		p.resolvePrevious()
	}
	for _, c := range p.certs {
		switch {
		case c.prev != nil:
			c.id = c.prev.ID
		case c.def:
			c.id = p.newID("default-" + p.ips[c.ips[0]])
		default:
			c.id = p.newID("sni-" + c.key)
		}
	}
}

// resolvePrevious pairs certificates with previous ones, each at most once,
// by the rule in assignIDs.
func (p *planner) resolvePrevious() {
	type pair struct {
		k      int // index in p.certs
		pc     *model.PlannedCert
		same   bool
		common int
	}
	var pairs []pair
	mark := make([]int32, len(p.cands))
	for k, c := range p.certs {
		if c.prev == nil {
			continue
		}
		for _, ci := range c.names {
			mark[ci] = int32(k + 1)
		}
		for _, pc := range append([]*model.PlannedCert{c.prev}, c.alt...) {
			pns := p.prevCands[pc]
			n := 0
			for _, pn := range pns {
				if mark[pn.ci] == int32(k+1) {
					n++
				}
			}
			same := n == len(c.names) && len(pns) == n && len(pc.Names) == n
			pairs = append(pairs, pair{k, pc, same, n})
		}
		c.prev, c.alt = nil, nil
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if a.same != b.same {
			if a.same {
				return -1
			}
			return 1
		}
		return cmp.Or(b.common-a.common, a.k-b.k, strings.Compare(a.pc.ID, b.pc.ID))
	})
	taken := map[*model.PlannedCert]bool{}
	for _, pr := range pairs {
		if c := p.certs[pr.k]; c.prev == nil && !taken[pr.pc] {
			c.prev = pr.pc
			taken[pr.pc] = true
		}
	}
}

func (p *planner) newID(base string) string {
	id := base
	for k := 2; p.used[id]; k++ {
		id = fmt.Sprintf("%s-%d", base, k)
	}
	p.used[id] = true
	return id
}
