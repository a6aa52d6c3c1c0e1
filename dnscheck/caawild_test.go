package dnscheck

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// The inventory records, per name a wildcard could cover, whether CAA lets
// the CA issue "*.parent" (RFC 8659 §4.3: issuewild, else issue, of the set
// relevant for parent). The set relevant for "*.d" is d's climbing up, not
// a set at the name itself: mail.own.test's own CAA forbids Let's Encrypt,
// but own.test's allows it, so *.own.test may be issued.
func TestInventoryWildcardCAA(t *testing.T) {
	s := startServer(t, `
-- test --
-- wild.test --
@	IN MX 10 mail
@	IN CAA 0 issue "letsencrypt.org"
@	IN CAA 0 issuewild ";"
mail	IN A 127.0.0.2
smtp	IN A 127.0.0.2
-- open.test --
@	IN MX 10 mail
mail	IN A 127.0.0.2
smtp	IN A 127.0.0.2
-- own.test --
@	IN MX 10 mail
@	IN CAA 0 issue "letsencrypt.org"
mail	IN A 127.0.0.2
mail	IN CAA 0 issue "sectigo.com"
smtp	IN A 127.0.0.2
-- onlywild.test --
@	IN MX 10 mail
@	IN CAA 0 issue "sectigo.com"
@	IN CAA 0 issuewild "letsencrypt.org"
mail	IN A 127.0.0.2
`)
	r := newTestResolver(t, s, Config{})
	inv, err := r.Inventory(context.Background(), []string{"wild.test", "open.test", "own.test", "onlywild.test"}, Options{ServerIPs: serverIPs})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		ok     bool
		at     string
		reason string
	}{
		{"mail.wild.test", false, "wild.test", `CAA at wild.test forbids every CA for wildcards (issuewild ";")`},
		{"smtp.wild.test", false, "wild.test", "forbids every CA for wildcards"},
		{"mail.open.test", true, "", "no CAA record: any CA may issue"},
		{"mail.own.test", true, "own.test", `CAA at own.test allows "letsencrypt.org"`},
		{"smtp.own.test", true, "own.test", `CAA at own.test allows "letsencrypt.org"`},
		{"mail.onlywild.test", true, "onlywild.test", `allows "letsencrypt.org" for wildcards (issuewild)`},
	} {
		n := findName(inv, tc.name)
		if n == nil || n.CAAWild == nil {
			t.Fatalf("%s: no wildcard verdict: %+v", tc.name, n)
		}
		if n.CAAWildOK != tc.ok || n.CAAWild.At != tc.at || !strings.Contains(n.CAAWild.Reason, tc.reason) {
			t.Errorf("%s: wildcard ok=%v %+v; want ok=%v at %q, %q", tc.name, n.CAAWildOK, *n.CAAWild, tc.ok, tc.at, tc.reason)
		}
	}
	// mail.own.test's own verdict is its own set's; onlywild.test's names
	// may have a wildcard but not themselves.
	if n := findName(inv, "mail.own.test"); n.CAAOK {
		t.Errorf("mail.own.test: CAA ok, want forbidden by its own set: %+v", n.CAA)
	}
	// A name of two labels (the apex MX) gets no wildcard verdict.
	for _, apex := range []string{"wild.test", "open.test"} {
		if n := findName(inv, apex); n != nil && n.CAAWild != nil {
			t.Errorf("%s: wildcard verdict %+v, want none", apex, n.CAAWild)
		}
	}
	// The verdicts come from the sets the names' own climbs read: each
	// parent's CAA is asked once, even own.test's, which mail.own.test's
	// own climb stopped short of.
	for _, d := range []string{"wild.test", "open.test", "own.test", "onlywild.test", "test"} {
		if n := s.QueryCount(d, dns.TypeCAA); n != 1 {
			t.Errorf("CAA %s asked %d times, want 1", d, n)
		}
	}
}
