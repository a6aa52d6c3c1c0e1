package acme

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/internal/pebbletest"
	"github.com/certplan/certplan/model"
)

// Issue 19: wildcard names on a certificate. "*.d.test" is validated
// through DNS-01 (the CA offers nothing else for it, RFC 8555 section
// 7.1.3), the other names of the same order through HTTP-01; "*.d.test"
// and "d.test" both need a TXT record at _acme-challenge.d.test, so the
// providers add their value and remove only their own.

// wildEnv is newEnv with d.test's apex and mx.other.test pointing here
// (HTTP-01 reaches them), and a DNS-01 provider's settings.
func wildEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	if err := e.dns.AddZone("other.test", "mx IN A 127.0.0.2\n"); err != nil {
		t.Fatal(err)
	}
	if err := e.dns.Add("d.test. 60 IN A 127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	return e
}

// wildNames is the order of issue 19's item 4.
var wildNames = []string{"*.d.test", "d.test", "mx.other.test"}

// txtValues are the TXT strings at name.
func txtValues(t *testing.T, addr, name string) []string {
	t.Helper()
	var out []string
	for _, rr := range txtAt(t, addr, name) {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	slices.Sort(out)
	return out
}

// Both providers publish a second value beside the first, at the same
// name, and remove only their own: what "*.d.test" and "d.test" in one
// order need. (lego's dnsupdate provider replaced the record set: the
// second Present deleted the first value.)
func TestDNSProvidersAddTheirOwnValue(t *testing.T) {
	e := newEnv(t)
	dnsProvidersAt(t, e.dns.Addr())
	for _, name := range []string{"dnsupdate", "exec"} {
		t.Run(name, func(t *testing.T) {
			p, err := DNSProvider(name)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			const fqdn = "_acme-challenge.d.test"
			if err := p.Present(ctx, "d.test", "token-a", "key-auth-a"); err != nil {
				t.Fatal(err)
			}
			if err := p.Present(ctx, "d.test", "token-b", "key-auth-b"); err != nil {
				t.Fatal(err)
			}
			if got := txtValues(t, e.dns.Addr(), fqdn); len(got) != 2 {
				t.Fatalf("after two presents, TXT at %s: %q; want both values", fqdn, got)
			}
			if err := p.CleanUp(ctx, "d.test", "token-a", "key-auth-a"); err != nil {
				t.Fatal(err)
			}
			got := txtValues(t, e.dns.Addr(), fqdn)
			if len(got) != 1 {
				t.Fatalf("after one cleanup, TXT at %s: %q; want the other value only", fqdn, got)
			}
			if err := p.CleanUp(ctx, "d.test", "token-b", "key-auth-b"); err != nil {
				t.Fatal(err)
			}
			if got := txtValues(t, e.dns.Addr(), fqdn); len(got) != 0 {
				t.Fatalf("after both cleanups, TXT at %s: %q", fqdn, got)
			}
		})
	}
}

// A wildcard with HTTP-01 for the other names: the wildcard through the
// DNS-01 provider, the apex and mx.other.test through the built-in
// HTTP-01 listener, in one order.
func TestObtainWildcardMixedChallenges(t *testing.T) {
	for _, provider := range []string{"dnsupdate", "exec"} {
		t.Run(provider, func(t *testing.T) {
			e := wildEnv(t)
			dnsProvidersAt(t, e.dns.Addr())
			c := e.client(func(cfg *Config) {
				cfg.Challenge.DNSProvider = provider
				cfg.Challenge.Resolvers = []string{e.dns.Addr()}
				cfg.Challenge.PropagationTimeout = 10 * time.Second
			})
			res, err := e.obtain(c, Request{CertID: "c1", Names: wildNames, Inventory: inventory("d.test", "mx.other.test")})
			if err != nil {
				t.Fatalf("%v (dropped %+v)", err, res)
			}
			want := slices.Sorted(slices.Values(wildNames))
			if !slices.Equal(res.Issued, want) || !slices.Equal(res.Cert.Leaf.DNSNames, want) {
				t.Errorf("issued %v, certificate names %v; want %v", res.Issued, res.Cert.Leaf.DNSNames, want)
			}
			e.verify(res.Cert, "anything.d.test", "d.test", "mx.other.test")
			// The wildcard went through DNS-01, the others through HTTP-01.
			if n := e.dns.QueryCount("_acme-challenge.d.test", dns.TypeTXT); n == 0 {
				t.Error("no TXT query at _acme-challenge.d.test: the wildcard was not validated through DNS-01")
			}
			if n := e.dns.QueryCount("_acme-challenge.mx.other.test", dns.TypeTXT); n != 0 {
				t.Errorf("%d TXT queries at _acme-challenge.mx.other.test: it should use HTTP-01", n)
			}
			if got := txtValues(t, e.dns.Addr(), "_acme-challenge.d.test"); len(got) != 0 {
				t.Errorf("TXT left behind: %q", got)
			}
		})
	}
}

// "*.d.test" and "d.test" both through DNS-01: two values at
// _acme-challenge.d.test at once, both validated, through either provider.
func TestObtainWildcardAndApexDNS01(t *testing.T) {
	for _, provider := range []string{"dnsupdate", "exec"} {
		t.Run(provider, func(t *testing.T) {
			e := wildEnv(t)
			dnsProvidersAt(t, e.dns.Addr())
			c := e.client(func(cfg *Config) {
				cfg.Challenge = ChallengeConfig{Type: DNS01, DNSProvider: provider, Resolvers: []string{e.dns.Addr()}, PropagationTimeout: 10 * time.Second}
			})
			// Pebble validates as soon as a challenge is triggered: hold the
			// TXT answers back until both values are published, so that with
			// a provider that replaces the record set the first validation
			// sees only the second value.
			e.dns.SetDelay("_acme-challenge.d.test", 300*time.Millisecond)
			res, err := e.obtain(c, Request{CertID: "c1", Names: []string{"*.d.test", "d.test"}, Inventory: inventory("d.test")})
			if err != nil {
				t.Fatalf("%v (%+v)", err, res)
			}
			if len(res.Dropped) > 0 || res.Orders != 1 {
				t.Errorf("%d orders, dropped %+v; want one order, nothing dropped", res.Orders, res.Dropped)
			}
			e.verify(res.Cert, "x.d.test", "d.test")
		})
	}
}

// A wildcard without a DNS-01 provider cannot be validated: Obtain says so
// before it registers an account or orders anything.
func TestObtainWildcardNeedsDNS01(t *testing.T) {
	e := wildEnv(t)
	c := e.client(nil)
	res, err := e.obtain(c, Request{CertID: "c1", Names: wildNames, Inventory: inventory("d.test", "mx.other.test")})
	var se *ChallengeSetupError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "*.d.test") || !strings.Contains(err.Error(), "dns-01") {
		t.Fatalf("err = %v (%+v); want a challenge setup error naming the wildcard and dns-01", err, res)
	}
	if n := e.ca.NewAccounts(); n != 0 {
		t.Errorf("%d accounts registered", n)
	}
	if n := len(e.ca.Orders()); n != 0 {
		t.Errorf("%d orders placed", n)
	}
}

