package planner

// Shared helpers over sets of planned names. Within one plan a planned
// name is its cand index (p.cands is sorted by name), so a set of names is
// a sorted []int of cand indices: comparing and hashing integers, not
// strings.

// nameSetHash is the hash of a sorted set of cand indices (FNV-1a over
// one word per index). It only narrows a search: sets with equal hashes
// are compared before they count as one (see [setIndex]).
func nameSetHash(cs []int) uint64 {
	h := uint64(14695981039346656037)
	for _, ci := range cs {
		h = (h ^ uint64(ci)) * 1099511628211
	}
	return h
}

// setIndex finds a name set among those seen before: it maps a set's
// [nameSetHash] to the positions (in the caller's list) of the sets with
// that hash.
type setIndex map[uint64][]int

// find returns the position of a set seen before with hash h for which
// same reports true.
func (x setIndex) find(h uint64, same func(pos int) bool) (int, bool) {
	for _, k := range x[h] {
		if same(k) {
			return k, true
		}
	}
	return 0, false
}

// add records the set with hash h at position pos.
func (x setIndex) add(h uint64, pos int) { x[h] = append(x[h], pos) }

// bitset is a set of small integers (cand indices).
type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }
