package planner

// Matching a previous plan's names to this plan's, for 10⁶ names.
//
// A map from name to planned name is the obvious way, and at 10⁵ names it
// is fast: the map fits in the processor's cache. At 10⁶ it does not, and
// every insertion and lookup waits for memory several times (the map's
// slot, the key's bytes, the planned name's record), so the map alone
// costs more per name at 10⁶ than the whole plan does at 10⁵. Instead,
// both sides are hashed in one sequential pass each, radix sorted by hash,
// merged, and the candidate pairs checked by comparing the names in the
// order of the planned names: memory is read in order except for one read
// of each previous name. The hash only narrows the search; names are
// always compared, so a collision costs a comparison, never a wrong match.

// strHash is a 32-bit hash of s.
func strHash(s string) uint32 { return uint32(strHash64(s)) }

// strHash64 is a 64-bit hash of s (FNV-1a over 8-byte words, then
// MurmurHash3's finalizer), fixed so that the planner stays deterministic.
func strHash64(s string) uint64 {
	h := uint64(14695981039346656037)
	for len(s) >= 8 {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = (h ^ w) * 1099511628211
		h ^= h >> 29
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// sortHigh32 sorts a by the upper 32 bits of each element (LSD radix sort,
// two passes of 16 bits, stable), using tmp (len(tmp) >= len(a)).
func sortHigh32(a, tmp []uint64) {
	tmp = tmp[:len(a)]
	var count [1 << 16]int32
	for _, shift := range [2]uint{32, 48} {
		clear(count[:])
		for _, x := range a {
			count[x>>shift&0xffff]++
		}
		var sum int32
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, x := range a {
			d := x >> shift & 0xffff
			tmp[count[d]] = x
			count[d]++
		}
		a, tmp = tmp, a
	}
	// Two passes: the result is back in the caller's a.
}

// joinPrevious finds each previous certificate's names among the planned
// names. flat holds, certificate after certificate, one entry per previous
// name (ci -1 when it is not planned); off[c]:off[c+1] are certificate
// c's.
func (p *planner) joinPrevious() (flat []prevName, off []int32) {
	certs := p.prev.Certificates
	off = make([]int32, len(certs)+1)
	m := 0
	for c := range certs {
		off[c] = int32(m)
		m += len(certs[c].Names)
	}
	off[len(certs)] = int32(m)
	flat = make([]prevName, m)
	names := make([]string, 0, m)
	pr := make([]uint64, 0, m)
	for c := range certs {
		for _, n := range certs[c].Names {
			pr = append(pr, uint64(strHash(n))<<32|uint64(len(names)))
			names = append(names, n)
		}
	}
	cr := make([]uint64, len(p.cands))
	for ci := range p.cands {
		cr[ci] = uint64(strHash(p.cands[ci].name))<<32 | uint64(ci)
	}
	tmp := make([]uint64, max(m, len(cr)))
	sortHigh32(pr, tmp)
	sortHigh32(cr, tmp)
	// Candidate pairs, as planned index << 32 | previous index.
	pairs := make([]uint64, 0, m)
	for a, b := 0, 0; a < len(pr) && b < len(cr); {
		ha, hb := pr[a]>>32, cr[b]>>32
		switch {
		case ha < hb:
			a++
		case ha > hb:
			b++
		default:
			e := b
			for e < len(cr) && cr[e]>>32 == ha {
				e++
			}
			for ; a < len(pr) && pr[a]>>32 == ha; a++ {
				for k := b; k < e; k++ {
					pairs = append(pairs, cr[k]<<32|pr[a]&0xffffffff)
				}
			}
			b = e
		}
	}
	if len(tmp) < len(pairs) {
		tmp = make([]uint64, len(pairs))
	}
	sortHigh32(pairs, tmp)
	for i := range flat {
		flat[i].ci = -1
	}
	small := len(p.groups) <= 64
	for _, x := range pairs {
		ci, fi := int(x>>32), int(uint32(x))
		c := &p.cands[ci]
		if c.name != names[fi] {
			continue
		}
		pn := prevName{ci: int32(ci), krank: c.krank}
		if small {
			for _, i := range p.ipsOf(ci) {
				if g := p.ipGroup[i]; g >= 0 {
					pn.groups |= 1 << g
				}
			}
		}
		flat[fi] = pn
	}
	return flat, off
}
