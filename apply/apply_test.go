package apply

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/internal/pebbletest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/probe"
	"github.com/certplan/certplan/store"
)

// env is a small shared host: DNS, Pebble, one SMTPS listener on 127.0.0.2
// that serves the certificates a deploy hook copies into deployDir (as a
// real server reads its files on reload), and a state directory.
type env struct {
	t         testing.TB
	dns       *dnstest.Server
	ca        *pebbletest.CA
	dir       string // state dir
	deployDir string
	mail      *mailtest.Server
	certs     *mailtest.Certs
	now       time.Time
	cfg       acme.Config
}

func newEnv(t *testing.T) *env { return newEnvTB(t) }

func newEnvTB(t testing.TB) *env {
	t.Helper()
	d, ca := pebbletest.WithDNS(t, "d.test", pebbletest.TestZone, nil, pebbletest.Options{})

	e := &env{t: t, dns: d, ca: ca, dir: t.TempDir(), deployDir: t.TempDir(), now: time.Now().UTC().Truncate(time.Second)}
	// Today the server has a self-signed certificate for its own name.
	self, err := mailtest.SelfSigned(mailtest.CertSpec{Names: []string{"server.d.test"}})
	if err != nil {
		t.Fatal(err)
	}
	e.certs = mailtest.NewCerts(self)
	e.mail, err = mailtest.Start(mailtest.Config{Addr: "127.0.0.2:0", Protocol: model.ProtoSMTPS, Certs: e.certs, Hostname: "server.d.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.mail.Close() })
	stop := make(chan struct{})
	done := make(chan struct{})
	go e.watch(stop, done)
	t.Cleanup(func() { close(stop); <-done })

	e.cfg = acme.Config{
		CA:         ca.DirectoryURL,
		CARootsPEM: ca.RootsPEM,
		AgreeTOS:   true,
		Profile:    "classic",
		Challenge: acme.ChallengeConfig{
			Type:          acme.HTTP01,
			HTTPListen:    "127.0.0.2:" + strconv.Itoa(ca.HTTPPort),
			SelfCheckPort: ca.HTTPPort,
		},
		PollInterval: 50 * time.Millisecond,
		Timeout:      time.Minute,
	}
	return e
}

// watch reloads the listener's certificates from deployDir: default.pem is
// the default, every other *.pem an SNI certificate.
func (e *env) watch(stop, done chan struct{}) {
	defer close(done)
	var last string
	for {
		select {
		case <-stop:
			return
		case <-time.After(30 * time.Millisecond):
		}
		files, _ := filepath.Glob(filepath.Join(e.deployDir, "*.pem"))
		sig := ""
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				sig += f + fi.ModTime().String()
			}
		}
		if sig == last {
			continue
		}
		var def *tls.Certificate
		var sni []*tls.Certificate
		ok := true
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				ok = false
				break
			}
			c, err := tls.X509KeyPair(b, b)
			if err != nil {
				ok = false // a half-written file: try again
				break
			}
			if filepath.Base(f) == "default.pem" {
				def = &c
			} else {
				sni = append(sni, &c)
			}
		}
		if !ok {
			continue
		}
		last = sig
		if def == nil {
			self, _ := mailtest.SelfSigned(mailtest.CertSpec{Names: []string{"server.d.test"}})
			def = self
		}
		e.certs.Set(def, sni...)
	}
}

// hook deploys like a Postfix hook would: the default certificate and SNI
// certificates, each as one combined file; a retired SNI certificate's file
// goes, a retired default's stays. With HOOK_LOG set it appends
// "<change> <id>" to that file.
const hook = `set -e
[ -z "${HOOK_LOG:-}" ] || echo "$CERTPLAN_CHANGE $CERTPLAN_CERT_ID" >>"$HOOK_LOG"
if [ "$CERTPLAN_CHANGE" = retired ]; then
	[ -n "$CERTPLAN_DEFAULT_IPS" ] || rm -f "$DEPLOY_DIR/$CERTPLAN_CERT_ID.pem"
	echo "retired $CERTPLAN_CERT_ID: $CERTPLAN_NAMES (default on: $CERTPLAN_DEFAULT_IPS)"
	exit 0
fi
if [ -n "$CERTPLAN_DEFAULT_IPS" ]; then f=default.pem; else f="$CERTPLAN_CERT_ID.pem"; fi
cp "$CERTPLAN_CERT_DIR/combined.pem" "$DEPLOY_DIR/.tmp" && mv "$DEPLOY_DIR/.tmp" "$DEPLOY_DIR/$f"
echo "deployed $CERTPLAN_CERT_ID ($CERTPLAN_CHANGE): $CERTPLAN_NAMES"`

