package dnscheck

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/miekg/dns"
)

const faultZones = `
-- test --
-- foreign.test --
mx.sf	IN A 127.0.0.2
smtp.drop	IN A 127.0.0.2
mx.v6	IN A 127.0.0.2
mx.v6	IN AAAA ::1
-- mxf.test --
@	IN MX 10 mx.sf.foreign.test.
mail	IN A 127.0.0.2
-- srvf.test --
@	IN MX 10 mail.srvf.test.
mail	IN A 127.0.0.2
_submission._tcp	IN SRV 0 1 587 smtp.drop.foreign.test.
-- aaaaf.test --
@	IN MX 10 mx.v6.foreign.test.
-- cnf.test --
@	IN MX 10 mail.cnf.test.
mail	IN A 127.0.0.2
; The CNAME leaves for a zone whose server refuses.
autodiscover	IN CNAME ad.example.invalid.
-- cnd.test --
@	IN MX 10 mail.cnd.test.
mail	IN A 127.0.0.2
; A CNAME to a host whose server never answers: not cnd.test's servers.
autoconfig	IN CNAME ac.example.invalid.
autodiscover	IN A 127.0.0.2
-- ownfail.test --
@	IN MX 10 mail.ownfail.test.
mail	IN A 127.0.0.2
-- tlsaf.test --
@	IN MX 10 mail.tlsaf.test.
mail	IN A 127.0.0.2
`

// TestForeignFailures: a hosted domain fails only when its own records
// cannot be looked up. A failing name of another zone (an MX or SRV
// target, a CNAME's target, one address family of it) is an error of that
// name; a failing TLSA lookup is the name's tlsa_error, not its error.
func TestForeignFailures(t *testing.T) {
	s := startServer(t, faultZones)
	s.SetFault("mx.sf.foreign.test", dnstest.FaultServfail)
	s.SetFault("smtp.drop.foreign.test", dnstest.FaultDrop)
	s.SetFault("ac.example.invalid", dnstest.FaultDrop)
	s.SetFaultType("mx.v6.foreign.test", dns.TypeAAAA, dnstest.FaultServfail)
	s.SetFaultType("mail.ownfail.test", dns.TypeAAAA, dnstest.FaultRefused)
	s.SetFault("_25._tcp.mail.tlsaf.test", dnstest.FaultServfail)
	r := newTestResolver(t, s, Config{Timeout: 500 * time.Millisecond})
	domains := []string{"mxf.test", "srvf.test", "aaaaf.test", "cnf.test", "cnd.test", "ownfail.test", "tlsaf.test"}
	inv, err := r.Inventory(context.Background(), domains, Options{ServerIPs: serverIPs})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		domain, domainErr string // domainErr: prefix, "" for none
		name, nameErr     string // nameErr: prefix, "" for none
		addrs             []string
		tlsaErr           string
	}{
		{"mxf.test", "", "mx.sf.foreign.test", "A mx.sf.foreign.test: SERVFAIL from 127.0.0.1:", nil, ""},
		{"mxf.test", "", "mail.mxf.test", "", []string{"127.0.0.2"}, ""},
		{"srvf.test", "", "smtp.drop.foreign.test", "A smtp.drop.foreign.test: no answer from 127.0.0.1:", nil, ""},
		{"srvf.test", "", "mail.srvf.test", "", []string{"127.0.0.2"}, ""},
		{"aaaaf.test", "", "mx.v6.foreign.test", "AAAA mx.v6.foreign.test: SERVFAIL", []string{"127.0.0.2"}, ""},
		{"cnf.test", "", "autodiscover.cnf.test", "A ad.example.invalid: REFUSED from 127.0.0.1:", nil, ""},
		{"cnd.test", "", "autoconfig.cnd.test", "A ac.example.invalid: no answer from 127.0.0.1:", nil, ""},
		{"cnd.test", "", "autodiscover.cnd.test", "", []string{"127.0.0.2"}, ""},
		{"cnd.test", "", "mail.cnd.test", "", []string{"127.0.0.2"}, ""},
		{"ownfail.test", "AAAA mail.ownfail.test: REFUSED", "mail.ownfail.test", "AAAA mail.ownfail.test: REFUSED", []string{"127.0.0.2"}, ""},
		{"tlsaf.test", "", "mail.tlsaf.test", "", []string{"127.0.0.2"}, "TLSA _25._tcp.mail.tlsaf.test: SERVFAIL from 127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := findDomain(inv, tt.domain)
			if d == nil || !prefixOrEmpty(d.Error, tt.domainErr) {
				t.Errorf("domain %s: %+v, want error %q", tt.domain, d, tt.domainErr)
			}
			n := findName(inv, tt.name)
			if n == nil {
				t.Fatalf("%s missing from the inventory", tt.name)
			}
			if !prefixOrEmpty(n.Error, tt.nameErr) || !reflect.DeepEqual(n.Addresses, append([]string{}, tt.addrs...)) {
				t.Errorf("%s: error %q addresses %v, want %q %v", tt.name, n.Error, n.Addresses, tt.nameErr, tt.addrs)
			}
			if tt.nameErr == "" && (!n.CAAOK || n.CAA.Error != "") {
				t.Errorf("%s: CAA %v %+v, want ok", tt.name, n.CAAOK, n.CAA)
			}
			if !prefixOrEmpty(n.TLSAError, tt.tlsaErr) {
				t.Errorf("%s: tlsa_error %q, want %q", tt.name, n.TLSAError, tt.tlsaErr)
			}
		})
	}
	if inv.Stats.DomainsFailed != 1 {
		t.Errorf("%d domains failed, want 1 (ownfail.test)", inv.Stats.DomainsFailed)
	}
}