// The preflight judges a wildcard by its parent's CAA with RFC 8659's
// issuewild (section 4.3: when present, issuewild alone decides for a
// wildcard; otherwise issue does), for dns-01 (RFC 8657
// validationmethods), and by whether the parent's lookup answered. It
// never looks up "*" itself.
func TestPreflightWildcard(t *testing.T) {
	const ca = "pebble.letsencrypt.org"
	tests := []struct {
		name    string
		records []string
		lookup  string // the parent's Name.Error
		code    string // "" kept
	}{
		{"no CAA", nil, "", ""},
		{"issue allows", []string{`0 issue "` + ca + `"`}, "", ""},
		{"issue forbids, no issuewild", []string{`0 issue "sectigo.com"`}, "", DropCAAForbids},
		{"issuewild forbids", []string{`0 issue "` + ca + `"`, `0 issuewild ";"`}, "", DropCAAForbids},
		{"issuewild allows over issue", []string{`0 issue ";"`, `0 issuewild "` + ca + `"`}, "", ""},
		{"issuewild http-01 only", []string{`0 issuewild "` + ca + `; validationmethods=http-01"`}, "", DropCAAMethod},
		{"issue dns-01 only", []string{`0 issue "` + ca + `; validationmethods=dns-01"`}, "", ""},
		{"parent lookup failed", nil, "SERVFAIL", DropLookupFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := wildEnv(t)
			t.Setenv("DNSUPDATE_NAMESERVER", e.dns.Addr())
			c := e.client(func(cfg *Config) { cfg.Challenge.DNSProvider = "dnsupdate" })
			inv := inventory("d.test", "mail.d.test")
			parent := &inv.Names[0]
			parent.CAA = model.CAAVerdict{At: "d.test", Records: tt.records}
			parent.CAAOK = caaAllows(tt.records, ca)
			parent.Error = tt.lookup
			e.dns.ResetCounts()
			res, err := c.Obtain(context.Background(), Request{CertID: "c1", Names: []string{"*.d.test", "mail.d.test"}, Inventory: inv, DryRun: true})
			if err != nil && tt.code == "" {
				t.Fatal(err)
			}
			var code string
			for _, d := range res.Dropped {
				if d.Name == "*.d.test" {
					code = d.Code
					if tt.code == DropCAAForbids && !strings.Contains(d.Reason, "CAA") {
						t.Errorf("reason %q", d.Reason)
					}
				}
			}
			if code != tt.code {
				t.Errorf("wildcard: code %q, want %q (dropped %+v)", code, tt.code, res.Dropped)
			}
			for k := range e.dns.QueryCounts() {
				if strings.Contains(k, "*") {
					t.Errorf("the preflight asked DNS for %s", k)
				}
			}
		})
	}
}

