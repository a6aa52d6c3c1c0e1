package acme

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/internal/pebbletest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
)

type env struct {
	t     testing.TB
	dns   *dnstest.Server
	ca    *pebbletest.CA
	store *store.Store
	cfg   Config
}

func newEnv(t *testing.T) *env { return newEnvTB(t) }

func newEnvTB(t testing.TB) *env {
	t.Helper()
	var opts pebbletest.Options
	if os.Getenv("PEBBLE_LOG") != "" {
		opts.Log = os.Stderr
	}
	var extra []string
	for i := 0; i < 20; i++ {
		extra = append(extra, "n"+strconv.Itoa(i)+".d.test. 60 IN A 127.0.0.2")
	}
	d, ca := pebbletest.WithDNS(t, "d.test", pebbletest.TestZone, extra, opts)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Lock(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := Config{
		CA:         ca.DirectoryURL,
		CARootsPEM: ca.RootsPEM,
		Email:      "hostmaster@d.test",
		AgreeTOS:   true,
		Profile:    "classic",
		Challenge: ChallengeConfig{
			Type:          HTTP01,
			HTTPListen:    "127.0.0.2:" + strconv.Itoa(ca.HTTPPort), // not ":port": that would answer on 127.0.0.77 too
			SelfCheckPort: ca.HTTPPort,
		},
		PollInterval: 50 * time.Millisecond,
		Timeout:      time.Minute,
		Store:        st,
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return &env{t: t, dns: d, ca: ca, store: st, cfg: cfg}
}

func (e *env) client(mod func(*Config)) *Client {
	e.t.Helper()
	cfg := e.cfg
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// inventory says every name of the test zone is here with CAA allowing
// Pebble, except away.d.test which points elsewhere.
func inventory(names ...string) *model.Inventory {
	inv := &model.Inventory{CAIdentifier: "pebble.letsencrypt.org", ServerIPs: []string{"127.0.0.2"}}
	for _, n := range names {
		nm := model.Name{Name: n, Addresses: []string{"127.0.0.2"}, Here: model.HereAll, CAAOK: true}
		if n == "away.d.test" {
			nm.Addresses, nm.Here = []string{"127.0.0.77"}, model.HereNone
		}
		inv.Names = append(inv.Names, nm)
	}
	slices.SortFunc(inv.Names, func(a, b model.Name) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return inv
}

func (e *env) verify(c *store.Cert, names ...string) {
	e.t.Helper()
	roots, inter := e.ca.IssuerPool()
	chain, err := x509.ParseCertificate(mustDER(e.t, c.ChainPEM))
	if err == nil {
		inter.AddCert(chain)
	}
	for _, n := range names {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: roots, Intermediates: inter}); err != nil {
			e.t.Errorf("certificate does not verify for %s: %v", n, err)
		}
	}
}

// stored is an Obtain result and the certificate the test stored from it,
// as apply does: acme stores nothing.
type stored struct {
	*Result
	Cert *store.Cert
}

func (e *env) obtain(c *Client, req Request) (*stored, error) {
	res, err := c.Obtain(context.Background(), req)
	if res == nil {
		return nil, err
	}
	s := &stored{Result: res}
	if err != nil || res.Obtained == nil {
		return s, err
	}
	if s.Cert, err = e.store.SaveCert(req.CertID, res.Obtained.Files, res.Obtained.Meta); err != nil {
		return s, err
	}
	if res.Obtained.FromNextKey {
		err = e.store.DropNextKey(req.CertID)
	}
	return s, err
}

func mustDER(t testing.TB, pemBytes []byte) []byte {
	c, err := store.ParseLeaf(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.Raw
}

func TestObtainHTTP01(t *testing.T) {
	e := newEnv(t)
	c := e.client(nil)
	names := []string{"mail.d.test", "smtp.d.test", "away.d.test"}
	res, err := e.obtain(c, Request{CertID: "default-127.0.0.2", Names: names, Inventory: inventory(names...), PlanID: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Issued, []string{"mail.d.test", "smtp.d.test"}; !slices.Equal(got, want) {
		t.Errorf("issued %v, want %v", got, want)
	}
	if len(res.Dropped) != 1 || res.Dropped[0].Name != "away.d.test" || res.Dropped[0].Code != DropPointsElsewhere || res.Dropped[0].Stage != StagePreflight {
		t.Errorf("dropped %+v, want away.d.test points-elsewhere in preflight", res.Dropped)
	}
	if res.Orders != 1 {
		t.Errorf("orders %d, want 1", res.Orders)
	}
	e.verify(res.Cert, "mail.d.test", "smtp.d.test")
	got, err := e.store.LoadCert("default-127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	if got.Meta.PlanID != "p1" || got.Meta.ARICertID == "" || got.Meta.KeyType != "ec256" {
		t.Errorf("meta %+v", got.Meta)
	}
	if o := e.ca.Orders(); len(o) != 1 || o[0].Replaces != "" || o[0].Profile != "classic" {
		t.Errorf("orders at the CA %+v", o)
	}
}

func TestCAFailureDropsAndRetries(t *testing.T) {
	e := newEnv(t)
	c := e.client(nil)
	names := []string{"mail.d.test", "late.d.test"}
	// The inventory still says late.d.test is here, but DNS changed after
	// it was taken: the preflight passes, the CA fails it.
	if err := pebbletest.PointElsewhere(e.dns, "late.d.test"); err != nil {
		t.Fatal(err)
	}
	res, err := e.obtain(c, Request{CertID: "c1", Names: names, Inventory: inventory(names...)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Issued, []string{"mail.d.test"}) {
		t.Errorf("issued %v, want [mail.d.test]", res.Issued)
	}
	if len(res.Dropped) != 1 || res.Dropped[0].Name != "late.d.test" || res.Dropped[0].Stage != StageCA {
		t.Errorf("dropped %+v, want late.d.test at the CA", res.Dropped)
	}
	if res.Orders != 2 {
		t.Errorf("orders %d, want 2", res.Orders)
	}
	t.Logf("dropped: %+v", res.Dropped)
	e.verify(res.Cert, "mail.d.test")
}

// TestCheck: Request.Check is asked before each order with every name
// dropped so far, and its error stops Obtain before the order; Obtain
// stores nothing itself.
func TestCheck(t *testing.T) {
	e := newEnv(t)
	c := e.client(nil)
	refuse := errors.New("refused by the caller's policy")
	var asked [][]Dropped
	check := func(name string) func([]Dropped) error {
		return func(ds []Dropped) error {
			asked = append(asked, ds)
			for _, d := range ds {
				if d.Name == name {
					return refuse
				}
			}
			return nil
		}
	}
	// In the preflight: no order is placed.
	names := []string{"mail.d.test", "away.d.test"}
	res, err := c.Obtain(context.Background(), Request{CertID: "c1", Names: names, Check: check("away.d.test"), Inventory: inventory(names...)})
	if !errors.Is(err, refuse) || res.Orders != 0 || len(asked) != 1 || len(asked[0]) != 1 || asked[0][0].Stage != StagePreflight {
		t.Fatalf("preflight: got %v after %d orders, asked %+v; want the check's error before any order", err, res.Orders, asked)
	}
	// At the CA: asked before the retry, which is not placed.
	asked = nil
	names = []string{"mail.d.test", "late.d.test"}
	if err := pebbletest.PointElsewhere(e.dns, "late.d.test"); err != nil {
		t.Fatal(err)
	}
	res, err = c.Obtain(context.Background(), Request{CertID: "c1", Names: names, Check: check("late.d.test"), Inventory: inventory(names...)})
	if !errors.Is(err, refuse) || res.Orders != 1 {
		t.Fatalf("ca: got %v after %d orders, want the check's error and no retry", err, res.Orders)
	}
	if len(asked) != 2 || len(asked[1]) != 1 || asked[1][0].Name != "late.d.test" || asked[1][0].Stage != StageCA {
		t.Errorf("asked %+v, want nothing dropped before the order, then late.d.test at the CA", asked)
	}
	// Agreeing: the retry is placed, and the certificate returned, not stored.
	res, err = c.Obtain(context.Background(), Request{CertID: "c1", Names: names, Check: check("none"), Inventory: inventory(names...)})
	if err != nil || res.Orders != 2 || res.Obtained == nil || !slices.Equal(res.Issued, []string{"mail.d.test"}) {
		t.Fatalf("got %v, %+v; want mail.d.test issued on the retry", err, res)
	}
	if _, err := e.store.LoadCert("c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Obtain stored a certificate: %v", err)
	}
}

func TestRenewalReplacesAndReusesKey(t *testing.T) {
	e := newEnv(t)
	c := e.client(nil)
	names := []string{"mail.d.test", "smtp.d.test"}
	req := Request{CertID: "c1", Names: names, Inventory: inventory(names...)}
	first, err := e.obtain(c, req)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.RenewalInfo(context.Background(), first.Cert.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	if info.CertID != first.Cert.Meta.ARICertID || !info.Start.Before(info.End) || !info.End.Before(first.Cert.Leaf.NotAfter.Add(time.Second)) {
		t.Errorf("renewal info %+v for a certificate valid until %v", info, first.Cert.Leaf.NotAfter)
	}

	req.ReuseKey = true
	second, err := e.obtain(c, req)
	if err != nil {
		t.Fatal(err)
	}
	if second.Replaced != first.Cert.Meta.ARICertID || second.Cert.Meta.Replaced != first.Cert.Meta.ARICertID {
		t.Errorf("replaced %q (meta %q), want %q", second.Replaced, second.Cert.Meta.Replaced, first.Cert.Meta.ARICertID)
	}
	orders := e.ca.Orders()
	if len(orders) != 2 || orders[1].Replaces != first.Cert.Meta.ARICertID {
		t.Errorf("orders at the CA %+v, want the second to replace %s", orders, first.Cert.Meta.ARICertID)
	}
	if second.Cert.Meta.SPKISHA256 != first.Cert.Meta.SPKISHA256 {
		t.Errorf("key reuse changed the SPKI: %s -> %s", first.Cert.Meta.SPKISHA256, second.Cert.Meta.SPKISHA256)
	}
	if second.Cert.Meta.Serial == first.Cert.Meta.Serial || second.Cert.Meta.Version == first.Cert.Meta.Version {
		t.Errorf("not a new certificate: %+v", second.Cert.Meta)
	}

	// Without ReuseKey the key changes.
	req.ReuseKey = false
	third, err := e.obtain(c, req)
	if err != nil {
		t.Fatal(err)
	}
	if third.Cert.Meta.SPKISHA256 == second.Cert.Meta.SPKISHA256 {
		t.Error("a new key was expected")
	}
	if third.Replaced != second.Cert.Meta.ARICertID {
		t.Errorf("third replaced %q, want %q", third.Replaced, second.Cert.Meta.ARICertID)
	}
}

func TestObtainDNS01(t *testing.T) {
	e := newEnv(t)
	t.Setenv("DNSUPDATE_NAMESERVER", e.dns.Addr())
	t.Setenv("DNSUPDATE_PROPAGATION_TIMEOUT", "10")
	c := e.client(func(cfg *Config) {
		cfg.Challenge = ChallengeConfig{Type: DNS01, DNSProvider: "dnsupdate", Resolvers: []string{e.dns.Addr()}, PropagationTimeout: 10 * time.Second}
	})
	// away.d.test points elsewhere, which does not matter for DNS-01.
	names := []string{"mail.d.test", "away.d.test"}
	res, err := e.obtain(c, Request{CertID: "c1", Names: names, Inventory: inventory(names...)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Issued, []string{"away.d.test", "mail.d.test"}) {
		t.Errorf("issued %v", res.Issued)
	}
	e.verify(res.Cert, names...)
}

func TestObtainTLSALPN01(t *testing.T) {
	e := newEnv(t)
	c := e.client(func(cfg *Config) {
		cfg.Challenge = ChallengeConfig{Type: TLSALPN01, TLSListen: "127.0.0.2:" + strconv.Itoa(e.ca.TLSPort)}
		cfg.KeyType = RSA2048
	})
	res, err := e.obtain(c, Request{CertID: "c1", Names: []string{"imap.d.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Cert.Meta.KeyType != "rsa2048" {
		t.Errorf("key type %s", res.Cert.Meta.KeyType)
	}
	e.verify(res.Cert, "imap.d.test")
}

func TestObtainWebrootMap(t *testing.T) {
	e := newEnv(t)
	rootD, other := t.TempDir(), t.TempDir()
	srv := &http.Server{Handler: http.FileServer(http.Dir(rootD))}
	ln, err := net.Listen("tcp", "127.0.0.2:"+strconv.Itoa(e.ca.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := e.client(func(cfg *Config) {
		cfg.Challenge.HTTPListen = ""
		// mail.d.test is served from rootD (through d.test); smtp.d.test
		// has its own docroot, which this web server does not serve: the
		// self-check catches it.
		cfg.Challenge.WebrootMap = map[string]string{"d.test": rootD, "smtp.d.test": other}
	})
	names := []string{"mail.d.test", "smtp.d.test"}
	res, err := e.obtain(c, Request{CertID: "c1", Names: names, Inventory: inventory(names...)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Issued, []string{"mail.d.test"}) || len(res.Dropped) != 1 || res.Dropped[0].Code != DropSelfCheck {
		t.Errorf("issued %v dropped %+v", res.Issued, res.Dropped)
	}
	if ents, _ := os.ReadDir(filepath.Join(rootD, ".well-known", "acme-challenge")); len(ents) != 0 {
		t.Errorf("challenge files left behind: %v", ents)
	}
}

func TestPreflightCAA(t *testing.T) {
	e := newEnv(t)
	c := e.client(nil)
	names := []string{"mail.d.test", "smtp.d.test", "imap.d.test"}
	inv := inventory(names...)
	for i := range inv.Names {
		switch inv.Names[i].Name {
		case "smtp.d.test":
			inv.Names[i].CAAOK = false
			inv.Names[i].CAA = model.CAAVerdict{At: "d.test", Records: []string{`0 issue "sectigo.com"`}, Reason: `CAA at d.test allows only "sectigo.com"`}
		case "imap.d.test":
			inv.Names[i].CAA = model.CAAVerdict{At: "d.test", Records: []string{`0 issue "pebble.letsencrypt.org; validationmethods=dns-01"`}}
		}
	}
	res, err := e.obtain(c, Request{CertID: "c1", Names: names, Inventory: inv, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []Dropped{
		{Name: "imap.d.test", Stage: StagePreflight, Code: DropCAAMethod, Reason: "CAA at d.test: validationmethods=dns-01 excludes http-01"},
		{Name: "smtp.d.test", Stage: StagePreflight, Code: DropCAAForbids, Reason: `CAA at d.test allows only "sectigo.com"`},
	}
	if !slices.Equal(res.Dropped, want) || !slices.Equal(res.Issued, []string{"mail.d.test"}) || res.Orders != 0 {
		t.Errorf("got issued %v dropped %+v orders %d, want %+v", res.Issued, res.Dropped, res.Orders, want)
	}
}

func TestAccountReuseAndTOS(t *testing.T) {
	e := newEnv(t)
	// Without --agree-tos New connects (it registers nothing), and the first
	// order needs an account: ErrTOSNotAgreed, before anything is ordered.
	noTOS := e.client(func(c *Config) { c.AgreeTOS = false })
	if _, err := e.obtain(noTOS, Request{CertID: "c1", Names: []string{"mail.d.test"}}); !errors.Is(err, ErrTOSNotAgreed) {
		t.Fatalf("got %v, want ErrTOSNotAgreed", err)
	}
	if n, o := e.ca.NewAccounts(), len(e.ca.Orders()); n != 0 || o != 0 {
		t.Fatalf("%d newAccount and %d newOrder requests without --agree-tos", n, o)
	}
	a := e.client(nil)
	if a.HasAccount() {
		t.Fatal("an account before any registration")
	}
	if err := a.EnsureAccount(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := e.client(func(c *Config) { c.AgreeTOS = false; c.Challenge.Webroot = t.TempDir() })
	if a.AccountURI() == "" || a.AccountURI() != b.AccountURI() {
		t.Errorf("account %q then %q", a.AccountURI(), b.AccountURI())
	}
	if err := b.EnsureAccount(context.Background()); err != nil || e.ca.NewAccounts() != 1 {
		t.Errorf("reusing the stored account: %v, %d registrations", err, e.ca.NewAccounts())
	}
}

// TestDryRunRegistersNothing: a dry run against a CA with no account in the
// store runs the preflight (including the HTTP-01 self-check) without
// --agree-tos, registers no account, places no order and writes nothing;
// a name whose CAA pins an account is kept with a warning. A real run
// afterwards registers and issues.
func TestDryRunRegistersNothing(t *testing.T) {
	e := newEnv(t)
	names := []string{"mail.d.test", "smtp.d.test", "away.d.test"}
	inv := inventory(names...)
	for i := range inv.Names {
		if inv.Names[i].Name == "smtp.d.test" {
			inv.Names[i].CAA = model.CAAVerdict{At: "d.test", Records: []string{`0 issue "pebble.letsencrypt.org; accounturi=https://ca.test/acct/1"`}}
		}
	}
	before := listFiles(t, e.store.Dir())
	c := e.client(func(c *Config) { c.AgreeTOS = false })
	res, err := e.obtain(c, Request{CertID: "c1", Names: names, Inventory: inv, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Issued, []string{"mail.d.test", "smtp.d.test"}) || len(res.Dropped) != 1 || res.Dropped[0].Code != DropPointsElsewhere || res.Orders != 0 {
		t.Errorf("dry run: issued %v dropped %+v orders %d", res.Issued, res.Dropped, res.Orders)
	}
	if !slices.ContainsFunc(res.Warnings, func(w string) bool {
		return strings.HasPrefix(w, "smtp.d.test: CAA at d.test allows only a given account (accounturi): not checked")
	}) {
		t.Errorf("no accounturi warning: %q", res.Warnings)
	}
	if n, o := e.ca.NewAccounts(), len(e.ca.Orders()); n != 0 || o != 0 {
		t.Errorf("dry run: %d newAccount and %d newOrder requests", n, o)
	}
	if c.HasAccount() {
		t.Error("dry run: the client has an account")
	}
	if after := listFiles(t, e.store.Dir()); !slices.Equal(after, before) {
		t.Errorf("dry run wrote to the state dir: %v, was %v", after, before)
	}

	// The real run registers and issues; the pinned account is not this
	// one, so smtp.d.test is dropped now.
	c.Close() // its challenge listener
	real := e.client(nil)
	res, err = e.obtain(real, Request{CertID: "c1", Names: names, Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Issued, []string{"mail.d.test"}) || e.ca.NewAccounts() != 1 || len(e.ca.Orders()) != 1 {
		t.Errorf("real run: issued %v, %d registrations, %d orders", res.Issued, e.ca.NewAccounts(), len(e.ca.Orders()))
	}
	// A dry run now checks accounturi against the stored account.
	real.Close()
	again := e.client(func(c *Config) { c.AgreeTOS = false })
	res, err = e.obtain(again, Request{CertID: "c2", Names: names, Inventory: inv, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Issued, []string{"mail.d.test"}) || !slices.ContainsFunc(res.Dropped, func(d Dropped) bool { return d.Name == "smtp.d.test" && d.Code == DropCAAMethod }) {
		t.Errorf("dry run with an account: issued %v dropped %+v", res.Issued, res.Dropped)
	}
}

// listFiles lists every path under dir, relative and sorted.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestRenewalWithCAFailureKeepsReplaces(t *testing.T) {
	e := newEnv(t)
	c := e.client(nil)
	names := []string{"mail.d.test", "late.d.test"}
	req := Request{CertID: "c1", Names: names, Inventory: inventory(names...)}
	first, err := e.obtain(c, req)
	if err != nil {
		t.Fatal(err)
	}
	// The renewal adds a name the CA cannot validate: the inventory says it
	// is here (so the preflight keeps it) but its DNS points elsewhere. A
	// fresh name, so that no authorization Pebble may reuse from the first
	// order (it reuses some even when told not to) lets it through.
	if err := e.dns.Add("fresh.d.test. 60 IN A 127.0.0.77"); err != nil {
		t.Fatal(err)
	}
	renew := append(slices.Clone(names), "fresh.d.test")
	res, err := e.obtain(c, Request{CertID: "c1", Names: renew, Inventory: inventory(renew...)})
	if err != nil {
		t.Fatal(err)
	}
	orders := e.ca.Orders()
	if len(orders) != 3 || orders[1].Replaces != first.Cert.Meta.ARICertID || orders[2].Replaces != first.Cert.Meta.ARICertID {
		t.Errorf("orders %+v: both renewal orders should replace %s", orders, first.Cert.Meta.ARICertID)
	}
	if res.Replaced != first.Cert.Meta.ARICertID || !slices.Equal(res.Issued, []string{"late.d.test", "mail.d.test"}) || res.Orders != 2 ||
		len(res.Dropped) != 1 || res.Dropped[0].Name != "fresh.d.test" {
		t.Errorf("result %+v", res)
	}
}

func TestProfileNameLimit(t *testing.T) {
	e := newEnv(t)
	c := e.client(func(cfg *Config) { cfg.Profile = "tlsserver"; cfg.SkipPreflight = true })
	var names []string
	for i := 0; i < 26; i++ {
		names = append(names, "x"+strconv.Itoa(i)+".d.test")
	}
	_, err := e.obtain(c, Request{CertID: "big", Names: names})
	var oe *OrderError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "more than 25") {
		t.Fatalf("got %v, want an OrderError about the name limit", err)
	}
}

func TestEAB(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hmac := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	ca, err := pebbletest.Start(ctx, pebbletest.Options{DNSAddr: e.dns.Addr(), RequireEAB: true, EABKeys: map[string]string{"kid-1": hmac}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.CA, cfg.CARootsPEM, cfg.Challenge = ca.DirectoryURL, ca.RootsPEM, ChallengeConfig{Webroot: t.TempDir()}
	c, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureAccount(ctx); err == nil {
		t.Fatal("registered without EAB at a CA that requires it")
	}
	c.Close()
	cfg.EABKeyID, cfg.EABHMAC = "kid-1", hmac
	if c, err = New(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureAccount(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestNextKeyAndARIOverride(t *testing.T) {
	e := newEnv(t)
	c := e.client(nil)
	req := Request{CertID: "c1", Names: []string{"mail.d.test"}, Inventory: inventory("mail.d.test")}
	first, err := e.obtain(c, req)
	if err != nil {
		t.Fatal(err)
	}
	// The CA wants it renewed now.
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := e.ca.SetRenewalInfo(first.Cert.Leaf, start, start.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	info, err := c.RenewalInfo(context.Background(), first.Cert.Leaf)
	if err != nil || !info.Start.Equal(start) {
		t.Fatalf("renewal info %+v %v, want start %v", info, err, start)
	}

	// A staged next key (published in TLSA beforehand) becomes current.
	k, _ := GenerateKey(EC256)
	kp, _ := EncodeKey(k)
	if err := e.store.SaveNextKey("c1", &store.NextKey{KeyPEM: kp, KeyType: "ec256", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	req.UseNextKey = true
	second, err := e.obtain(c, req)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cert.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
		t.Error("the staged next key was not used")
	}
	if _, err := e.store.LoadNextKey("c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("next key still staged: %v", err)
	}
}

// TestReplacesNeedsACommonName: a certificate id whose names all changed is
// ordered without "replaces" (RFC 9773 section 5 asks for a common name;
// Pebble and Boulder reject the order otherwise).
func TestReplacesNeedsACommonName(t *testing.T) {
	e := newEnv(t)
	c := e.client(nil)
	first, err := e.obtain(c, Request{CertID: "c1", Names: []string{"mail.d.test"}, Inventory: inventory("mail.d.test")})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.obtain(c, Request{CertID: "c1", Names: []string{"smtp.d.test"}, Inventory: inventory("smtp.d.test")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replaced != "" || res.Orders != 1 || !slices.Equal(res.Issued, []string{"smtp.d.test"}) {
		t.Errorf("result %+v, want smtp.d.test issued in one order, replacing nothing", res)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "no name in common") {
		t.Errorf("warnings %q", res.Warnings)
	}
	// One name in common: sent.
	names := []string{"smtp.d.test", "imap.d.test"}
	_, err = e.obtain(c, Request{CertID: "c1", Names: names, Inventory: inventory(names...)})
	if err != nil {
		t.Fatal(err)
	}
	if o := e.ca.Orders(); len(o) != 3 || o[1].Replaces != "" || o[2].Replaces == "" || o[2].Replaces == first.Cert.Meta.ARICertID {
		t.Errorf("orders at the CA %+v", o)
	}
}
