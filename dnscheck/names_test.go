package dnscheck

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/model"
)

// TestNames: names outside the inventory are looked up as its own are:
// addresses through a CNAME, here or not, CAA, NXDOMAIN and a failing
// server in Error.
func TestNames(t *testing.T) {
	s := startServer(t, `-- test --
@ IN SOA ns.test. h.test. 1 3600 600 86400 300
-- d.test --
@ IN SOA ns.test. h.test. 1 3600 600 86400 300
@ IN CAA 0 issue "other-ca.test"
mail IN CNAME host
host IN A 127.0.0.2
away IN A 127.0.0.77
-- broken.test --
@ IN SOA ns.test. h.test. 1 3600 600 86400 300
mail IN A 127.0.0.2
`)
	s.SetFault("mail.broken.test", dnstest.FaultServfail)
	r := newTestResolver(t, s, Config{})
	got := r.Names(context.Background(), []string{"mail.d.test", "away.d.test", "gone.d.test", "mail.broken.test"},
		Options{ServerIPs: []netip.Addr{netip.MustParseAddr("127.0.0.2")}, CAIdentifier: "letsencrypt.org"})
	if len(got) != 4 {
		t.Fatalf("got %d names", len(got))
	}
	mail, away, gone, broken := got[0], got[1], got[2], got[3]
	if mail.Name != "mail.d.test" || mail.Here != model.HereAll || !slices.Equal(mail.Addresses, []string{"127.0.0.2"}) ||
		!slices.Equal(mail.CNAMEChain, []string{"host.d.test"}) || mail.Error != "" {
		t.Errorf("mail.d.test: %+v", mail)
	}
	if mail.CAAOK || mail.CAA.At != "d.test" {
		t.Errorf("mail.d.test CAA: ok %v, %+v", mail.CAAOK, mail.CAA)
	}
	if away.Here != model.HereNone || !slices.Equal(away.Addresses, []string{"127.0.0.77"}) {
		t.Errorf("away.d.test: %+v", away)
	}
	if gone.Error != model.NameErrNXDOMAIN {
		t.Errorf("gone.d.test: %+v", gone)
	}
	if broken.Error == "" || len(broken.Addresses) != 0 {
		t.Errorf("mail.broken.test: %+v", broken)
	}
}
