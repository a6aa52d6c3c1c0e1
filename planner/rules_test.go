package planner

import (
	"slices"
	"strings"
	"testing"

	"github.com/certplan/certplan/model"
)

var twoIPs = []string{"127.0.0.2", "127.0.0.3"}

// labInventory has one name for each rule.
func labInventory() *model.Inventory {
	both := []string{"127.0.0.2", "127.0.0.3"}
	a := []string{"127.0.0.2"}
	b := []string{"127.0.0.3"}
	caa := nm("mail.caa.test", []string{"caa.test"}, a, model.RoleMail)
	caa.CAAOK = false
	caa.CAA = model.CAAVerdict{At: "caa.test", Records: []string{`0 issue "sectigo.com"`}, Reason: `CAA at caa.test allows only "sectigo.com"`}
	web := nm("webmail.domain1.test", []string{"domain1.test"}, a)
	web.CAAOK = false
	web.CAA = model.CAAVerdict{Error: "SERVFAIL"}
	elsewhere := nm("mail.elsewhere.test", []string{"elsewhere.test"}, []string{"127.0.0.77"}, model.RoleMail)
	elsewhere.Here = model.HereNone
	partial := nm("mail.partial.test", []string{"partial.test"}, []string{"127.0.0.2", "127.0.0.77"}, model.RoleMail)
	partial.Here = model.HereSome
	noaddr := nm("mail.noaddr.test", []string{"noaddr.test"}, nil, model.RoleMail)
	noaddr.Here = model.HereNone
	noaddr.CNAMEChain = []string{"gone.noaddr.test"}
	broken := nm("mail.broken.test", []string{"broken.test"}, nil, model.RoleMail)
	broken.Error = "SERVFAIL from 127.0.0.53"
	dane := nm("mx.dane.test", []string{"dane.test"}, a, model.RoleMX)
	dane.TLSA = []model.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: "00ff"}}
	return inventory(both,
		nm("mx.hoster.test", []string{"domain1.test", "domain2.test"}, both, model.RoleMX),
		nm("mail.domain1.test", []string{"domain1.test"}, a, model.RoleMail),
		nm("autodiscover.domain1.test", []string{"domain1.test"}, a, model.RoleAutodiscover),
		nm("smtp.domain2.test", []string{"domain2.test"}, b, model.RoleSMTP),
		nm("imap.domain2.test", []string{"domain2.test"}, b, model.RoleIMAP),
		nm("bad_name.domain2.test", []string{"domain2.test"}, b, model.RoleIMAP),
		caa, web, elsewhere, partial, noaddr, broken, dane,
	)
}

var labPolicy = Policy{Hostname: "host.hoster.test", Include: []string{"webmail.domain1.test"}, Exclude: []string{"autodiscover.*"}}

func TestRules(t *testing.T) {
	p := mustPlan(t, labInventory(), nil, labPolicy, nil)
	wantExcluded := map[string]string{
		"autodiscover.domain1.test": model.ExcludePolicy,
		"bad_name.domain2.test":     model.ExcludeInvalidName,
		"mail.broken.test":          model.ExcludeLookupFailed,
		"mail.caa.test":             model.ExcludeCAAForbids,
		"mail.elsewhere.test":       model.ExcludePointsElsewhere,
		"mail.noaddr.test":          model.ExcludeNoAddress,
		"webmail.domain1.test":      model.ExcludeCAAForbids,
		// Its record (not validated) trusts no key of the default,
		// which has none yet (planner/dane.go).
		"mx.dane.test": model.ExcludeDANEPinned,
	}
	got := map[string]string{}
	for _, e := range p.Excluded {
		got[e.Name] = e.Code
		if e.Reason == "" {
			t.Errorf("%s: empty reason", e.Name)
		}
	}
	for n, code := range wantExcluded {
		if got[n] != code {
			t.Errorf("%s: excluded as %q, want %q", n, got[n], code)
		}
	}
	if len(got) != len(wantExcluded) {
		t.Errorf("excluded %v, want %v", got, wantExcluded)
	}
	for _, e := range p.Excluded {
		switch e.Name {
		case "mail.caa.test":
			for _, s := range []string{`allows only "sectigo.com"`, `0 issue "sectigo.com"`, `add this record: caa.test. IN CAA 0 issue "letsencrypt.org";`} {
				if !strings.Contains(e.Reason, s) {
					t.Errorf("CAA reason %q lacks %q", e.Reason, s)
				}
			}
		case "mail.elsewhere.test":
			if !strings.Contains(e.Reason, "127.0.0.77") {
				t.Errorf("points-elsewhere reason %q lacks the address", e.Reason)
			}
		}
	}
	def2, def3 := certByID(p, "default-127.0.0.2"), certByID(p, "default-127.0.0.3")
	if def2 == nil || def3 == nil {
		t.Fatalf("default certificates missing: %+v", p.Certificates)
	}
	if want := []string{"host.hoster.test", "mail.domain1.test", "mail.partial.test", "mx.hoster.test"}; !slices.Equal(def2.Names, want) {
		t.Errorf("default-127.0.0.2 names %v, want %v", def2.Names, want)
	}
	if want := []string{"host.hoster.test", "imap.domain2.test", "mx.hoster.test", "smtp.domain2.test"}; !slices.Equal(def3.Names, want) {
		t.Errorf("default-127.0.0.3 names %v, want %v", def3.Names, want)
	}
	if !slices.Equal(def2.MustCover, []string{"host.hoster.test"}) {
		t.Errorf("must_cover %v", def2.MustCover)
	}
	if len(p.Certificates) != 2 || len(p.SNIOnly) != 0 || p.ExtraIPsNeeded != 0 {
		t.Errorf("certs %d, sni_only %v, extra %d; want 2, none, 0", len(p.Certificates), p.SNIOnly, p.ExtraIPsNeeded)
	}
	warns := map[string][]string{}
	for _, w := range p.Warnings {
		warns[w.Code] = append(warns[w.Code], w.Name)
	}
	for code, want := range map[string][]string{
		model.WarnSomeHere:       {"mail.partial.test"},
		model.WarnMustCoverIssue: {"host.hoster.test", "webmail.domain1.test"},
		model.WarnDANE:           nil,
	} {
		if !slices.Equal(warns[code], want) {
			t.Errorf("warnings %s: %v, want %v", code, warns[code], want)
		}
	}
	b, err := model.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "rules", b)
}

