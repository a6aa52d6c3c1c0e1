package apply

import (
	"testing"
	"time"

	"github.com/certplan/certplan/model"
)

// Issue 19: a certificate with a wildcard is issued (the wildcard through
// DNS-01) and verified on the hosts it covers. The plan, written by hand,
// does not say which names the wildcard replaced (Plan.WildcardNames): the
// inventory's names it covers on the IP are probed, never "*.d.test".
func TestWildcardIssuedAndVerified(t *testing.T) {
	e := newEnv(t)
	t.Setenv("DNSUPDATE_NAMESERVER", e.dns.Addr())
	e.cfg.Challenge.DNSProvider = "dnsupdate"
	e.cfg.Challenge.Resolvers = []string{e.dns.Addr()}
	e.cfg.Challenge.PropagationTimeout = 10 * time.Second
	inv := &model.Inventory{CAIdentifier: "pebble.letsencrypt.org", ServerIPs: []string{"127.0.0.2"}}
	for _, n := range []string{"away.d.test", "mail.d.test", "smtp.d.test"} {
		nm := model.Name{Name: n, Addresses: []string{"127.0.0.2"}, Here: model.HereAll, CAAOK: true}
		if n == "away.d.test" {
			nm.Addresses, nm.Here = []string{"127.0.0.77"}, model.HereNone
		}
		inv.Names = append(inv.Names, nm)
	}
	p := plan("p1", defCert("*.d.test", "late.d.test"))
	r := e.run(p, ModeIssue, func(o *Options) { o.Inventory = inv })
	if c := r.Certificates[0]; c.Status != StatusIssued || len(c.Dropped) > 0 {
		t.Fatalf("%+v", c)
	}
	// late.d.test (listed), mail and smtp (covered, here); not away.d.test
	// (covered, elsewhere), not "*.d.test".
	checkVerified(t, r, 3)
	for i, want := range []string{"late.d.test", "mail.d.test", "smtp.d.test"} {
		if got := r.Verification[i]; got.Name != want || got.WithoutSNI != VerifyNew || got.WithSNI != VerifyNew {
			t.Errorf("row %d: %+v, want %s served the new certificate", i, got, want)
		}
	}
}
