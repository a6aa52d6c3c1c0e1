package planner

import "math/bits"

// Matching a previous plan's names to this plan's, for 10⁶ names.
//
// A map from name to planned name is the obvious way, and at 10⁵ names it
// is fast: the map fits in the processor's cache. At 10⁶ it does not, and
// every insertion and lookup waits for memory several times (the map's
// slot, the key's bytes, the planned name's record), so the map alone
// costs more per name at 10⁶ than the whole plan does at 10⁵. Instead,
// both sides are hashed in one sequential pass each, radix sorted by 20
// bits of the hash, merged, and the candidate pairs checked by comparing
// the names, in parts of 2¹⁸ previous names, each in the order of the
// planned names: memory is read nearly in order except for one read of
// each previous name, within a part that stays in cache. The hash only
// narrows the search; names are always compared, so a collision costs a
// comparison, never a wrong match.

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

// sortHigh sorts a by the low width bits of the upper 32 bits of each
// element (LSD radix sort, stable), using tmp (len(tmp) >= len(a)). It
// makes an even number of passes, so the result is back in a, with digits
// of at most 10 bits: a pass scatters to at most 1,024 places, whose
// current cache lines and pages stay in the processor's caches. Measured
// on 10⁶ elements, two passes of 10 bits take 5 ms, of 11 bits 9 ms, of 16
// bits (65,536 places, nearly every write misses) more still.
func sortHigh(a, tmp []uint64, width int) {
	tmp = tmp[:len(a)]
	passes := 2 * max(1, (width+19)/20)
	digit := (width + passes - 1) / passes
	var count [1 << 10]int32
	for pass := range passes {
		shift := 32 + pass*digit
		// The last digit may be narrower.
		mask := uint64(1)<<max(0, min(digit, width-pass*digit)) - 1
		cnt := count[:mask+1]
		clear(cnt)
		for _, x := range a {
			cnt[x>>shift&mask]++
		}
		var sum int32
		for i, c := range cnt {
			cnt[i] = sum
			sum += c
		}
		for _, x := range a {
			d := x >> shift & mask
			tmp[cnt[d]] = x
			cnt[d]++
		}
		a, tmp = tmp, a
	}
}

// hashSortBits is how many bits of the name hashes the join sorts by: 2²⁰
// values, so that runs of equal values stay short for millions of names
// (the merge compares all pairs within a run), in two passes of 10-bit
// digits.
const hashSortBits = 20

// prevPartBits: the join checks the previous names in parts of 2¹⁸
// (262,144) names, whose names, copies of the string headers and entries
// of flat (some 13 MiB) stay in the processor's last-level cache. Tests
// check the join in parts of a few names through planner.partBits.
const prevPartBits = 18

// hashPairs returns the pairs of elements of pr and cr (hash << 32 |
// index) whose hashes are equal, as cr's index << 32 | pr's index: it
// sorts both by hashSortBits bits of the hash, merges them, and within
// each run of equal sorted bits pairs the elements whose whole hashes
// agree. tmp needs max(len(pr), len(cr)) elements; the pairs are
// written to it, unless there are more.
func hashPairs(pr, cr, tmp []uint64) []uint64 {
	sortHigh(pr, tmp, hashSortBits)
	sortHigh(cr, tmp, hashSortBits)
	const sortMask = 1<<hashSortBits - 1
	pairs := tmp[:0]
	for a, b := 0, 0; a < len(pr) && b < len(cr); {
		ha, hb := pr[a]>>32&sortMask, cr[b]>>32&sortMask
		switch {
		case ha < hb:
			a++
		case ha > hb:
			b++
		default:
			e := b
			for e < len(cr) && cr[e]>>32&sortMask == ha {
				e++
			}
			for ; a < len(pr) && pr[a]>>32&sortMask == ha; a++ {
				for k := b; k < e; k++ {
					if cr[k]>>32 == pr[a]>>32 {
						pairs = append(pairs, cr[k]<<32|pr[a]&0xffffffff)
					}
				}
			}
			b = e
		}
	}
	return pairs
}

