package realmail

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/certplan/certplan/emit"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
)

// The configuration that certplan emit prints, applied to real servers:
// each serves every planned name with and without SNI on every IP and
// port through the store's live paths, and a new plan that changes a
// certificate's ID needs no configuration change.

// emitFixture is a state directory with a plan's certificates stored and
// the live tree made from them.
type emitFixture struct {
	t        *testing.T
	st       *store.Store
	live     string
	keyGroup string
	plan     *model.Plan
	certs    map[string]Cert // by certificate ID
	// deepWildcard: the server serves a wildcard's certificate for names
	// more than one label under it (Postfix's ".parent" SNI keys).
	deepWildcard bool
}

// newEmitFixture stores, for ips[0] and ips[1], a default certificate
// each and an SNI certificate on both (with a wildcard), and makes the
// live tree. The directories above it let keyGroup through.
func newEmitFixture(t *testing.T, ips []string, keyGroup string) *emitFixture {
	tmp := t.TempDir()
	for _, d := range []string{tmp, filepath.Dir(tmp)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(filepath.Join(tmp, "state"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Lock(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &emitFixture{t: t, st: st, live: store.LiveDirFor(st.Dir()), keyGroup: keyGroup, certs: map[string]Cert{},
		plan: &model.Plan{ID: "p1", Certificates: []model.PlannedCert{
			{ID: "default-" + ips[0], Names: []string{"server.main-domain.test", "mail.client1.test"}, IPs: ips[:1], Default: true},
			{ID: "default-" + ips[1], Names: []string{"mx.hoster.test"}, IPs: ips[1:2], Default: true},
			{ID: "sni-domain2.test", Names: []string{"*.domain3.test", "mail.domain2.test"}, IPs: ips[:2]},
		}}}
	for _, pc := range f.plan.Certificates {
		f.save(pc.ID, issue(t, pc.Names...))
	}
	f.update()
	return f
}

func (f *emitFixture) save(id string, c Cert) {
	f.t.Helper()
	if _, err := f.st.SaveCert(id, store.Files{KeyPEM: c.KeyPEM, CertPEM: c.LeafPEM(), ChainPEM: c.IssuerPEM()}, store.Meta{}); err != nil {
		f.t.Fatal(err)
	}
	f.certs[id] = c
}

func (f *emitFixture) update() {
	f.t.Helper()
	if _, err := f.st.UpdateLive(f.plan, store.LiveOptions{KeyGroup: f.keyGroup}); err != nil {
		f.t.Fatal(err)
	}
}

// renewWithNewID gives the SNI certificate a new ID and a new certificate,
// as a changed plan does, and updates the live tree. It returns the
// certificate.
func (f *emitFixture) renewWithNewID() Cert {
	f.t.Helper()
	pc := &f.plan.Certificates[2]
	pc.ID += "-2"
	c := issue(f.t, pc.Names...)
	f.save(pc.ID, c)
	f.update()
	return c
}

func (f *emitFixture) options() emit.Options { return emit.Options{LiveDir: f.live} }

// want is what ip should present for sni: the certificate of a name
// planned on ip (a wildcard covering one label), else ip's default.
func (f *emitFixture) want(ip, sni string) Cert {
	var def Cert
	for _, pc := range f.plan.Certificates {
		if !slices.Contains(pc.IPs, ip) {
			continue
		}
		if pc.Default {
			def = f.certs[pc.ID]
		}
		for _, n := range pc.Names {
			labels := strings.Count(sni, ".") == strings.Count(n, ".") || f.deepWildcard
			if sni != "" && (strings.EqualFold(n, sni) || strings.HasPrefix(n, "*.") && labels && strings.HasSuffix(strings.ToLower(sni), n[1:])) {
				return f.certs[pc.ID]
			}
		}
	}
	return def
}

// snis are the SNI values to probe on ip: none, every name planned on ip
// (a wildcard as a name under it, in upper case for the case rule), one
// under a wildcard by two labels, and an unknown name.
func (f *emitFixture) snis(ip string) []string {
	out := []string{"", "nosuch.test", "a.b.domain3.test"}
	for _, pc := range f.plan.Certificates {
		if !slices.Contains(pc.IPs, ip) {
			continue
		}
		for _, n := range pc.Names {
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				n = "IMAP." + rest
			}
			out = append(out, n)
		}
	}
	return out
}

type listener struct {
	port     int
	starttls string
}

// checkAll probes every SNI value on every IP and listener.
func (f *emitFixture) checkAll(t *testing.T, ips []string, ls []listener, log func() string) {
	t.Helper()
	for _, ip := range ips {
		for _, l := range ls {
			for _, sni := range f.snis(ip) {
				wantServed(t, ip, l.port, l.starttls, sni, f.want(ip, sni))
			}
		}
	}
	if t.Failed() {
		t.Fatalf("server log:\n%s", log())
	}
}

// TestEmitExim: Exim (reading the keys as Debian-exim through the key
// group) with the configuration emit exim prints serves the plan on two
// IPs; a new certificate ID is served at the next connection, with the
// same configuration and no restart; --check finds nothing to change, and
// finds a configuration for another live directory.
func TestEmitExim(t *testing.T) {
	t.Parallel()
	RequireExim(t)
	ips := []string{DefaultIP, "127.0.0.3"}
	f := newEmitFixture(t, ips, eximUser)
	conf := emit.RenderExim(f.plan, f.options())
	e := StartExim(t, EximOptions{IP: ips[0], ExtraIPs: ips[1:], TLS: conf})
	ls := []listener{{e.SMTPPort, StartSMTP}, {e.SubmissionPort, StartSMTP}, {e.SMTPSPort, ImplicitTLS}}
	f.checkAll(t, ips, ls, e.Log)

	f.renewWithNewID()
	if again := emit.RenderExim(f.plan, f.options()); again != conf {
		t.Errorf("the configuration changed with the ID:\n%s", again)
	}
	f.checkAll(t, ips, ls, e.Log)

	ctx := context.Background()
	if diffs, err := emit.CheckExim(ctx, e.exe, e.ConfigFile, f.live); err != nil || len(diffs) != 0 {
		t.Errorf("check: %v, %v; want no differences", diffs, err)
	}
	if diffs, err := emit.CheckExim(ctx, e.exe, e.ConfigFile, "/elsewhere"); err != nil || len(diffs) != 1 || diffs[0].Where != "tls_certificate" {
		t.Errorf("check against another live dir: %v, %v; want tls_certificate to differ", diffs, err)
	}
}

// TestEmitPostfix: Postfix with the main.cf parameters, the per-IP
// master.cf services and the SNI table that emit postfix prints.
func TestEmitPostfix(t *testing.T) {
	t.Parallel()
	RequirePostfix(t)
	ips := []string{DefaultIP, "127.0.0.3"}
	f := newEmitFixture(t, ips, "")
	f.deepWildcard = true
	p := StartPostfix(t, PostfixOptions{IP: ips[0], Default: issue(t, "placeholder.test"), Submission: true, SMTPS: true})
	o := f.options()
	o.Ports = emit.Ports{SMTP: p.SMTPPort, Submission: p.SubmissionPort, SMTPS: p.SMTPSPort}
	o.SNIMapFile = filepath.Join(p.ConfigDir, "certplan-sni")
	c := emit.RenderPostfix(f.plan, o)
	if len(c.Master) != 6 {
		t.Fatalf("%d services, want one per IP and port:\n%s", len(c.Master), c.MasterText())
	}
	ctx := context.Background()
	if err := writeConfigFile(o.SNIMapFile, []byte(c.SNIText()), 0o644); err != nil {
		t.Fatal(err)
	}
	main := map[string]string{}
	for _, prm := range c.Main {
		main[prm.Name] = prm.Value
	}
	if err := p.Postconf(ctx, main); err != nil {
		t.Fatal(err)
	}
	if err := p.SetServices(ctx, c.MasterText()); err != nil {
		t.Fatal(err)
	}
	ls := []listener{{p.SMTPPort, StartSMTP}, {p.SubmissionPort, StartSMTP}, {p.SMTPSPort, ImplicitTLS}}
	f.checkAll(t, ips, ls, p.Log)
	if diffs, err := emit.CheckPostfix(ctx, c, p.ConfigDir); err != nil || len(diffs) != 0 {
		t.Errorf("check: %v, %v; want no differences", diffs, err)
	}

	// A new ID: the same configuration; smtpd reads the files when it
	// starts, so a reload (what a deploy hook does) serves the new one.
	f.renewWithNewID()
	if again := emit.RenderPostfix(f.plan, o); again.Text() != c.Text() {
		t.Errorf("the configuration changed with the ID:\n%s", again.Text())
	}
	if err := p.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	f.checkAll(t, ips, ls, p.Log)
}

// TestEmitDovecot: Dovecot with the local and local_name blocks that emit
// dovecot prints for the installed version.
func TestEmitDovecot(t *testing.T) {
	t.Parallel()
	RequireDovecot(t)
	ips := []string{DefaultIP, "127.0.0.3"}
	f := newEmitFixture(t, ips, "")
	ctx := context.Background()
	o := f.options()
	v, err := emit.DovecotVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o.DovecotVersion = v
	conf := emit.RenderDovecot(f.plan, o)
	include := filepath.Join(t.TempDir(), "certplan.conf")
	if err := os.WriteFile(include, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := StartDovecot(t, DovecotOptions{IP: ips[0], ExtraIPs: ips[1:], Default: issue(t, "placeholder.test"), IncludeTry: include})
	ls := []listener{{d.IMAPPort, StartIMAP}, {d.IMAPSPort, ImplicitTLS}}
	f.checkAll(t, ips, ls, d.Log)
	if diffs, err := emit.CheckDovecot(ctx, conf, d.ConfigFile); err != nil || len(diffs) != 0 {
		t.Errorf("check: %v, %v; want no differences", diffs, err)
	}

	f.renewWithNewID()
	if again := emit.RenderDovecot(f.plan, o); again != conf {
		t.Errorf("the configuration changed with the ID:\n%s", again)
	}
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	f.checkAll(t, ips, ls, d.Log)
}