// overLimitInventory: one IP, a shared MX and three client domains of four
// names each.
func overLimitInventory() *model.Inventory {
	ip := []string{"127.0.0.2"}
	names := []model.Name{nm("mx.hoster.test", []string{"a.test", "b.test", "c.test"}, ip, model.RoleMX)}
	for _, d := range []string{"a.test", "b.test", "c.test"} {
		names = append(names,
			nm("smtp."+d, []string{d}, ip, model.RoleSMTP),
			nm("mail."+d, []string{d}, ip, model.RoleMail),
			nm("imap."+d, []string{d}, ip, model.RoleIMAP),
			nm("autoconfig."+d, []string{d}, ip, model.RoleAutoconfig))
	}
	return inventory(ip, names...)
}

func TestOverLimit(t *testing.T) {
	p := mustPlan(t, overLimitInventory(), nil, Policy{MaxNames: 4}, nil)
	want := map[string][]string{
		"default-127.0.0.2": {"mx.hoster.test", "smtp.a.test", "smtp.b.test", "smtp.c.test"},
		"sni-a.test":        {"autoconfig.a.test", "imap.a.test", "mail.a.test"},
		"sni-b.test":        {"autoconfig.b.test", "imap.b.test", "mail.b.test"},
		"sni-c.test":        {"autoconfig.c.test", "imap.c.test", "mail.c.test"},
	}
	if len(p.Certificates) != len(want) {
		t.Fatalf("got %d certificates, want %d: %+v", len(p.Certificates), len(want), p.Certificates)
	}
	for id, names := range want {
		c := certByID(p, id)
		if c == nil || !slices.Equal(c.Names, names) {
			t.Errorf("%s: got %+v, want names %v", id, c, names)
			continue
		}
		if c.Default != (id == "default-127.0.0.2") || !slices.Equal(c.IPs, []string{"127.0.0.2"}) {
			t.Errorf("%s: default %v, ips %v", id, c.Default, c.IPs)
		}
	}
	if len(p.SNIOnly) != 9 || p.ExtraIPsNeeded != 3 {
		t.Errorf("sni_only %v, extra_ips_needed %d; want 9 names, 3", p.SNIOnly, p.ExtraIPsNeeded)
	}
	if p.Budget.Orders != 4 {
		t.Errorf("orders %d, want 4", p.Budget.Orders)
	}
	b, _ := model.Marshal(p)
	golden(t, "overlimit", b)
}

// TestMergedIPs: an IPv4 and an IPv6 address with the same names share one
// default certificate.
func TestMergedIPs(t *testing.T) {
	both := []string{"::1", "127.0.0.2"}
	inv := inventory(both,
		nm("mail.a.test", []string{"a.test"}, both, model.RoleMail),
		nm("mx.a.test", []string{"a.test"}, both, model.RoleMX))
	p := mustPlan(t, inv, nil, Policy{}, nil)
	if len(p.Certificates) != 1 {
		t.Fatalf("got %d certificates, want 1", len(p.Certificates))
	}
	c := p.Certificates[0]
	if c.ID != "default-127.0.0.2" || !slices.Equal(c.IPs, []string{"127.0.0.2", "::1"}) || !c.Default {
		t.Errorf("got %+v", c)
	}
	if p.Budget.Orders != 1 {
		t.Errorf("orders %d, want 1", p.Budget.Orders)
	}
}