func (e *env) options(plan *model.Plan, mode Mode, mod ...func(*Options)) Options {
	e.t.Helper()
	st, err := store.Open(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	roots, _ := e.ca.IssuerPool()
	now := e.now
	o := Options{
		Mode:  mode,
		Plan:  plan,
		Store: st,
		Connect: func(ctx context.Context) (CA, error) {
			cfg := e.cfg
			cfg.Store = st
			cfg.Now = func() time.Time { return now }
			return acme.New(ctx, cfg)
		},
		IssuerRoots: roots,
		Hooks:       []string{"DEPLOY_DIR=" + e.deployDir + "\n" + hook},
		Verify:      &Verify{Prober: probe.New(probe.Config{Roots: roots, Timeout: 3 * time.Second, Now: func() time.Time { return now }}), Ports: []probe.Port{{Protocol: model.ProtoSMTPS, Port: e.mail.Port()}}, Wait: 3 * time.Second},
		Now:         func() time.Time { return now },
	}
	if testing.Verbose() {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, m := range mod {
		m(&o)
	}
	return o
}

func (e *env) run(plan *model.Plan, mode Mode, mod ...func(*Options)) *Report {
	e.t.Helper()
	rep, err := Run(context.Background(), e.options(plan, mode, mod...))
	if err != nil {
		e.t.Fatalf("run: %v", err)
	}
	return rep
}

func (e *env) stored(id string) *store.Cert {
	e.t.Helper()
	st, _ := store.Open(e.dir)
	c, err := st.LoadCert(id)
	if err != nil {
		e.t.Fatalf("%s: %v", id, err)
	}
	return c
}

// plan builds a plan: a default certificate for 127.0.0.2 and SNI
// certificates, as the planner would.
func plan(id string, certs ...model.PlannedCert) *model.Plan {
	p := &model.Plan{Header: model.Header{Kind: model.KindPlan, Version: model.Version}, ID: id}
	for _, c := range certs {
		slices.Sort(c.Names)
		if c.IPs == nil {
			c.IPs = []string{"127.0.0.2"}
		}
		p.Certificates = append(p.Certificates, c)
	}
	return p
}

func defCert(names ...string) model.PlannedCert {
	return model.PlannedCert{ID: "default-127.0.0.2", Names: names, Default: true}
}

func sniCert(id string, names ...string) model.PlannedCert {
	return model.PlannedCert{ID: id, Names: names}
}

func statuses(r *Report) string {
	var s []string
	for _, c := range r.Certificates {
		s = append(s, c.ID+"="+c.Status)
	}
	return strings.Join(s, " ")
}

func checkVerified(t *testing.T, r *Report, wantRows int) {
	t.Helper()
	if !r.Verified || len(r.Verification) != wantRows {
		t.Fatalf("verification: verified=%v, %d rows, want %d: %+v", r.Verified, len(r.Verification), wantRows, r.Verification)
	}
	for _, v := range r.Verification {
		if !v.OK() {
			t.Errorf("verification row not ok: %+v", v)
		}
	}
}

// TestLifecycle is the renewal loop, one step after another against one
// CA: first issuance, a no-op run, a domain added, a domain removed, and the
// clock moved into the CA's renewal window.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	p1 := plan("p1", defCert("mail.d.test", "smtp.d.test"), sniCert("sni-imap.d.test", "imap.d.test"))

	// First run issues both, deploys, verifies.
	r := e.run(p1, ModeRenew)
	if got := statuses(r); got != "default-127.0.0.2=issued sni-imap.d.test=issued" {
		t.Fatalf("first run: %s", got)
	}
	if r.Result() != ResultOK {
		t.Fatalf("first run result %v: %+v", r.Result(), r)
	}
	for _, c := range r.Certificates {
		if len(c.Hooks) != 1 || !c.Hooks[0].OK || !strings.Contains(c.Hooks[0].Output, "deployed "+c.ID+" (new)") {
			t.Errorf("%s hooks: %+v", c.ID, c.Hooks)
		}
	}
	// mail and smtp on the default: new both ways; imap: new with SNI,
	// SNI-only without (the default does not list it).
	checkVerified(t, r, 3)
	for _, v := range r.Verification {
		want := VerifyNew
		if v.Name == "imap.d.test" {
			want = VerifySNIOnly
		}
		if v.WithSNI != VerifyNew || v.WithoutSNI != want {
			t.Errorf("%s: with SNI %s, without %s (want new, %s)", v.Name, v.WithSNI, v.WithoutSNI, want)
		}
	}
	def1, sni1 := e.stored("default-127.0.0.2"), e.stored("sni-imap.d.test")
	orders := len(e.ca.Orders())

	// An immediate second run does nothing, and does not contact the CA
	// for orders.
	r = e.run(p1, ModeRenew)
	if !r.Quiet() || r.Result() != ResultOK || r.Verified {
		t.Fatalf("second run: %s, quiet %v, result %v", statuses(r), r.Quiet(), r.Result())
	}
	if n := len(e.ca.Orders()); n != orders {
		t.Fatalf("second run placed %d orders", n-orders)
	}

	// A domain's name added to the SNI certificate: only it is reissued,
	// with "replaces".
	p2 := plan("p2", defCert("mail.d.test", "smtp.d.test"), sniCert("sni-imap.d.test", "imap.d.test", "late.d.test"))
	r = e.run(p2, ModeRenew)
	if got := statuses(r); got != "default-127.0.0.2=unchanged sni-imap.d.test=issued" {
		t.Fatalf("domain added: %s", got)
	}
	if c := r.Certificates[1]; c.Action != planner.ActionReissue || c.Replaced != sni1.Meta.ARICertID || !strings.Contains(c.Hooks[0].Output, "(changed)") {
		t.Errorf("domain added: %+v", c)
	}
	if last := e.ca.Orders()[len(e.ca.Orders())-1]; last.Replaces != sni1.Meta.ARICertID {
		t.Errorf("order replaces %q, want %q", last.Replaces, sni1.Meta.ARICertID)
	}
	if got := e.stored("default-127.0.0.2").Meta.Serial; got != def1.Meta.Serial {
		t.Errorf("default certificate touched")
	}
	checkVerified(t, r, 2)

	// A name removed from the default: only the default shrinks.
	sni2 := e.stored("sni-imap.d.test")
	p3 := plan("p3", defCert("mail.d.test"), sniCert("sni-imap.d.test", "imap.d.test", "late.d.test"))
	r = e.run(p3, ModeRenew)
	if got := statuses(r); got != "default-127.0.0.2=issued sni-imap.d.test=unchanged" {
		t.Fatalf("domain removed: %s", got)
	}
	if got := e.stored("default-127.0.0.2").Meta.Names; !slices.Equal(got, []string{"mail.d.test"}) {
		t.Errorf("default names %v", got)
	}
	if got := e.stored("sni-imap.d.test").Meta.Serial; got != sni2.Meta.Serial {
		t.Errorf("SNI certificate touched")
	}

	// The clock moves 62 days on: the CA's renewal window (Pebble: a day
	// either side of two thirds of 90 days) is open for both.
	def3 := e.stored("default-127.0.0.2")
	e.now = e.now.Add(62 * 24 * time.Hour)
	r = e.run(p3, ModeRenew)
	if got := statuses(r); got != "default-127.0.0.2=issued sni-imap.d.test=issued" {
		t.Fatalf("renewal window: %s", got)
	}
	for _, c := range r.Certificates {
		if c.Action != planner.ActionRenew || c.Reason != planner.ReasonARIWindow {
			t.Errorf("%s: %s %s, want renew because of the ARI window", c.ID, c.Action, c.Reason)
		}
	}
	if r.Certificates[0].Replaced != def3.Meta.ARICertID {
		t.Errorf("renewal replaces %q, want %q", r.Certificates[0].Replaced, def3.Meta.ARICertID)
	}
	checkVerified(t, r, 3)

	// A plan without the SNI certificate retires it: its hook runs once
	// with CERTPLAN_CHANGE=retired and takes it out of the server, whose
	// clients asking for imap.d.test now get the default; the store moves
	// its files aside. (Back to the real clock: Pebble dated the renewed
	// certificates by it.)
	e.now = time.Now().UTC().Truncate(time.Second)
	sni4 := e.stored("sni-imap.d.test")
	p4 := plan("p4", defCert("mail.d.test"))
	r = e.run(p4, ModeRenew)
	if len(r.Retired) != 1 || r.Quiet() || r.Result() != ResultOK {
		t.Fatalf("retired: %+v", r.Retired)
	}
	rt := r.Retired[0]
	if rt.ID != "sni-imap.d.test" || rt.Status != RetireUndeployed || rt.Serial != sni4.Meta.Serial || len(rt.DefaultIPs) != 0 ||
		len(rt.Hooks) != 1 || !strings.Contains(rt.Hooks[0].Output, "retired sni-imap.d.test: imap.d.test late.d.test (default on: )") {
		t.Errorf("retired: %+v", rt)
	}
	if _, err := os.Stat(filepath.Join(rt.Dir, "current", "cert.pem")); err != nil {
		t.Errorf("the retired certificate's files: %v", err)
	}
	if st, _ := store.Open(e.dir); st != nil {
		if _, err := st.LoadCert("sni-imap.d.test"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the retired certificate is still current in the store: %v", err)
		}
	}
	e.waitServed(t, "imap.d.test", e.stored("default-127.0.0.2").Meta.Serial)
	if r = e.run(p4, ModeRenew); !r.Quiet() {
		t.Fatalf("retired again: %+v", r)
	}
}

// waitServed waits until the listener serves the certificate with serial
// to a client asking for sni.
func (e *env) waitServed(t *testing.T, sni, serial string) {
	t.Helper()
	p := probe.New(probe.Config{Timeout: 3 * time.Second})
	deadline := time.Now().Add(5 * time.Second)
	for {
		ep, err := p.Probe(context.Background(), probe.Target{IP: "127.0.0.2", Port: e.mail.Port(), Protocol: model.ProtoSMTPS, SNI: sni})
		if err == nil && ep.Leaf != nil && ep.Leaf.Serial == serial {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("SNI %q: served %v (%v), want serial %s", sni, ep, err, serial)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRetirement: a retired certificate is undeployed by its hooks before
// the deploys of the run, waits while a name of it is planned on a
// certificate that does not list it yet, and is undeployed again by the
// next run when a hook failed.
func TestRetirement(t *testing.T) {
	e := newEnv(t)
	hookLog := filepath.Join(t.TempDir(), "hooks.log")
	logged := func(o *Options) { o.Hooks[0] = "HOOK_LOG=" + hookLog + "\n" + o.Hooks[0] }
	readLog := func() string {
		b, _ := os.ReadFile(hookLog)
		os.Remove(hookLog)
		return strings.TrimSpace(string(b))
	}
	r := e.run(plan("p1", defCert("mail.d.test"), sniCert("sni-a", "imap.d.test", "late.d.test")), ModeRenew, logged)
	if r.Result() != ResultOK {
		t.Fatalf("first run: %+v", r)
	}
	readLog()
	a := e.stored("sni-a")

	// late.d.test moves to sni-b, whose order fails (away.d.test points
	// elsewhere and must be covered): sni-a is the certificate that still
	// serves late.d.test, so it stays deployed.
	bad := plan("p2", defCert("mail.d.test"), sniCert("sni-b", "away.d.test", "late.d.test"))
	bad.Certificates[1].MustCover = []string{"away.d.test"}
	r = e.run(bad, ModeRenew, logged)
	if len(r.Retired) != 1 || r.Retired[0].Status != RetireHeld || !strings.Contains(r.Retired[0].Message, "late.d.test is planned on sni-b") {
		t.Fatalf("held: %+v", r.Retired)
	}
	if got := readLog(); got != "" {
		t.Errorf("hooks ran: %s", got)
	}
	e.stored("sni-a")
	e.waitServed(t, "late.d.test", a.Meta.Serial)

	// Fixed: sni-b is issued, and sni-a retired, its hook first.
	good := plan("p3", defCert("mail.d.test"), sniCert("sni-b", "late.d.test"))
	r = e.run(good, ModeIssue, logged)
	if got := statuses(r); got != "default-127.0.0.2=unchanged sni-b=issued" {
		t.Fatalf("fixed: %s", got)
	}
	if len(r.Retired) != 1 || r.Retired[0].Status != RetireUndeployed {
		t.Fatalf("retired: %+v", r.Retired)
	}
	if got := readLog(); got != "retired sni-a\nnew sni-b" {
		t.Errorf("hook runs:\n%s\nwant the retirement first", got)
	}
	checkVerified(t, r, 1)
	e.waitServed(t, "late.d.test", e.stored("sni-b").Meta.Serial)
	e.waitServed(t, "imap.d.test", e.stored("default-127.0.0.2").Meta.Serial)

	// A retirement whose hook fails is run again by the next run, until
	// it succeeds; then nothing more.
	failing := func(o *Options) {
		o.Hooks = append(o.Hooks, `[ "$CERTPLAN_CHANGE" != retired ] || { echo "cannot reach the server" >&2; exit 1; }`)
	}
	p4 := plan("p4", defCert("mail.d.test"))
	for i := range 2 {
		r = e.run(p4, ModeRenew, failing)
		if len(r.Retired) != 1 || r.Retired[0].ID != "sni-b" || r.Retired[0].Status != RetireFailed || r.Result() != ResultPartial || r.Quiet() {
			t.Fatalf("failing retirement, run %d: %+v", i+1, r.Retired)
		}
		if h := r.Retired[0].Hooks; len(h) != 2 || !h[0].OK || h[1].OK || !strings.Contains(h[1].Error, "cannot reach the server") {
			t.Errorf("hooks: %+v", h)
		}
		e.stored("sni-b")
	}
	r = e.run(p4, ModeRenew)
	if len(r.Retired) != 1 || r.Retired[0].Status != RetireUndeployed || r.Result() != ResultOK {
		t.Fatalf("retirement after the fix: %+v", r.Retired)
	}
	if r = e.run(p4, ModeRenew); !r.Quiet() || len(r.Retired) != 0 {
		t.Fatalf("after the retirement: %+v", r)
	}
}

// TestRetiredDefault: a retired default certificate's hook gets the IPs it
// was the default for, and runs before the IP's new default is deployed.
func TestRetiredDefault(t *testing.T) {
	e := newEnv(t)
	hookLog := filepath.Join(t.TempDir(), "hooks.log")
	logged := func(o *Options) {
		o.Hooks[0] = "HOOK_LOG=" + hookLog + "\n" + o.Hooks[0]
		o.Verify.Wait = 500 * time.Millisecond
	}
	old := model.PlannedCert{ID: "default-old", Names: []string{"mail.d.test"}, Default: true}
	if r := e.run(plan("p1", old), ModeRenew, logged); r.Result() != ResultOK {
		t.Fatalf("first run: %+v", r)
	}
	os.Remove(hookLog)
	r := e.run(plan("p2", defCert("mail.d.test", "smtp.d.test")), ModeRenew, logged)
	if len(r.Retired) != 1 || !slices.Equal(r.Retired[0].DefaultIPs, []string{"127.0.0.2"}) || r.Retired[0].Status != RetireUndeployed {
		t.Fatalf("retired: %+v", r.Retired)
	}
	if !strings.Contains(r.Retired[0].Hooks[0].Output, "(default on: 127.0.0.2)") {
		t.Errorf("hook output: %s", r.Retired[0].Hooks[0].Output)
	}
	b, _ := os.ReadFile(hookLog)
	if got := strings.TrimSpace(string(b)); got != "retired default-old\nnew default-127.0.0.2" {
		t.Errorf("hook runs:\n%s", got)
	}
	checkVerified(t, r, 2)
}

// TestFailureBackoff: a failing order leaves the previous certificate
// served, runs no hook, and backs off; within the backoff nothing is tried,
// after it the order is tried again.
func TestFailureBackoff(t *testing.T) {
	e := newEnv(t)
	r := e.run(plan("p1", defCert("mail.d.test")), ModeRenew)
	if r.Result() != ResultOK {
		t.Fatalf("first run: %+v", r)
	}
	before := e.stored("default-127.0.0.2")

	// away.d.test points elsewhere and must be covered: the order fails.
	bad := plan("p2", defCert("mail.d.test", "away.d.test"))
	bad.Certificates[0].MustCover = []string{"away.d.test"}
	r = e.run(bad, ModeRenew)
	c := r.Certificates[0]
	if c.Status != StatusFailed || r.Result() != ResultFailed || len(c.Hooks) != 0 || r.Verified {
		t.Fatalf("failing run: %+v", r)
	}
	if !strings.Contains(c.Error, "away.d.test") || c.Failures != 1 || !c.NextCheck.Equal(e.now.Add(time.Minute)) {
		t.Errorf("failure: %+v", c)
	}
	if got := e.stored("default-127.0.0.2").Meta.Serial; got != before.Meta.Serial {
		t.Fatal("the previous certificate was replaced")
	}
	orders := len(e.ca.Orders())

	// 30 s later: within the backoff, nothing is tried.
	e.now = e.now.Add(30 * time.Second)
	r = e.run(bad, ModeRenew)
	if c := r.Certificates[0]; c.Status != StatusWaiting || c.Reason != planner.ReasonBackoff || !r.Quiet() || r.Result() != ResultOK {
		t.Fatalf("within backoff: %+v", r)
	}
	if len(e.ca.Orders()) != orders {
		t.Fatal("an order was placed within the backoff")
	}

	// After the minute: tried again, fails again, backs off 10 minutes.
	e.now = e.now.Add(time.Minute)
	r = e.run(bad, ModeRenew)
	if c := r.Certificates[0]; c.Status != StatusFailed || c.Failures != 2 || !c.NextCheck.Equal(e.now.Add(10*time.Minute)) {
		t.Fatalf("after backoff: %+v", r.Certificates[0])
	}
	if len(e.ca.Orders()) == orders {
		t.Fatal("no order after the backoff")
	}

	// `issue` ignores the backoff: an operator asked. The served
	// certificate is still the first one.
	r = e.run(bad, ModeIssue)
	if c := r.Certificates[0]; c.Status != StatusFailed || c.Failures != 3 {
		t.Fatalf("issue: %+v", c)
	}
	ep, err := probe.New(probe.Config{Timeout: 3 * time.Second}).Probe(context.Background(), probe.Target{IP: "127.0.0.2", Port: e.mail.Port(), Protocol: model.ProtoSMTPS})
	if err != nil || ep.Leaf == nil || ep.Leaf.Serial != before.Meta.Serial {
		t.Errorf("served: %v %+v, want serial %s", err, ep.Leaf, before.Meta.Serial)
	}
}

// TestConcurrentRuns: while a run holds the state directory, a second run
// gets store.ErrLocked at once and writes nothing.
func TestConcurrentRuns(t *testing.T) {
	e := newEnv(t)
	started := filepath.Join(t.TempDir(), "started")
	release := filepath.Join(t.TempDir(), "release")
	blocking := "touch " + started + "; while [ ! -e " + release + " ]; do sleep 0.05; done"
	p := plan("p1", defCert("mail.d.test"))
	var wg sync.WaitGroup
	var first *Report
	var firstErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		first, firstErr = Run(context.Background(), e.options(p, ModeRenew, func(o *Options) {
			o.Hooks = []string{blocking}
			o.Verify = nil
		}))
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first run's hook never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	orders := len(e.ca.Orders())
	_, err := Run(context.Background(), e.options(p, ModeIssue, func(o *Options) { o.Force = true }))
	if !errors.Is(err, store.ErrLocked) {
		t.Errorf("second run: %v, want ErrLocked", err)
	}
	if len(e.ca.Orders()) != orders {
		t.Error("the second run placed an order")
	}
	os.WriteFile(release, nil, 0o644)
	wg.Wait()
	if firstErr != nil || first.Certificates[0].Status != StatusIssued {
		t.Fatalf("first run: %v %+v", firstErr, first)
	}
	vs, _ := filepath.Glob(filepath.Join(e.dir, "certs", "default-127.0.0.2", "v*"))
	if len(vs) != 1 {
		t.Errorf("versions %v, want one", vs)
	}
}

// TestVerifyDetectsMissingDeploy: a hook that succeeds without deploying
// is caught by verification (partial), and the next run deploys again.
func TestVerifyDetectsMissingDeploy(t *testing.T) {
	e := newEnv(t)
	p := plan("p1", defCert("mail.d.test"))
	r := e.run(p, ModeIssue, func(o *Options) { o.Hooks = []string{"true"}; o.Verify.Wait = 500 * time.Millisecond })
	if r.Certificates[0].Status != StatusIssued || !r.Verified || r.Result() != ResultPartial {
		t.Fatalf("result %v: %+v", r.Result(), r)
	}
	v := r.Verification[0]
	if v.OK() || v.WithoutSNI != VerifyBad || !strings.Contains(v.WithoutSNIDetail, "server.d.test") {
		t.Fatalf("verification: %+v", v)
	}
	// The next run (nothing due) after the first redeploy backoff runs the
	// hooks again, and now it is served.
	if c := r.Certificates[0]; c.VerifyFailures != 1 || !c.RedeployAfter.Equal(e.now.Add(time.Minute)) {
		t.Errorf("redeploy: %d verification failures, after %v", c.VerifyFailures, c.RedeployAfter)
	}
	e.now = e.now.Add(2 * time.Minute)
	r = e.run(p, ModeRenew)
	if c := r.Certificates[0]; c.Status != StatusRedeployed || r.Result() != ResultOK {
		t.Fatalf("redeploy: %+v", r)
	}
	checkVerified(t, r, 1)
	if c := r.Certificates[0]; c.VerifyFailures != 0 || !c.RedeployAfter.IsZero() {
		t.Errorf("after a verified redeploy: %d verification failures, redeploy after %v", c.VerifyFailures, c.RedeployAfter)
	}
	if r = e.run(p, ModeRenew); !r.Quiet() {
		t.Fatalf("after redeploy: %+v", r)
	}
}

// TestVerifyRedeployBounded: hooks that succeed while verification keeps
// failing (a port the hooks do not manage) are run again at most
// MaxVerifyRedeploys times, spaced by the backoff; the runs in between and
// after are quiet.
func TestVerifyRedeployBounded(t *testing.T) {
	e := newEnv(t)
	p := plan("p1", defCert("mail.d.test"))
	runs := filepath.Join(t.TempDir(), "runs")
	counting := func(o *Options) {
		o.Hooks = []string{"echo run >>" + runs}
		o.Verify.Wait = 300 * time.Millisecond
	}
	hookRuns := func() int {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "run")
	}
	start := e.now
	r := e.run(p, ModeIssue, counting)
	if c := r.Certificates[0]; c.Status != StatusIssued || r.Result() != ResultPartial || c.VerifyFailures != 1 || !c.RedeployAfter.Equal(start.Add(time.Minute)) {
		t.Fatalf("issue: result %v: %+v", r.Result(), c)
	}
	steps := []struct {
		after    time.Duration
		redeploy bool
		failures int
		next     time.Duration // after a redeploy, the next one's delay (0: no more)
	}{
		{30 * time.Second, false, 1, time.Minute},
		{61 * time.Second, true, 2, 10 * time.Minute},
		{5 * time.Minute, false, 2, 10 * time.Minute},
		{12 * time.Minute, true, 3, 100 * time.Minute},
		{2 * time.Hour, true, 4, 0},
		{26 * time.Hour, false, 4, 0},
		{50 * time.Hour, false, 4, 0},
	}
	want, next := 1, start.Add(time.Minute)
	for _, s := range steps {
		e.now = start.Add(s.after)
		r := e.run(p, ModeRenew, counting)
		c := r.Certificates[0]
		if s.redeploy {
			want++
			if c.Status != StatusRedeployed || !r.Verified || r.Result() != ResultPartial {
				t.Fatalf("+%v: want a redeploy, verified and partial: %v %+v", s.after, r.Result(), c)
			}
		} else if c.Status != StatusUnchanged || !r.Quiet() || r.Result() != ResultOK || r.Verified {
			t.Fatalf("+%v: want quiet: %v %+v", s.after, r.Result(), c)
		}
		if s.redeploy {
			next = time.Time{}
			if s.next > 0 {
				next = e.now.Add(s.next)
			}
		}
		if c.VerifyFailures != s.failures || !c.RedeployAfter.Equal(next) {
			t.Errorf("+%v: %d verification failures, redeploy after %v; want %d, %v", s.after, c.VerifyFailures, c.RedeployAfter, s.failures, next)
		}
		if got := hookRuns(); got != want {
			t.Errorf("+%v: hooks ran %d times, want %d", s.after, got, want)
		}
	}
	if want != 1+MaxVerifyRedeploys {
		t.Fatalf("the steps redeploy %d times, want %d", want-1, MaxVerifyRedeploys)
	}

	// An operator's issue run deploys it again (the server may be fixed),
	// and verifies.
	r = e.run(p, ModeIssue, counting)
	if c := r.Certificates[0]; c.Status != StatusRedeployed || !r.Verified || c.VerifyFailures != 1+MaxVerifyRedeploys+1 || !c.RedeployAfter.IsZero() {
		t.Fatalf("issue after the redeploys stopped: %+v", c)
	}
	if got := hookRuns(); got != want+1 {
		t.Errorf("issue: hooks ran %d times, want %d", got, want+1)
	}

	// A new certificate, deployed for real, starts afresh.
	r = e.run(p, ModeIssue, func(o *Options) { o.Force = true })
	if c := r.Certificates[0]; c.Status != StatusIssued || c.VerifyFailures != 0 || !c.RedeployAfter.IsZero() || r.Result() != ResultOK {
		t.Fatalf("forced renewal: %v %+v", r.Result(), c)
	}
	checkVerified(t, r, 1)
}

// TestDryRun orders nothing and writes nothing: without --agree-tos and
// with no account in the store, it registers none. A real run afterwards
// registers the account and issues.
func TestDryRun(t *testing.T) {
	e := newEnv(t)
	e.cfg.AgreeTOS = false
	p := plan("p1", defCert("mail.d.test", "smtp.d.test"))
	for _, mode := range []Mode{ModeIssue, ModeRenew} {
		r := e.run(p, mode, func(o *Options) { o.DryRun = true })
		if c := r.Certificates[0]; c.Status != StatusWouldIssue || len(c.Issued) != 2 || len(c.Hooks) != 0 {
			t.Fatalf("%s dry run: %+v", mode, r)
		}
	}
	if n, o := e.ca.NewAccounts(), len(e.ca.Orders()); n != 0 || o != 0 {
		t.Fatalf("dry run: %d newAccount and %d newOrder requests", n, o)
	}
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		// Not even the lock: a dry run takes none.
		t.Errorf("dry run wrote %s in the state dir", ent.Name())
	}

	e.cfg.AgreeTOS = true
	r := e.run(p, ModeIssue)
	if c := r.Certificates[0]; c.Status != StatusIssued || r.Result() != ResultOK {
		t.Fatalf("real run: %+v", r)
	}
	if n, o := e.ca.NewAccounts(), len(e.ca.Orders()); n != 1 || o != 1 {
		t.Fatalf("real run: %d newAccount and %d newOrder requests", n, o)
	}
}

// TestFirstIssuanceBackoff: a certificate that was never issued and whose
// orders keep failing backs off like a renewal (1 minute, 10 minutes, ...)
// and honours the CA's Retry-After (a rate limit): runs within the hold do
// not contact the CA; after it the order is tried again. An operator's
// issue run does not wait.
func TestFirstIssuanceBackoff(t *testing.T) {
	e := newEnv(t)
	p := plan("p1", defCert("mail.d.test"))
	const id = "default-127.0.0.2"
	orders := func() int { return len(e.ca.Orders()) }
	step := func(what string, d time.Duration, mode Mode, status, reason string, failures int, next time.Duration, ordered bool) *CertOutcome {
		t.Helper()
		e.now = e.now.Add(d)
		before := orders()
		r := e.run(p, mode)
		c := &r.Certificates[0]
		if c.Status != status || (reason != "" && c.Reason != reason) || c.Failures != failures || (next != 0 && !c.NextCheck.Equal(e.now.Add(next))) {
			t.Fatalf("%s: status %s reason %s failures %d next %v (%s %s), want %s %s %d now+%v", what, c.Status, c.Reason, c.Failures, c.NextCheck, c.Message, c.Error, status, reason, failures, next)
		}
		if got := orders() - before; (got > 0) != ordered {
			t.Fatalf("%s: %d orders placed, want ordered=%v", what, got, ordered)
		}
		if status == StatusWaiting && (!r.Quiet() || r.Result() != ResultOK) {
			t.Errorf("%s: a run waiting out the hold is quiet and OK: %+v", what, r)
		}
		if status == StatusFailed && r.Result() != ResultFailed {
			t.Errorf("%s: result %v", what, r.Result())
		}
		return c
	}

	e.ca.FailOrders(2, pebbletest.OrderFault{Type: "serverInternal", Detail: "the CA is having a bad day"})
	c := step("first attempt", 0, ModeRenew, StatusFailed, planner.ReasonNoCert, 1, time.Minute, true)
	if !strings.Contains(c.Error, "the CA is having a bad day") {
		t.Errorf("error %q", c.Error)
	}
	c = step("within the first backoff", 30*time.Second, ModeRenew, StatusWaiting, planner.ReasonBackoff, 1, 30*time.Second, false)
	if c.Action != planner.ActionWait || !strings.HasPrefix(c.Message, "no certificate yet, but the last attempt failed: backing off until ") {
		t.Errorf("waiting: %s %q", c.Action, c.Message)
	}
	step("after the minute", 31*time.Second, ModeRenew, StatusFailed, planner.ReasonNoCert, 2, 10*time.Minute, true)
	step("within the second backoff", 5*time.Minute, ModeRenew, StatusWaiting, planner.ReasonBackoff, 2, 5*time.Minute, false)

	// A rate limit with Retry-After: 3 hours, longer than the backoff.
	e.ca.FailOrders(1, pebbletest.OrderFault{Type: "rateLimited", Detail: "too many new orders recently", RetryAfter: 3 * time.Hour})
	c = step("rate limited", 5*time.Minute, ModeRenew, StatusFailed, planner.ReasonNoCert, 3, 3*time.Hour, true)
	if !strings.Contains(c.Error, "too many new orders recently") {
		t.Errorf("error %q", c.Error)
	}
	st, _ := store.Open(e.dir)
	rs, err := st.LoadRenewal(id)
	if err != nil || rs.Failures != 3 || !rs.RetryAfter.Equal(e.now.Add(3*time.Hour)) || rs.LastError == "" {
		t.Fatalf("renewal state: %+v, %v", rs, err)
	}
	// Past the 100-minute backoff, the CA's Retry-After still holds.
	step("backoff over, Retry-After not", 2*time.Hour, ModeRenew, StatusWaiting, planner.ReasonCARetryAfter, 3, time.Hour, false)
	// After it: ordered again, and issued.
	step("after Retry-After", time.Hour, ModeRenew, StatusIssued, planner.ReasonNoCert, 0, 0, true)
	if rs, _ := st.LoadRenewal(id); rs.Failures != 0 || !rs.RetryAfter.IsZero() || !rs.BackoffUntil.IsZero() {
		t.Errorf("renewal state after issuance: %+v", rs)
	}
}

// TestFirstIssuanceIssueIgnoresBackoff: "certplan issue" is an operator's
// request: it orders a never-issued certificate at once, even within the
// backoff of a failed attempt.
func TestFirstIssuanceIssueIgnoresBackoff(t *testing.T) {
	e := newEnv(t)
	p := plan("p1", defCert("mail.d.test"))
	e.ca.FailOrders(1, pebbletest.OrderFault{Type: "rateLimited", Detail: "slow down", RetryAfter: time.Hour})
	if r := e.run(p, ModeRenew); r.Certificates[0].Status != StatusFailed {
		t.Fatalf("first attempt: %+v", r.Certificates[0])
	}
	e.now = e.now.Add(10 * time.Second)
	if r := e.run(p, ModeRenew); r.Certificates[0].Status != StatusWaiting || r.Certificates[0].Reason != planner.ReasonCARetryAfter {
		t.Fatalf("renew within Retry-After: %+v", r.Certificates[0])
	}
	if r := e.run(p, ModeIssue); r.Certificates[0].Status != StatusIssued {
		t.Fatalf("issue: %+v", r.Certificates[0])
	}
	if n := len(e.ca.Orders()); n != 2 {
		t.Errorf("%d orders, want 2", n)
	}
}
