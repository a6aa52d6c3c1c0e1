package dnscheck

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/certplan/certplan/examples/lab/zones"
	"github.com/certplan/certplan/internal/dnstest"
)

// The lab's zones give the inventory the lab describes.
func TestLabZones(t *testing.T) {
	s, domains := dnstest.StartLab(t)
	r := newTestResolver(t, s, Config{})
	ips := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	inv, err := r.Inventory(context.Background(), domains, Options{ServerIPs: ips})
	if err != nil {
		t.Fatal(err)
	}
	check := func(name, roles, here string, caaOK bool) {
		t.Helper()
		n := findName(inv, name)
		if n == nil {
			t.Errorf("%s missing", name)
			return
		}
		if strings.Join(n.Roles, ",") != roles || n.Here != here || n.CAAOK != caaOK {
			t.Errorf("%s: roles %v here %s caa %v; want %s %s %v", name, n.Roles, n.Here, n.CAAOK, roles, here, caaOK)
		}
	}
	check("mail.domain2.test", "imaps,mail,mx", "all", true)
	check("smtp.domain2.test", "smtp,submission,submissions", "all", true)
	// Points elsewhere: its CAA is not looked up (no certificate needs it).
	check("autodiscover.domain2.test", "autodiscover", "none", false)
	if n := findName(inv, "autodiscover.domain2.test"); n != nil && n.CAA.Reason != CAANotLookedUp {
		t.Errorf("autodiscover.domain2.test: CAA %+v, want not looked up", n.CAA)
	}
	check("mail.domain3.test", "mail,mx", "all", false)
	check("mail.xn--bcher-kva.test", "mail,mx", "all", true)
	check("mail.client11.test", "mail,mx", "some", true)
	check("mx.client09.test", "mx", "all", true)
	if n := findName(inv, "server.main-domain.test"); n == nil || len(n.Domains) < 3 {
		t.Errorf("server.main-domain.test: %+v", n)
	}
	// client15's wildcard: the conventional names it makes resolve are
	// marked; its explicit imap CNAME is not.
	check("pop.client15.test", "pop3", "all", true)
	for _, n := range []string{"autoconfig", "autodiscover", "mail", "pop", "smtp"} {
		if nm := findName(inv, n+".client15.test"); nm == nil || !nm.Wildcard {
			t.Errorf("%s.client15.test: %+v, want it marked wildcard", n, nm)
		}
	}
	if nm := findName(inv, "imap.client15.test"); nm == nil || nm.Wildcard {
		t.Errorf("imap.client15.test: %+v, want it not marked", nm)
	}
	wild := 0
	for _, d := range inv.Domains {
		if len(d.WildcardAddresses) > 0 {
			wild++
		}
	}
	if wild != 1 {
		t.Errorf("%d domains with a wildcard, want 1 (client15.test)", wild)
	}
	if d := findDomain(inv, "nullmx.test"); d == nil || !d.NullMX || len(d.Names) != 0 {
		t.Errorf("nullmx.test: %+v", d)
	}
	if d := findDomain(inv, "client05.test"); d == nil || d.MTASTS == nil {
		t.Errorf("client05.test: %+v", d)
	}
	if inv.Stats.DomainsFailed != len(zones.Broken) || inv.Stats.Domains < 40 {
		t.Errorf("stats %+v", inv.Stats)
	}
}
