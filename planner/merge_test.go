package planner

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/certplan/certplan/model"
)

var (
	ipA = []string{"127.0.0.2"}
	ipB = []string{"127.0.0.3"}
)

// trimmedAlikeInventory has two IPs whose planned names differ but whose
// first four names by priority (the MX targets) are the same, and one
// client domain (big.test) whose names are on both and overflow both
// defaults: with four names per certificate, the IPs' defaults are
// identical once trimmed, and so are big.test's SNI certificates.
func trimmedAlikeInventory() *model.Inventory {
	names := []model.Name{
		nm("mail.a.test", []string{"a.test"}, ipA, model.RoleMail),
		nm("imap.a.test", []string{"a.test"}, ipA, model.RoleIMAP),
		nm("mail.b.test", []string{"b.test"}, ipB, model.RoleMail),
		nm("imap.b.test", []string{"b.test"}, ipB, model.RoleIMAP),
	}
	for _, d := range []string{"d1", "d2", "d3", "d4"} {
		names = append(names, nm("mx."+d+".test", []string{d + ".test"}, twoIPs, model.RoleMX))
	}
	for _, r := range []string{model.RoleMail, model.RoleIMAP, model.RoleAutoconfig} {
		names = append(names, nm(r+".big.test", []string{"big.test"}, twoIPs, r))
	}
	return inventory(twoIPs, names...)
}

// TestMergeTrimmed: certificates whose name sets are identical after
// trimming to the limit are one order, served on both IPs.
func TestMergeTrimmed(t *testing.T) {
	mx := []string{"mx.d1.test", "mx.d2.test", "mx.d3.test", "mx.d4.test"}
	pol := Policy{MaxNames: 4, Limits: RateLimits{DuplicateCerts: 1}}
	row := func(name, ip string) model.Coverage {
		return model.Coverage{Name: name, IP: ip, Port: 25, Protocol: "smtp", WithSNI: model.VerdictMismatch, WithoutSNI: model.VerdictMismatch}
	}
	pr := &model.ProbeReport{Header: model.Header{Kind: model.KindProbe, Version: 1}, Coverage: []model.Coverage{
		row("mail.a.test", "127.0.0.2"),
		row("mail.a.test", "127.0.0.3"),
		row("mail.big.test", "127.0.0.3"),
		row("mx.d1.test", "127.0.0.3"),
	}}
	inv := trimmedAlikeInventory()
	p := mustPlan(t, inv, pr, pol, nil)
	want := []struct {
		id    string
		def   bool
		ips   []string
		names []string
	}{
		{"default-127.0.0.2", true, twoIPs, mx},
		{"sni-a.test", false, ipA, []string{"imap.a.test", "mail.a.test"}},
		{"sni-b.test", false, ipB, []string{"imap.b.test", "mail.b.test"}},
		{"sni-big.test", false, twoIPs, []string{"autoconfig.big.test", "imap.big.test", "mail.big.test"}},
	}
	if len(p.Certificates) != len(want) {
		t.Fatalf("got %d certificates, want %d: %+v", len(p.Certificates), len(want), p.Certificates)
	}
	for i, w := range want {
		c := p.Certificates[i]
		if c.ID != w.id || c.Default != w.def || !slices.Equal(c.IPs, w.ips) || !slices.Equal(c.Names, w.names) || c.Change != "new" {
			t.Errorf("certificate %d: got %+v, want %+v", i, c, w)
		}
	}
	checkInvariants(t, inv, p, 4)
	if p.Budget.Orders != 4 {
		t.Errorf("orders %d, want 4", p.Budget.Orders)
	}
	for _, dc := range p.Budget.PerRegisteredDomain {
		if dc.Count != 1 {
			t.Errorf("%s is on %d certificates, want 1", dc.Domain, dc.Count)
		}
	}
	// Each IP still has its own explanation: its over-limit warning, and
	// its SNI-only names.
	var over []string
	for _, w := range p.Warnings {
		switch w.Code {
		case model.WarnRateLimit:
			t.Errorf("rate-limit warning: %s", w.Message)
		case model.WarnOverLimit:
			over = append(over, w.Message)
		}
	}
	if len(over) != 2 || !strings.Contains(over[0]+over[1], "resolve to 127.0.0.2,") || !strings.Contains(over[0]+over[1], "resolve to 127.0.0.3,") {
		t.Errorf("over-limit warnings %q, want one for each IP", over)
	}
	wantSNI := []string{"autoconfig.big.test", "imap.a.test", "imap.b.test", "imap.big.test", "mail.a.test", "mail.b.test", "mail.big.test"}
	if !slices.Equal(p.SNIOnly, wantSNI) || p.ExtraIPsNeeded != 4 {
		t.Errorf("sni_only %v, extra_ips_needed %d; want %v, 4", p.SNIOnly, p.ExtraIPsNeeded, wantSNI)
	}
	notes := map[string]string{
		"mail.a.test 127.0.0.2":   "SNI only: the default certificate of 127.0.0.2",
		"mail.a.test 127.0.0.3":   "not planned on 127.0.0.3",
		"mail.big.test 127.0.0.3": "SNI only: the default certificate of 127.0.0.3",
		"mx.d1.test 127.0.0.3":    "",
	}
	for _, c := range p.Coverage {
		note, ok := notes[c.Name+" "+c.IP]
		if !ok || (note == "") != (c.Note == "") || !strings.Contains(c.Note, note) {
			t.Errorf("coverage %+v, want note %q", c, note)
		}
	}
	b, _ := model.Marshal(p)
	golden(t, "merge", b)

	// Identical input in another order, identical bytes.
	inv2 := trimmedAlikeInventory()
	r := rand.New(rand.NewPCG(3, 4))
	r.Shuffle(len(inv2.Names), func(i, j int) { inv2.Names[i], inv2.Names[j] = inv2.Names[j], inv2.Names[i] })
	if b2, _ := model.Marshal(mustPlan(t, inv2, pr, pol, nil)); !bytes.Equal(b, b2) {
		t.Error("same input, different plans")
	}
}

