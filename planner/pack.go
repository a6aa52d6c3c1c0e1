package planner

// Packing SNI certificates. A group's names beyond its default go to SNI
// certificates served on the same IPs, packed so that one client domain's
// names stay together: onto the certificate that already holds the domain
// when it has room, else best fit (the certificate with the least room
// that still fits), else a new one. A domain with more names than a
// certificate holds fills new certificates first. A name used by several
// client domains is grouped with the first of them in sort order.

// packer places client domains' names on one group's SNI certificates,
// by the rule above. Certificates with room are kept in buckets by the
// room they have left, so best fit takes the first bucket from the run's
// size up.
type packer struct {
	p       *planner
	limit   int
	ips     []int
	certs   []*bcert
	byKey   []*bcert   // by key rank: the certificate holding that client domain
	buckets [][]*bcert // by room left; lazily cleaned
}

func (k *packer) room(c *bcert) int { return k.limit - len(c.names) }

func (k *packer) keep(c *bcert) {
	k.certs = append(k.certs, c)
	if len(c.kr) == len(c.names) {
		for _, kr := range c.kr {
			if k.byKey[kr] == nil {
				k.byKey[kr] = c
			}
		}
	} else {
		for _, ci := range c.names {
			if kr := k.p.cands[ci].krank; k.byKey[kr] == nil {
				k.byKey[kr] = c
			}
		}
	}
	c.kr = nil
	if c.key == "" && len(c.names) > 0 {
		c.key = k.p.cands[c.names[0]].key
	}
	if r := k.room(c); r > 0 && !c.shared {
		k.buckets[r] = append(k.buckets[r], c)
	}
}

func (k *packer) add(c *bcert, kr int32, run []int) {
	c.names = append(c.names, run...)
	k.byKey[kr] = c
	if r := k.room(c); r > 0 && !c.shared {
		k.buckets[r] = append(k.buckets[r], c)
	}
}

func (k *packer) newCert(kr int32, run []int) {
	c := &bcert{ips: k.ips, key: k.p.cands[run[0]].key, names: make([]int, 0, k.limit)}
	k.certs = append(k.certs, c)
	k.add(c, kr, run)
}

// place packs run, the names of the client domain of key rank kr.
func (k *packer) place(kr int32, run []int) {
	for len(run) > k.limit {
		k.newCert(kr, run[:k.limit:k.limit])
		run = run[k.limit:]
	}
	s := len(run)
	if s == 0 {
		return
	}
	if c := k.byKey[kr]; c != nil && k.room(c) >= s {
		k.add(c, kr, run)
		return
	}
	for r := s; r <= k.limit; r++ {
		b := k.buckets[r]
		for len(b) > 0 {
			c := b[len(b)-1]
			b = b[:len(b)-1]
			if k.room(c) == r {
				k.buckets[r] = b
				k.add(c, kr, run)
				return
			}
		}
		k.buckets[r] = b
	}
	k.newCert(kr, run)
}