// The dnsupdate provider signs its updates with the TSIG key from
// DNSUPDATE_TSIG_KEY, _SECRET and _ALGORITHM, or from DNSUPDATE_TSIG_FILE
// (tsig-keygen's format), as lego's does; a server that does not take the
// key answers NOTAUTH, and the error says so.
func TestDNSUpdateTSIG(t *testing.T) {
	const key, secret = "certplan-update.", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="
	d := dnstest.New()
	if err := d.AddZone("d.test", pebbletest.TestZone); err != nil {
		t.Fatal(err)
	}
	d.SetUpdateKey(key, secret)
	if err := d.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	keyFile := filepath.Join(t.TempDir(), "update.key")
	if err := os.WriteFile(keyFile, []byte("key \"certplan-update\" {\n\talgorithm hmac-sha512;\n\tsecret \""+secret+"\";\n};\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		env  map[string]string
		err  string
	}{
		{"variables", map[string]string{"DNSUPDATE_TSIG_KEY": key, "DNSUPDATE_TSIG_SECRET": secret, "DNSUPDATE_TSIG_ALGORITHM": "hmac-sha256"}, ""},
		{"key file", map[string]string{"DNSUPDATE_TSIG_FILE": keyFile}, ""},
		{"wrong secret", map[string]string{"DNSUPDATE_TSIG_KEY": key, "DNSUPDATE_TSIG_SECRET": "b3RoZXItc2VjcmV0"}, "NOTAUTH"},
		{"unsigned", nil, "NOTAUTH"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DNSUPDATE_NAMESERVER", d.Addr())
			for _, k := range []string{"DNSUPDATE_TSIG_KEY", "DNSUPDATE_TSIG_SECRET", "DNSUPDATE_TSIG_ALGORITHM", "DNSUPDATE_TSIG_FILE"} {
				t.Setenv(k, tt.env[k])
			}
			p, err := DNSProvider("dnsupdate")
			if err != nil {
				t.Fatal(err)
			}
			err = p.Present(ctx, "mail.d.test", "token", "key-auth")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := txtValues(t, d.Addr(), "_acme-challenge.mail.d.test"); len(got) != 1 {
				t.Fatalf("TXT %q", got)
			}
			if err := p.CleanUp(ctx, "mail.d.test", "token", "key-auth"); err != nil {
				t.Fatal(err)
			}
			if got := txtValues(t, d.Addr(), "_acme-challenge.mail.d.test"); len(got) != 0 {
				t.Fatalf("after cleanup: TXT %q", got)
			}
		})
	}
}

// dnsProvidersAt points both DNS-01 providers at the test DNS server at
// addr: dnsupdate by its variable, exec by running this test binary as
// the script (see providers_test.go).
func dnsProvidersAt(t *testing.T, addr string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DNSUPDATE_NAMESERVER", addr)
	t.Setenv("EXEC_PATH", self)
	t.Setenv("CERTPLAN_TEST_EXEC_DNS", addr)
}
