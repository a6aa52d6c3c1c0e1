package planner

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/certplan/certplan/model"
)

func TestSortHigh(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, width := range []int{1, 5, 17, 20, 22, 23, 32} {
		a := make([]uint64, 10000)
		for i := range a {
			a[i] = r.Uint64()
		}
		key := func(x uint64) int { return int(x >> 32 & (1<<width - 1)) }
		want := slices.Clone(a)
		slices.SortStableFunc(want, func(x, y uint64) int { return key(x) - key(y) })
		sortHigh(a, make([]uint64, len(a)), width)
		if !slices.Equal(a, want) {
			t.Errorf("width %d: not sorted by the low %d bits of the upper 32, stably", width, width)
		}
	}
}

// TestJoinPrevious: every previous name is found exactly when planned,
// also when two names share a hash.
func TestJoinPrevious(t *testing.T) {
	// Two names with the same 32-bit hash (found by the birthday bound).
	seen := map[uint32]string{}
	var a, b string
	for i := 0; a == ""; i++ {
		n := fmt.Sprintf("n%d.test", i)
		h := strHash(n)
		if o, ok := seen[h]; ok {
			a, b = o, n
		}
		seen[h] = n
	}
	ip := []string{"127.0.0.2"}
	names := []model.Name{nm(a, []string{"test"}, ip), nm(b, []string{"test"}, ip)}
	for i := range 500 {
		names = append(names, nm(fmt.Sprintf("mail.d%d.test", i), []string{fmt.Sprintf("d%d.test", i)}, ip, model.RoleMail))
	}
	inv := inventory(ip, names...)
	prev := &model.Plan{Certificates: []model.PlannedCert{
		{ID: "x", Names: []string{a, "gone.test", "mail.d7.test"}, IPs: ip},
		{ID: "y", Names: []string{"mail.d1.test", "mail.d499.test", "mail.d500.test"}, IPs: ip},
		{ID: "z", Names: []string{b}, IPs: ip},
	}}
	p := &planner{inv: inv, prev: prev, used: map[string]bool{}, exclIdx: map[string]int{}}
	if err := p.setup(); err != nil {
		t.Fatal(err)
	}
	p.selectNames()
	p.groupIPs()
	for _, part := range []int{prevPartBits, 1} {
		t.Run(fmt.Sprintf("parts of 2^%d", part), func(t *testing.T) {
			p.partBits = part
			checkJoin(t, p, prev)
		})
	}
	// Many previous names, in parts of 2^4, most of them planned.
	inv = genInventory(2, 3000, fourIPs)
	prev = mustPlan(t, inv, nil, Policy{}, nil)
	prev.Certificates[0].Names = append(prev.Certificates[0].Names, "gone.test", a)
	p = &planner{inv: inv, prev: prev, used: map[string]bool{}, exclIdx: map[string]int{}}
	if err := p.setup(); err != nil {
		t.Fatal(err)
	}
	p.selectNames()
	p.groupIPs()
	p.partBits = 4
	checkJoin(t, p, prev)
}

// checkJoin checks p.joinPrevious against a lookup of each previous name.
func checkJoin(t *testing.T, p *planner, prev *model.Plan) {
	t.Helper()
	flat, off := p.joinPrevious()
	k, found := 0, 0
	defer func() {
		if found == 0 {
			t.Error("no previous name found")
		}
	}()
	for c, pc := range prev.Certificates {
		if int(off[c]) != k {
			t.Fatalf("offset of %s: %d, want %d", pc.ID, off[c], k)
		}
		for _, n := range pc.Names {
			ci, ok := p.findCand(n)
			got := flat[k]
			switch {
			case !ok && got.ci != -1:
				t.Errorf("%s: matched %s", n, p.cands[got.ci].name)
			case ok && (int(got.ci) != ci || got.krank != p.cands[ci].krank || got.groups != p.groupBits(ci)):
				t.Errorf("%s: got %+v, want cand %d", n, got, ci)
			}
			if ok {
				found++
			}
			k++
		}
	}
}

// TestManyGroups: more IP groups than a bit set holds; a second plan
// against the first changes nothing.
func TestManyGroups(t *testing.T) {
	var ips []string
	var names []model.Name
	for i := range 70 {
		ip := fmt.Sprintf("127.0.1.%d", i+1)
		ips = append(ips, ip)
		for _, r := range []string{"mail", "smtp", "imap"} {
			d := fmt.Sprintf("d%d.test", i)
			names = append(names, nm(r+"."+d, []string{d}, []string{ip}, model.RoleMail))
		}
	}
	names = append(names, nm("mx.hoster.test", []string{"d0.test"}, ips, model.RoleMX))
	inv := inventory(ips, names...)
	pol := Policy{MaxNames: 3}
	p1 := mustPlan(t, inv, nil, pol, nil)
	checkInvariants(t, inv, p1, 3)
	p2 := mustPlan(t, inv, nil, pol, p1)
	if ids := changed(p2); len(ids) != 0 || p2.ID != p1.ID {
		t.Errorf("changed %v", ids)
	}
}

// TestRankKeys: ranking client domains by merging runs agrees with
// sorting them, with shared names, deep names, names equal to their domain
// and labels whose runs are interrupted.
func TestRankKeys(t *testing.T) {
	ip := []string{"127.0.0.2"}
	extra := []model.Name{
		nm("mx.hoster.test", []string{"d000003.test", "d000001.test"}, ip, model.RoleMX),
		nm("a.b.d000002.test", []string{"d000002.test"}, ip, model.RoleMail),
		nm("d000004.test", []string{"d000004.test"}, ip, model.RoleMX),
		nm("mail.zz.test", []string{"aa.test"}, ip, model.RoleMail),
		nm("mail.nodomain.test", nil, ip, model.RoleMail),
		nm("mail.co.uk", nil, ip, model.RoleMail),
	}
	for _, inv := range []*model.Inventory{genInventory(5, 3000, fourIPs), inventory(ip, extra...), labInventory()} {
		if len(inv.Names) > 100 {
			inv.Names = append(inv.Names, extra...)
			slices.SortFunc(inv.Names, func(a, b model.Name) int { return cmpStr(a.Name, b.Name) })
		}
		p := &planner{inv: inv, used: map[string]bool{}, exclIdx: map[string]int{}}
		if err := p.setup(); err != nil {
			t.Fatal(err)
		}
		p.selectNames()
		var want []string
		for _, c := range p.cands {
			want = append(want, c.key)
		}
		slices.Sort(want)
		want = slices.Compact(want)
		if !slices.Equal(p.keyByRank, want) {
			t.Fatalf("keys by rank %q, want %q", p.keyByRank, want)
		}
		for _, c := range p.cands {
			if want[c.krank] != c.key {
				t.Fatalf("%s: rank %d is %s, want its key %s", c.name, c.krank, want[c.krank], c.key)
			}
		}
	}
}

// groupBits returns the set of groups cand ci is in, as a bit set.
func (p *planner) groupBits(ci int) uint64 {
	var b uint64
	for _, g := range p.groupsOf(ci) {
		b |= 1 << g
	}
	return b
}
