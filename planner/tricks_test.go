package planner

import (
	"fmt"
	"slices"
	"testing"

	"golang.org/x/net/publicsuffix"

	"github.com/certplan/certplan/model"
)

// The plain versions of the planner's performance tricks, kept beside the
// benchmarks that show what each trick saves: a trick stays only while
// its benchmark shows it pays (bench/README.md, "planner").

// rankKeysPlain is rankKeys the obvious way: a map from key to rank and a
// sort of the distinct keys.
func (p *planner) rankKeysPlain() []string {
	rank := map[string]int32{}
	var keys []string
	for ci := range p.cands {
		k := p.cands[ci].key
		if _, ok := rank[k]; !ok {
			rank[k] = 0
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for i, k := range keys {
		rank[k] = int32(i)
	}
	for ci := range p.cands {
		p.cands[ci].krank = rank[p.cands[ci].key]
	}
	return keys
}

// registeredDomainsPlain is registeredDomains the obvious way: each
// name's registered domain (its client domain's, computed once per client
// domain), then a map and a sort of the distinct ones.
func (p *planner) registeredDomainsPlain() (regID []int32, doms []string) {
	regs := make([]string, len(p.cands))
	keyReg := make([]string, p.nkeys) // "" while unknown or a public suffix
	known := make([]bool, p.nkeys)
	for ci := range p.cands {
		c := &p.cands[ci]
		if underKey(c) {
			if !known[c.krank] {
				known[c.krank] = true
				if d, err := publicsuffix.EffectiveTLDPlusOne(c.key); err == nil {
					keyReg[c.krank] = d
				}
			}
			if d := keyReg[c.krank]; d != "" {
				regs[ci] = d
				continue
			}
		}
		regs[ci] = RegisteredDomain(c.name)
	}
	ids := map[string]int32{}
	for _, r := range regs {
		if _, ok := ids[r]; !ok {
			ids[r] = 0
			doms = append(doms, r)
		}
	}
	slices.Sort(doms)
	for i, d := range doms {
		ids[d] = int32(i)
	}
	regID = make([]int32, len(p.cands))
	for ci, r := range regs {
		regID[ci] = ids[r]
	}
	return regID, doms
}

// selected is a planner that has selected the names of inv.
func selected(t testing.TB, inv *model.Inventory) *planner {
	p := &planner{inv: inv, used: map[string]bool{}, exclIdx: map[string]int{}}
	if err := p.setup(); err != nil {
		t.Fatal(err)
	}
	p.selectNames()
	return p
}

func trickInventory(t testing.TB, n int) *model.Inventory {
	inv := genInventory(1, n, fourIPs)
	// Names under other names' domains and shared hosts, so that the
	// tricks' "odd" paths run too.
	inv.Names = append(inv.Names,
		nm("mx.shared.example", []string{"d000001.test", "d000002.test"}, fourIPs, model.RoleMX),
		nm("a.b.d000003.test", []string{"d000003.test"}, fourIPs),
		nm("mail.x.github.io", []string{"x.github.io"}, fourIPs),
		nm("mail.github.io", []string{"github.io"}, fourIPs),
	)
	return decoded(t, inventory(fourIPs, inv.Names...))
}

func TestTricksMatchPlain(t *testing.T) {
	p := selected(t, trickInventory(t, 20000))
	want := slices.Clone(p.cands)
	keys := p.rankKeysPlain()
	if !slices.Equal(keys, p.keyByRank) || !slices.Equal(p.cands, want) {
		t.Fatal("rankKeys and rankKeysPlain differ")
	}
	id, doms := p.registeredDomains()
	pid, pdoms := p.registeredDomainsPlain()
	if !slices.Equal(id, pid) || !slices.Equal(doms, pdoms) {
		t.Fatalf("registeredDomains and registeredDomainsPlain differ: %d and %d domains", len(doms), len(pdoms))
	}
}

// BenchmarkTricks times each trick and its plain version on the same
// planner, at 100,000 and 1,000,000 names, in alternation.
func BenchmarkTricks(b *testing.B) {
	for _, n := range []int{100000, 1000000} {
		p := selected(b, trickInventory(b, n))
		for _, tc := range []struct {
			name string
			f    func()
		}{
			{"rankKeys", func() { p.rankKeys() }},
			{"rankKeysPlain", func() { p.rankKeysPlain() }},
			{"registeredDomains", func() { p.registeredDomains() }},
			{"registeredDomainsPlain", func() { p.registeredDomainsPlain() }},
		} {
			b.Run(fmt.Sprintf("%s/names=%d", tc.name, n), func(b *testing.B) {
				for b.Loop() {
					tc.f()
				}
			})
		}
	}
}