func TestBudget(t *testing.T) {
	ip := []string{"127.0.0.2"}
	var names []model.Name
	// 6 names of one registered domain on 3 SNI certificates plus the default.
	for _, s := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		names = append(names, nm("mail."+s+".big.test", []string{s + ".big.test"}, ip, model.RoleMail))
	}
	inv := inventory(ip, names...)
	p := mustPlan(t, inv, nil, Policy{MaxNames: 2, Limits: RateLimits{CertsPerRegisteredDomain: 3, NewOrders: 2}}, nil)
	if p.Budget.Orders != 4 {
		t.Fatalf("orders %d, want 4", p.Budget.Orders)
	}
	if want := []model.DomainCount{{Domain: "big.test", Count: 4, Orders: 4}}; !slices.Equal(p.Budget.PerRegisteredDomain, want) {
		t.Errorf("per domain %v, want %v", p.Budget.PerRegisteredDomain, want)
	}
	var rl []string
	for _, w := range p.Warnings {
		if w.Code == model.WarnRateLimit {
			rl = append(rl, w.Message)
		}
	}
	if len(rl) != 2 || !strings.Contains(strings.Join(rl, "\n"), "4 certificates to order name big.test") || !strings.Contains(strings.Join(rl, "\n"), "4 orders, over the CA's limit of 2") {
		t.Errorf("rate-limit warnings %q", rl)
	}
	// With the default (Let's Encrypt) limits, no warning.
	p = mustPlan(t, inv, nil, Policy{MaxNames: 2}, nil)
	for _, w := range p.Warnings {
		if w.Code == model.WarnRateLimit {
			t.Errorf("unexpected %v", w)
		}
	}
}

func TestPolicyErrors(t *testing.T) {
	inv := labInventory()
	for _, pol := range []Policy{
		{Profile: "nope"},
		{ServerIPs: []string{"not-an-ip"}},
		{Exclude: []string{"mail*.test"}},
		{Hostname: "localhost"},
		{Include: []string{"*.x.test"}},
	} {
		if _, err := Plan(inv, nil, pol, nil, now); err == nil {
			t.Errorf("%+v: no error", pol)
		}
	}
	if _, err := Plan(nil, nil, Policy{}, nil, now); err == nil {
		t.Error("nil inventory: no error")
	}
	if _, err := Plan(inventory(nil), nil, Policy{}, nil, now); err == nil {
		t.Error("no server IPs: no error")
	}
}

// TestServerIPsOverride: names are "here" by the policy's IPs, not the
// inventory's verdict.
func TestServerIPsOverride(t *testing.T) {
	inv := labInventory()
	p := mustPlan(t, inv, nil, Policy{ServerIPs: []string{"127.0.0.3"}}, nil)
	for _, c := range p.Certificates {
		if !slices.Equal(c.IPs, []string{"127.0.0.3"}) {
			t.Errorf("%s on %v", c.ID, c.IPs)
		}
	}
	if c := certByID(p, "default-127.0.0.3"); c == nil || slices.Contains(c.Names, "mail.domain1.test") {
		t.Errorf("default-127.0.0.3: %+v", c)
	}
}

// TestNotNames: "." (null MX, SRV "no service") and duplicates are not
// names: neither planned nor excluded.
func TestNotNames(t *testing.T) {
	ip := []string{"127.0.0.2"}
	inv := inventory(ip, nm(".", []string{"a.test"}, ip, model.RoleMX), nm("mail.a.test", []string{"a.test"}, ip, model.RoleMail))
	inv.Names = append(inv.Names, nm("MAIL.A.TEST.", []string{"a.test"}, ip, model.RoleMail)) // unsorted, duplicate
	p := mustPlan(t, inv, nil, Policy{}, nil)
	if len(p.Excluded) != 0 || len(p.Certificates) != 1 || !slices.Equal(p.Certificates[0].Names, []string{"mail.a.test"}) {
		t.Errorf("got %+v, excluded %+v", p.Certificates, p.Excluded)
	}
}

// TestUnsortedLater: an inventory sorted at first and out of order later
// (hand-made, or concatenated) still has each name once, whether its
// duplicate comes before or after the first name out of order.
func TestUnsortedLater(t *testing.T) {
	ip := []string{"127.0.0.2"}
	inv := inventory(ip,
		nm("autoconfig.b.test", []string{"b.test"}, ip, model.RoleAutoconfig),
		nm("mail.a.test", []string{"a.test"}, ip, model.RoleMail),
		nm("mail.b.test", []string{"b.test"}, ip, model.RoleMail))
	inv.Names = append(inv.Names,
		nm("imap.c.test", []string{"c.test"}, ip, model.RoleIMAP),             // out of order: new
		nm("autoconfig.b.test", []string{"b.test"}, ip, model.RoleAutoconfig), // before it, not next to it
		nm("imap.c.test.", []string{"c.test"}, ip, model.RoleIMAP),            // after it
		nm("MAIL.A.TEST", []string{"a.test"}, ip, model.RoleMail))
	p := mustPlan(t, inv, nil, Policy{}, nil)
	want := []string{"autoconfig.b.test", "imap.c.test", "mail.a.test", "mail.b.test"}
	if len(p.Excluded) != 0 || len(p.Certificates) != 1 || !slices.Equal(p.Certificates[0].Names, want) {
		t.Errorf("got %+v, excluded %+v, want one certificate for %v", p.Certificates, p.Excluded, want)
	}
}