func prefixOrEmpty(got, want string) bool {
	if want == "" {
		return got == ""
	}
	return strings.HasPrefix(got, want)
}

const wildZones = `
-- test --
-- foreign.test --
host	IN A 127.0.0.2
-- wild.test --
; cPanel-style: a wildcard, an explicit mail (same address), an imap CNAME.
@	IN MX 10 mail.wild.test.
*	IN A 127.0.0.2
mail	IN A 127.0.0.2
imap	IN CNAME mail
_submission._tcp	IN SRV 0 1 587 smtp.wild.test.
-- other.test --
; A wildcard to another address than mail's.
@	IN MX 10 mail.other.test.
*	IN A 127.0.0.3
mail	IN A 127.0.0.2
-- wcname.test --
; A wildcard CNAME; mail has its own A record.
@	IN MX 10 mail.wcname.test.
*	IN CNAME host.foreign.test.
mail	IN A 127.0.0.2
-- wild6.test --
@	IN MX 10 mail.wild6.test.
*	IN AAAA ::1
-- plain.test --
@	IN MX 10 mail.plain.test.
mail	IN A 127.0.0.2
smtp	IN A 127.0.0.2
-- nomail.test --
@	IN MX 10 host.foreign.test.
`

// TestWildcardNames: a wildcard record makes every conventional name
// resolve. The inventory asks once per domain (only when a conventional
// name answered) for a name that cannot exist, and marks the conventional
// names that resolve exactly as it does.
func TestWildcardNames(t *testing.T) {
	s := startServer(t, wildZones)
	r := newTestResolver(t, s, Config{})
	domains := []string{"wild.test", "other.test", "wcname.test", "wild6.test", "plain.test", "nomail.test"}
	inv, err := r.Inventory(context.Background(), domains, Options{ServerIPs: serverIPs})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		domain   string
		wildcard []string // the domain's wildcard addresses
		names    []string // every name of the domain
		marked   []string // those marked wildcard
	}{
		{"wild.test", []string{"127.0.0.2"},
			[]string{"autoconfig.wild.test", "autodiscover.wild.test", "imap.wild.test", "mail.wild.test", "pop.wild.test", "smtp.wild.test"},
			// Explicit mail has the wildcard's address: DNS cannot tell them
			// apart. imap's CNAME can be told apart.
			[]string{"autoconfig.wild.test", "autodiscover.wild.test", "mail.wild.test", "pop.wild.test", "smtp.wild.test"}},
		{"other.test", []string{"127.0.0.3"},
			[]string{"autoconfig.other.test", "autodiscover.other.test", "imap.other.test", "mail.other.test", "pop.other.test", "smtp.other.test"},
			[]string{"autoconfig.other.test", "autodiscover.other.test", "imap.other.test", "pop.other.test", "smtp.other.test"}},
		{"wcname.test", []string{"127.0.0.2"},
			[]string{"autoconfig.wcname.test", "autodiscover.wcname.test", "imap.wcname.test", "mail.wcname.test", "pop.wcname.test", "smtp.wcname.test"},
			[]string{"autoconfig.wcname.test", "autodiscover.wcname.test", "imap.wcname.test", "pop.wcname.test", "smtp.wcname.test"}},
		{"wild6.test", []string{"::1"},
			[]string{"autoconfig.wild6.test", "autodiscover.wild6.test", "imap.wild6.test", "mail.wild6.test", "pop.wild6.test", "smtp.wild6.test"},
			[]string{"autoconfig.wild6.test", "autodiscover.wild6.test", "imap.wild6.test", "mail.wild6.test", "pop.wild6.test", "smtp.wild6.test"}},
		{"plain.test", nil, []string{"mail.plain.test", "smtp.plain.test"}, nil},
		{"nomail.test", nil, []string{"host.foreign.test"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			d := findDomain(inv, tt.domain)
			if d == nil || d.Error != "" || !reflect.DeepEqual(d.WildcardAddresses, tt.wildcard) || !reflect.DeepEqual(d.Names, tt.names) {
				t.Fatalf("%+v, want wildcard %v names %v", d, tt.wildcard, tt.names)
			}
			var marked []string
			for _, n := range d.Names {
				if findName(inv, n).Wildcard {
					marked = append(marked, n)
				}
			}
			if !reflect.DeepEqual(marked, tt.marked) {
				t.Errorf("marked %v, want %v", marked, tt.marked)
			}
		})
	}
	// One probe per domain with a conventional name that answered; none
	// for nomail.test, and none for plain.test, where pop.plain.test
	// answered NXDOMAIN: a wildcard would have answered for it.
	probes := map[string]int{}
	for k, n := range s.QueryCounts() {
		if name, _, _ := strings.Cut(k, " "); strings.HasPrefix(name, WildcardProbeLabel) {
			_, dom, _ := strings.Cut(name, ".")
			probes[strings.TrimSuffix(dom, ".")] += n
		}
	}
	want := map[string]int{"wild.test": 1, "other.test": 1, "wcname.test": 1, "wild6.test": 1}
	if !reflect.DeepEqual(probes, want) {
		t.Errorf("wildcard probes %v, want %v", probes, want)
	}
	if n := findName(inv, "smtp.wild.test"); !reflect.DeepEqual(n.Roles, []string{"smtp", "submission"}) {
		t.Errorf("smtp.wild.test roles %v", n.Roles)
	}
}

func TestWildcardProbeName(t *testing.T) {
	for _, r := range []uint32{0, 1, 0xdeadbeef, 0xffffffff, 0x0a0b0c0d} {
		want := fmt.Sprintf("%s%08x.%s.", WildcardProbeLabel, r, "d.test")
		if got := wildcardProbe("d.test", r); got != want {
			t.Errorf("wildcardProbe(%#x) = %q, want %q", r, got, want)
		}
	}
}
