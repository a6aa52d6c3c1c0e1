package planner

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/certplan/certplan/model"
)

// The budget: orders and certificates per registered domain (eTLD+1 by the
// public suffix list, [RegisteredDomain]), checked against the CA's rate
// limits ([RateLimits], Let's Encrypt's by default): certificates per
// registered domain per week, new orders per 3 hours, identical name sets
// per week. An "unchanged" certificate is not ordered. Going over a limit
// is a [model.WarnRateLimit] warning, not an error.

// budget counts orders and certificates per registered domain, and warns
// against the CA's rate limits.
func (p *planner) budget(out *model.Plan) {
	type count struct{ certs, orders, stamp int32 }
	regID, doms := p.registeredDomains()
	per := make([]count, len(doms))
	type dup struct {
		n     int
		id    string
		names []int
	}
	var dups []dup // ordered certificates by name set
	sets := setIndex{}
	for k, c := range p.certs {
		ordered := c.change != "unchanged"
		if ordered {
			out.Budget.Orders++
			h := nameSetHash(c.names)
			d, ok := sets.find(h, func(d int) bool { return slices.Equal(dups[d].names, c.names) })
			if !ok {
				d = len(dups)
				sets.add(h, d)
				dups = append(dups, dup{id: c.id, names: c.names})
			}
			dups[d].n++
		}
		stamp := int32(k + 1)
		for _, ci := range c.names {
			x := &per[regID[ci]]
			if x.stamp == stamp {
				continue
			}
			x.stamp = stamp
			x.certs++
			if ordered {
				x.orders++
			}
		}
	}
	out.Budget.PerRegisteredDomain = make([]model.DomainCount, len(per))
	for id, x := range per {
		out.Budget.PerRegisteredDomain[id] = model.DomainCount{Domain: doms[id], Count: int(x.certs), Orders: int(x.orders)}
	}
	for _, dc := range out.Budget.PerRegisteredDomain {
		if dc.Orders > p.limits.CertsPerRegisteredDomain {
			p.warnRate(out, dc.Domain, "%d certificates to order name %s, over the CA's limit of %d per registered domain per week: order in batches over several weeks, or renew with ARI (replaces) where a certificate already exists", dc.Orders, dc.Domain, p.limits.CertsPerRegisteredDomain)
		}
	}
	if out.Budget.Orders > p.limits.NewOrders {
		p.warnRate(out, "", "%d orders, over the CA's limit of %d new orders per 3 hours: issue in batches", out.Budget.Orders, p.limits.NewOrders)
	}
	for _, d := range dups {
		if d.n > p.limits.DuplicateCerts {
			p.warnRate(out, "", "%d certificates to order have the name set of %s, over the CA's limit of %d identical name sets per week", d.n, d.id, p.limits.DuplicateCerts)
		}
	}
}

// underKey reports whether a cand's name is below its client domain.
func underKey(c *cand) bool {
	n, k := c.name, c.key
	return len(n) > len(k)+1 && n[len(n)-len(k)-1] == '.' && n[len(n)-len(k):] == k
}

// registeredDomains returns each planned name's registered domain, as an
// index into doms, which is sorted and without duplicates. Names below
// their client domain (mail.example.com for example.com) share the client
// domain's, computed once per client domain. The ids come in string order
// without a map or a sort of every domain: client domains are ranked in
// string order already, and those that are their own registered domain
// (the usual hosted domain) need only be merged with the few others. At
// 10⁶ names a map and a sort of strings cost more per name than at 10⁵,
// their memory being out of cache. BenchmarkTricks (tricks_test.go, with
// the plain version) measured it 7 times faster at 10⁶ names: median
// 0.66 s against 4.5 s, 75 ms against 156 ms at 10⁵, on a heavily loaded
// 2-core machine.
func (p *planner) registeredDomains() (regID []int32, doms []string) {
	r := p.regRefs()
	keyID, doms := r.number(p.keyByRank)
	regID = make([]int32, len(p.cands))
	for ci, x := range r.ref {
		if x < 0 {
			regID[ci] = keyID[-x-1]
		} else {
			regID[ci] = r.odd[x].id
		}
	}
	return regID, doms
}

// regRefs says where each planned name's registered domain is found: a
// client domain that is its own registered domain (used marks it), or an
// "odd" one, computed: a proper suffix of the client domain (once per
// client domain), or the name's own.
type regRefs struct {
	used []bool   // by key rank: the key is the registered domain of a name
	odd  []oddReg // the other registered domains, with duplicates
	ref  []int32  // by cand: ≥ 0, an index in odd; < 0, -(key rank+1)
}

type oddReg struct {
	reg string
	id  int32
}

func (p *planner) regRefs() regRefs {
	const (
		unknown = iota
		self    // the client domain is its own registered domain
		suffix  // its registered domain is a proper suffix of it
		public  // it is a public suffix: each name has its own
	)
	state := make([]uint8, p.nkeys)
	keyOdd := make([]int32, p.nkeys) // suffix: index in odd
	r := regRefs{used: make([]bool, p.nkeys), ref: make([]int32, len(p.cands))}
	for ci := range p.cands {
		c := &p.cands[ci]
		if underKey(c) {
			kr := c.krank
			if state[kr] == unknown {
				d, err := publicsuffix.EffectiveTLDPlusOne(c.key)
				switch {
				case err != nil:
					state[kr] = public
				case d == c.key:
					state[kr] = self
				default:
					state[kr] = suffix
					keyOdd[kr] = int32(len(r.odd))
					r.odd = append(r.odd, oddReg{reg: d})
				}
			}
			switch state[kr] {
			case self:
				r.used[kr] = true
				r.ref[ci] = -(kr + 1)
				continue
			case suffix:
				r.ref[ci] = keyOdd[kr]
				continue
			}
		}
		r.ref[ci] = int32(len(r.odd))
		r.odd = append(r.odd, oddReg{reg: RegisteredDomain(c.name)})
	}
	return r
}

// number numbers the registered domains in string order, merging the used
// client domains (keys, in order by rank) with the sorted odd ones; it
// sets the odd ones' ids and returns the keys' ids by rank and the domains.
func (r regRefs) number(keys []string) (keyID []int32, doms []string) {
	ord := make([]int32, len(r.odd))
	for i := range ord {
		ord[i] = int32(i)
	}
	slices.SortFunc(ord, func(a, b int32) int { return strings.Compare(r.odd[a].reg, r.odd[b].reg) })
	keyID = make([]int32, len(keys))
	id := int32(-1)
	last, lastOdd := "", false
	for k, j := 0, 0; ; {
		for k < len(keys) && !r.used[k] {
			k++
		}
		hasK, hasO := k < len(keys), j < len(ord)
		if !hasK && !hasO {
			break
		}
		if hasK && (!hasO || keys[k] <= r.odd[ord[j]].reg) {
			// Two client domains differ, so only an odd one can equal it.
			if s := keys[k]; !lastOdd || s != last {
				id++
				doms = append(doms, s)
				last = s
			}
			keyID[k] = id
			lastOdd = false
			k++
			continue
		}
		e := &r.odd[ord[j]]
		if id < 0 || e.reg != last {
			id++
			doms = append(doms, e.reg)
			last = e.reg
		}
		e.id = id
		lastOdd = true
		j++
	}
	return keyID, doms
}

func (p *planner) warnRate(out *model.Plan, name, format string, args ...any) {
	out.Warnings = append(out.Warnings, model.Warning{Code: model.WarnRateLimit, Name: name, Message: fmt.Sprintf(format, args...)})
}
