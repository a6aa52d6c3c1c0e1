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

const zone = `$ORIGIN d.test.
$TTL 60
@        IN SOA ns.d.test. hostmaster.d.test. 1 3600 600 86400 60
mail     IN A   127.0.0.2
smtp     IN A   127.0.0.2
imap     IN A   127.0.0.2
late     IN A   127.0.0.2
away     IN A   127.0.0.77
`

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
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d := dnstest.New()
	if err := d.AddZone("d.test", zone); err != nil {
		t.Fatal(err)
	}
	if err := d.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ca, err := pebbletest.Start(ctx, pebbletest.Options{DNSAddr: d.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close() })

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
// certificates, each as one combined file.
const hook = `set -e
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
		Hooks:  []string{"DEPLOY_DIR=" + e.deployDir + "\n" + hook},
		Verify: &Verify{Prober: probe.New(probe.Config{Roots: roots, Timeout: 3 * time.Second, Now: func() time.Time { return now }}), Ports: []probe.Port{{Protocol: model.ProtoSMTPS, Port: e.mail.Port()}}, Wait: 3 * time.Second},
		Now:    func() time.Time { return now },
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

	// A plan without the SNI certificate retires it: reported once, files
	// kept. (Back to the real clock: Pebble dated the renewed certificates
	// by it.)
	e.now = time.Now().UTC().Truncate(time.Second)
	p4 := plan("p4", defCert("mail.d.test"))
	r = e.run(p4, ModeRenew)
	if len(r.Retired) != 1 || r.Retired[0].ID != "sni-imap.d.test" || r.Quiet() {
		t.Fatalf("retired: %+v", r.Retired)
	}
	e.stored("sni-imap.d.test")
	if r = e.run(p4, ModeRenew); !r.Quiet() {
		t.Fatalf("retired again: %+v", r)
	}
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
	// The next run (nothing due) runs the hooks again, and now it is served.
	r = e.run(p, ModeRenew)
	if c := r.Certificates[0]; c.Status != StatusRedeployed || r.Result() != ResultOK {
		t.Fatalf("redeploy: %+v", r)
	}
	checkVerified(t, r, 1)
	if r = e.run(p, ModeRenew); !r.Quiet() {
		t.Fatalf("after redeploy: %+v", r)
	}
}

// TestDryRun orders nothing and writes nothing.
func TestDryRun(t *testing.T) {
	e := newEnv(t)
	r := e.run(plan("p1", defCert("mail.d.test", "smtp.d.test")), ModeIssue, func(o *Options) { o.DryRun = true })
	if c := r.Certificates[0]; c.Status != StatusWouldIssue || len(c.Issued) != 2 || len(c.Hooks) != 0 {
		t.Fatalf("dry run: %+v", r)
	}
	if len(e.ca.Orders()) != 0 {
		t.Fatal("dry run placed an order")
	}
	if _, err := os.Stat(filepath.Join(e.dir, "plan.json")); !os.IsNotExist(err) {
		t.Fatal("dry run saved the plan")
	}
}