// joinPrevious finds each previous certificate's names among the planned
// names. flat holds, certificate after certificate, one entry per previous
// name (ci -1 when it is not planned, and then its other fields
// meaningless); off[c]:off[c+1] are certificate c's. Its memory: flat and
// three arrays of 8 bytes a name.
func (p *planner) joinPrevious() (flat []prevName, off []int32) {
	flat, off, pr := p.previousHashes()
	cr := make([]uint64, len(p.cands))
	for ci := range p.cands {
		cr[ci] = uint64(strHash(p.cands[ci].name))<<32 | uint64(ci)
	}
	pairs := hashPairs(pr, cr, make([]uint64, max(len(pr), len(cr))))
	// pr and cr are free now: one is the pairs' sort's scratch space.
	tmp := pr
	if len(tmp) < len(pairs) {
		tmp = cr
	}
	if len(tmp) < len(pairs) {
		tmp = make([]uint64, len(pairs))
	}
	p.checkPairs(pairs, tmp, flat, off)
	return flat, off
}

// previousHashes lays out flat and off (see joinPrevious) and returns the
// previous names' hashes (hash << 32 | index in flat). Until checkPairs,
// an entry of flat holds the index of its certificate in krank (ci -1),
// for the check to find the name: a copy of the names would take 16 bytes
// a name more memory, and at 10⁶ names every megabyte the plan takes more
// costs time too (the system hands out fresh memory a page at a time).
func (p *planner) previousHashes() (flat []prevName, off []int32, pr []uint64) {
	certs := p.prev.Certificates
	off = make([]int32, len(certs)+1)
	m := 0
	for c := range certs {
		off[c] = int32(m)
		m += len(certs[c].Names)
	}
	off[len(certs)] = int32(m)
	flat = make([]prevName, m)
	pr = make([]uint64, m)
	for c := range certs {
		for j, n := range certs[c].Names {
			fi := int(off[c]) + j
			pr[fi] = uint64(strHash(n))<<32 | uint64(fi)
			if len(n) > 0 && n[0] == '*' {
				p.prevWild = true
			}
			flat[fi] = prevName{ci: -1, krank: int32(c)}
		}
	}
	return flat, off, pr
}

// checkPairs compares the names of each pair of a previous name and a
// planned name with equal hashes, and fills the previous name's entry of
// flat on a match.
//
// The check reads each planned name and, at random, its previous name and
// entry of flat. So that the random reads stay in the processor's cache at
// 10⁶ names, the pairs are checked in parts of 2^prevPartBits previous
// names (fbits bits of the previous index), each in the order of the
// planned names. The sort key keeps to the planned index's width (cbits),
// which two radix passes sort: the part takes the top fbits and the
// planned index, without its low fbits bits, the rest: the order within a
// part is by planned index to within 2^fbits names, which read memory as
// nearly in order. The low fbits bits of the planned index go beside the
// previous index (fiBits bits) in the low 32 bits.
func (p *planner) checkPairs(pairs, tmp []uint64, flat []prevName, off []int32) {
	certs := p.prev.Certificates
	cbits := bits.Len(uint(max(len(p.cands)-1, 1)))
	fiBits := bits.Len(uint(max(len(flat)-1, 1)))
	partBits := prevPartBits
	if p.partBits > 0 {
		partBits = p.partBits
	}
	fbits := max(0, fiBits-partBits)
	if fiBits+fbits > 32 || fbits > cbits {
		fbits = 0
	}
	for i, x := range pairs {
		ci, fi := x>>32, x&0xffffffff
		key := fi>>partBits<<(cbits-fbits) | ci>>fbits
		pairs[i] = key<<32 | (ci&(1<<fbits-1))<<fiBits | fi
	}
	sortHigh(pairs, tmp, cbits)
	small := len(p.groups) <= 64
	for _, x := range pairs {
		fi := int(x & (1<<fiBits - 1))
		ci := int(x>>32&(1<<(cbits-fbits)-1))<<fbits | int(uint32(x)>>fiBits)
		if flat[fi].ci >= 0 {
			continue // matched already: the planned names differ
		}
		c := &p.cands[ci]
		k := flat[fi].krank
		if c.name != certs[k].Names[fi-int(off[k])] {
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
}