// TestMergeStable: a merged certificate stays merged and unchanged on the
// next plan, and a name added on one of its IPs changes one certificate.
func TestMergeStable(t *testing.T) {
	pol := Policy{MaxNames: 4}
	prev := mustPlan(t, trimmedAlikeInventory(), nil, pol, nil)

	p := mustPlan(t, trimmedAlikeInventory(), nil, pol, prev)
	if ids := changed(p); len(ids) != 0 || p.Budget.Orders != 0 || len(p.Retired) != 0 || p.ID != prev.ID {
		t.Errorf("same input: changed %v, orders %d, retired %v, ID %s then %s", ids, p.Budget.Orders, p.Retired, prev.ID, p.ID)
	}
	if len(p.Certificates) != len(prev.Certificates) {
		t.Fatalf("same input: %+v, then %+v", prev.Certificates, p.Certificates)
	}
	for i, c := range p.Certificates {
		if pc := prev.Certificates[i]; c.ID != pc.ID || !slices.Equal(c.IPs, pc.IPs) || !slices.Equal(c.Names, pc.Names) {
			t.Errorf("same input: %+v, then %+v", pc, c)
		}
	}

	cases := []struct {
		what   string
		add    model.Name
		change string // the one certificate that changes
	}{
		{"a name of a client domain on one IP", nm("autoconfig.a.test", []string{"a.test"}, ipA, model.RoleAutoconfig), "sni-a.test"},
		// The merged default is full: the new MX target goes to an SNI
		// certificate of its IP, as on a single IP.
		{"an MX target on one IP", nm("mx.d0.test", []string{"d0.test"}, ipB, model.RoleMX), "sni-b.test"},
	}
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			inv := trimmedAlikeInventory()
			inv.Names = append(inv.Names, tc.add)
			p := mustPlan(t, inv, nil, pol, prev)
			checkInvariants(t, inv, p, 4)
			if ids := changed(p); !slices.Equal(ids, []string{tc.change}) || len(p.Retired) != 0 {
				t.Errorf("changed %v, retired %v; want [%s], none", ids, p.Retired, tc.change)
			}
			for _, id := range []string{"default-127.0.0.2", "sni-big.test"} {
				if c := certByID(p, id); c == nil || !slices.Equal(c.IPs, twoIPs) {
					t.Errorf("%s: %+v, want it on both IPs", id, c)
				}
			}
		})
	}
}

// TestMergeDiverges: when the names of a merged default stop coinciding on
// its IPs, the IP whose default is unchanged keeps the certificate and its
// ID, and the other gets a new one.
func TestMergeDiverges(t *testing.T) {
	pol := Policy{MaxNames: 4}
	prev := mustPlan(t, trimmedAlikeInventory(), nil, pol, nil)
	inv := trimmedAlikeInventory()
	for i := range inv.Names {
		if inv.Names[i].Name == "mx.d4.test" {
			inv.Names[i].Addresses = ipB
		}
	}
	p := mustPlan(t, inv, nil, pol, prev)
	checkInvariants(t, inv, p, 4)
	kept := certByID(p, "default-127.0.0.2")
	if kept == nil || kept.Change != "unchanged" || !slices.Equal(kept.IPs, ipB) {
		t.Errorf("kept: %+v", kept)
	}
	ids := changed(p)
	if len(ids) != 1 || len(p.Retired) != 0 {
		t.Fatalf("changed %v, retired %v; want one new default", ids, p.Retired)
	}
	c := certByID(p, ids[0])
	if c.Change != "new" || !c.Default || !slices.Equal(c.IPs, ipA) || !slices.Equal(c.Names, []string{"mx.d1.test", "mx.d2.test", "mx.d3.test"}) {
		t.Errorf("new: %+v", c)
	}
	if c := certByID(p, "sni-big.test"); c == nil || c.Change != "unchanged" || !slices.Equal(c.IPs, twoIPs) {
		t.Errorf("sni-big.test: %+v", c)
	}
}

// TestMergeKeepsUnchangedID: two previous default certificates that now
// hold the same names become one, which keeps the ID of the one whose names
// did not change (no order); the other is retired.
func TestMergeKeepsUnchangedID(t *testing.T) {
	pol := Policy{MaxNames: 4}
	var names []model.Name
	for _, d := range []string{"d1", "d2", "d3"} {
		names = append(names, nm("mx."+d+".test", []string{d + ".test"}, twoIPs, model.RoleMX))
	}
	names = append(names,
		nm("mx.d4.test", []string{"d4.test"}, ipA, model.RoleMX),
		nm("mail.a.test", []string{"a.test"}, ipA, model.RoleMail),
		nm("imap.a.test", []string{"a.test"}, ipA, model.RoleIMAP))
	prev := mustPlan(t, inventory(twoIPs, slices.Clone(names)...), nil, pol, nil)
	if c := certByID(prev, "default-127.0.0.3"); c == nil || len(c.Names) != 3 {
		t.Fatalf("previous plan: %+v", prev.Certificates)
	}
	// mx.d4.test now also on B, and B gains a client domain.
	names[3].Addresses = twoIPs
	names = append(names,
		nm("mail.b.test", []string{"b.test"}, ipB, model.RoleMail),
		nm("imap.b.test", []string{"b.test"}, ipB, model.RoleIMAP))
	inv := inventory(twoIPs, names...)
	p := mustPlan(t, inv, nil, pol, prev)
	checkInvariants(t, inv, p, 4)
	c := certByID(p, "default-127.0.0.2")
	if c == nil || c.Change != "unchanged" || !slices.Equal(c.IPs, twoIPs) {
		t.Fatalf("default: %+v; certificates %+v", c, p.Certificates)
	}
	if !slices.Equal(p.Retired, []string{"default-127.0.0.3"}) {
		t.Errorf("retired %v", p.Retired)
	}
	if ids := changed(p); !slices.Equal(ids, []string{"sni-b.test"}) || p.Budget.Orders != 1 {
		t.Errorf("changed %v, orders %d; want [sni-b.test], 1", ids, p.Budget.Orders)
	}
}

// TestNoMergeDefaultWithSNI: a default certificate and an SNI certificate
// with the same names stay two certificates: Default applies to all of a
// certificate's IPs, and on 127.0.0.3 these names must not be the default.
func TestNoMergeDefaultWithSNI(t *testing.T) {
	inv := inventory(twoIPs,
		nm("mx.x.test", []string{"x.test"}, twoIPs, model.RoleMX),
		nm("mx.y.test", []string{"y.test"}, twoIPs, model.RoleMX),
		nm("mx.p.test", []string{"p.test"}, ipB, model.RoleMX),
		nm("mx.q.test", []string{"q.test"}, ipB, model.RoleMX))
	p := mustPlan(t, inv, nil, Policy{MaxNames: 2}, nil)
	checkInvariants(t, inv, p, 2)
	xy := []string{"mx.x.test", "mx.y.test"}
	var def, sni *model.PlannedCert
	for i := range p.Certificates {
		c := &p.Certificates[i]
		if !slices.Equal(c.Names, xy) {
			continue
		}
		if c.Default {
			def = c
		} else {
			sni = c
		}
	}
	if def == nil || sni == nil || !slices.Equal(def.IPs, ipA) || !slices.Equal(sni.IPs, ipB) {
		t.Errorf("want a default on 127.0.0.2 and an SNI certificate on 127.0.0.3 with %v; got %+v", xy, p.Certificates)
	}
}
