package probe_test

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/certplan/certplan/deploy"
	"github.com/certplan/certplan/internal/realmail"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
)

// Against real Postfix (tls_server_sni_maps) and Dovecot (local_name), the
// probe sees exactly what `openssl s_client` sees, with and without SNI, on
// every protocol: same leaf (subject CN, DNS names, serial, SPKI, expiry)
// and same chain. CI runs this (CERTPLAN_REQUIRE_INTEGRATION=1); elsewhere it
// skips when Postfix, Dovecot or root are missing.
func TestRealServersMatchOpenSSL(t *testing.T) {
	realmail.RequirePostfix(t)
	realmail.RequireDovecot(t)
	t.Parallel()
	ca, issue := testCA(t, "certplan realservers CA")
	def := issue("server.main-domain.test", "mail.main-domain.test")
	d2 := issue("mail.domain2.test", "smtp.domain2.test")
	d3 := issue("*.domain3.test")

	pf := realmail.StartPostfix(t, realmail.PostfixOptions{
		Submission: true,
		SMTPS:      true,
		Default:    def,
		SNI: map[string]realmail.Cert{
			"mail.domain2.test": d2,
			"smtp.domain2.test": d2,
			".domain3.test":     d3,
		},
		SNIMapType: "hash", // postmap -F, as in production
	})
	dv := realmail.StartDovecot(t, realmail.DovecotOptions{
		POP3:    true,
		Default: def,
		SNI: map[string]realmail.Cert{
			`"mail.domain2.test smtp.domain2.test"`: d2,
			"*.domain3.test":                        d3,
		},
	})

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	p := probe.New(probe.Config{Roots: roots, Timeout: 10 * time.Second})

	services := []struct {
		name     string
		ip       string
		port     int
		protocol string
		starttls string
	}{
		{"postfix smtp", pf.IP, pf.SMTPPort, model.ProtoSMTP, realmail.StartSMTP},
		{"postfix submission", pf.IP, pf.SubmissionPort, model.ProtoSubmission, realmail.StartSMTP},
		{"postfix smtps", pf.IP, pf.SMTPSPort, model.ProtoSMTPS, realmail.ImplicitTLS},
		{"dovecot imap", dv.IP, dv.IMAPPort, model.ProtoIMAP, realmail.StartIMAP},
		{"dovecot imaps", dv.IP, dv.IMAPSPort, model.ProtoIMAPS, realmail.ImplicitTLS},
		{"dovecot pop3", dv.IP, dv.POP3Port, model.ProtoPOP3, realmail.StartPOP3},
		{"dovecot pop3s", dv.IP, dv.POP3SPort, model.ProtoPOP3S, realmail.ImplicitTLS},
	}
	cases := []struct {
		sni  string
		want realmail.Cert // what the configuration says is served
	}{
		{"", def},
		{"mail.main-domain.test", def},
		{"mail.domain2.test", d2},
		{"smtp.domain2.test", d2},
		{"imap.domain3.test", d3},
		{"unknown.test", def},
	}
	ctx := context.Background()
	for _, s := range services {
		t.Run(s.name, func(t *testing.T) {
			for _, c := range cases {
				ep, err := p.Probe(ctx, probe.Target{IP: s.ip, Port: s.port, Protocol: s.protocol, SNI: c.sni})
				if err != nil {
					t.Errorf("sni %q: probe: %v", c.sni, err)
					continue
				}
				chain, err := realmail.ServedChain(ctx, s.ip, s.port, s.starttls, c.sni)
				if err != nil {
					t.Errorf("sni %q: openssl: %v", c.sni, err)
					continue
				}
				// The servers are configured as intended (else the
				// comparison below could pass on a server that serves one
				// certificate to everyone).
				if !chain[0].Equal(c.want.Leaf) {
					t.Errorf("sni %q: openssl sees %q serial %x, the configuration says %q",
						c.sni, chain[0].Subject.CommonName, chain[0].SerialNumber, c.want.Leaf.Subject.CommonName)
				}
				compareLeaf(t, c.sni, ep, chain)
				if !ep.Trusted {
					t.Errorf("sni %q: not trusted (%s), want trusted by the test CA", c.sni, ep.TrustError)
				}
			}
		})
	}
}

// compareLeaf checks the probe's endpoint against openssl's chain, field by
// field, from the parsed certificates rather than through probe.CertInfo.
func compareLeaf(t *testing.T, sni string, ep model.Endpoint, chain []*x509.Certificate) {
	t.Helper()
	if ep.Leaf == nil {
		t.Errorf("sni %q: probe reports no leaf", sni)
		return
	}
	leaf := chain[0]
	got, want := *ep.Leaf, struct {
		cn, serial, spki, notAfter string
		names                      []string
	}{
		cn:       leaf.Subject.CommonName,
		serial:   leaf.SerialNumber.Text(16),
		spki:     realmail.SPKISHA256(leaf),
		notAfter: leaf.NotAfter.UTC().Format(time.RFC3339),
		names:    leaf.DNSNames,
	}
	if got.SubjectCN != want.cn {
		t.Errorf("sni %q: subject CN: probe %q, openssl %q", sni, got.SubjectCN, want.cn)
	}
	if !slices.Equal(got.DNSNames, want.names) {
		t.Errorf("sni %q: DNS names: probe %q, openssl %q", sni, got.DNSNames, want.names)
	}
	if got.Serial != want.serial {
		t.Errorf("sni %q: serial: probe %s, openssl %s", sni, got.Serial, want.serial)
	}
	if got.SPKISHA256 != want.spki {
		t.Errorf("sni %q: SPKI: probe %s, openssl %s", sni, got.SPKISHA256, want.spki)
	}
	if got.NotAfter != want.notAfter {
		t.Errorf("sni %q: not after: probe %s, openssl %s", sni, got.NotAfter, want.notAfter)
	}
	if len(ep.Chain) != len(chain) {
		t.Errorf("sni %q: chain: probe %d certificates, openssl %d", sni, len(ep.Chain), len(chain))
		return
	}
	for i := range chain {
		if ep.Chain[i].Serial != chain[i].SerialNumber.Text(16) {
			t.Errorf("sni %q: chain[%d] serial: probe %s, openssl %s", sni, i, ep.Chain[i].Serial, chain[i].SerialNumber.Text(16))
		}
	}
}

// Issue 5: a certificate deployed to a real Postfix and a real Dovecot by
// certplan's hook runner (deploy.Run) with the example hooks is what the
// probe then finds served, with and without SNI; before, it found the old
// one.
func TestDeployedCertificateServed(t *testing.T) {
	realmail.RequirePostfix(t)
	realmail.RequireDovecot(t)
	t.Parallel()
	ca, issue := testCA(t, "certplan deploy CA")
	_, file, _, _ := runtime.Caller(0)
	hooks := filepath.Join(filepath.Dir(file), "..", "examples", "hooks")
	ctx := context.Background()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	p := probe.New(probe.Config{Roots: roots, Timeout: 10 * time.Second})

	// The servers as an administrator left them after the one-time set-up:
	// main.cf and dovecot.conf name the hooks' files, which hold the
	// current certificates (deployed by the same hooks earlier).
	hookDir := t.TempDir()
	stateDir := t.TempDir()
	oldDef := issue("server.main-domain.test", "mail.main-domain.test")
	oldSNI := issue("mail.domain2.test", "smtp.domain2.test")
	newDef := issue("server.main-domain.test", "mail.main-domain.test")
	newSNI := issue("mail.domain2.test", "smtp.domain2.test")

	const ip = realmail.DefaultIP
	pfCerts := filepath.Join(hookDir, "postfix")
	pfMap := filepath.Join(hookDir, "postfix-sni")
	dvCerts := filepath.Join(hookDir, "dovecot")
	dvConf := filepath.Join(hookDir, "dovecot-sni.conf")
	deployBoth := func(dv *realmail.Dovecot, pf *realmail.Postfix, id string, c realmail.Cert, names, defaultIPs []string) {
		t.Helper()
		dir := filepath.Join(stateDir, id)
		if err := c.WriteCertDir(dir); err != nil {
			t.Fatal(err)
		}
		cert := deploy.Cert{ID: id, Dir: dir, Names: names, DefaultIPs: defaultIPs, Change: "renewed"}
		hooksRun := []string{
			"POSTFIX_CONFIG_DIR=" + pf.ConfigDir + " POSTFIX_CERT_DIR=" + pfCerts + " POSTFIX_SNI_MAP=hash:" + pfMap +
				" " + filepath.Join(hooks, "postfix.sh"),
			"DOVECOT_CONFIG=" + dv.ConfigFile + " DOVECOT_CERT_DIR=" + dvCerts + " DOVECOT_SNI_CONF=" + dvConf +
				" " + filepath.Join(hooks, "dovecot.sh"),
		}
		for _, hook := range hooksRun {
			if out, err := deploy.Run(ctx, hook, cert, time.Minute); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		}
	}
	// Start both with throwaway defaults, deploy the "old" certificates
	// through the hooks, and point the servers at the hooks' files.
	bootstrap := issue("bootstrap.test")
	pf := realmail.StartPostfix(t, realmail.PostfixOptions{IP: ip, Submission: true, Default: bootstrap})
	dv := realmail.StartDovecot(t, realmail.DovecotOptions{IP: ip, Default: bootstrap, IncludeTry: dvConf})
	deployBoth(dv, pf, "default-"+ip, oldDef, []string{"server.main-domain.test", "mail.main-domain.test"}, []string{ip})
	deployBoth(dv, pf, "domain2", oldSNI, []string{"mail.domain2.test", "smtp.domain2.test"}, nil)
	if err := pf.Postconf(ctx, map[string]string{
		"smtpd_tls_chain_files": filepath.Join(pfCerts, "default-"+ip+".pem"),
		"tls_server_sni_maps":   "hash:" + pfMap,
	}); err != nil {
		t.Fatal(err)
	}
	if err := pf.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dv.UseDefaultFiles(ctx, filepath.Join(dvCerts, "default-"+ip+".crt"), filepath.Join(dvCerts, "default-"+ip+".key")); err != nil {
		t.Fatal(err)
	}

	targets := []probe.Target{
		{IP: ip, Port: pf.SMTPPort, Protocol: model.ProtoSMTP},
		{IP: ip, Port: pf.SubmissionPort, Protocol: model.ProtoSubmission},
		{IP: ip, Port: dv.IMAPPort, Protocol: model.ProtoIMAP},
		{IP: ip, Port: dv.IMAPSPort, Protocol: model.ProtoIMAPS},
	}
	// served waits (a few seconds at most: a reload replaces processes)
	// until every target serves the wanted certificate per SNI.
	served := func(want map[string]realmail.Cert) {
		t.Helper()
		for _, tg := range targets {
			for sni, c := range want {
				tg.SNI = sni
				wantSerial := c.Leaf.SerialNumber.Text(16)
				var ep model.Endpoint
				var err error
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
					ep, err = p.Probe(ctx, tg)
					if err == nil && ep.Leaf.Serial == wantSerial || time.Now().After(deadline) {
						break
					}
				}
				switch {
				case err != nil:
					t.Errorf("%s %s: %v", tg.Protocol, tg, err)
				case ep.Leaf.Serial != wantSerial:
					t.Errorf("%s %s: serves serial %s (%s), want %s", tg.Protocol, tg, ep.Leaf.Serial, ep.Leaf.SubjectCN, wantSerial)
				case !ep.Trusted:
					t.Errorf("%s %s: not trusted: %s", tg.Protocol, tg, ep.TrustError)
				}
			}
		}
	}
	served(map[string]realmail.Cert{"": oldDef, "mail.main-domain.test": oldDef, "mail.domain2.test": oldSNI, "smtp.domain2.test": oldSNI})

	// Renewal: the new certificates through the same hooks, nothing else.
	deployBoth(dv, pf, "default-"+ip, newDef, []string{"server.main-domain.test", "mail.main-domain.test"}, []string{ip})
	deployBoth(dv, pf, "domain2", newSNI, []string{"mail.domain2.test", "smtp.domain2.test"}, nil)
	served(map[string]realmail.Cert{"": newDef, "mail.main-domain.test": newDef, "mail.domain2.test": newSNI, "smtp.domain2.test": newSNI})
}

// testCA makes a CA for the real servers' certificates and a function that
// issues one for names.
func testCA(t *testing.T, name string) (*realmail.CA, func(names ...string) realmail.Cert) {
	t.Helper()
	ca, err := realmail.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca, func(names ...string) realmail.Cert {
		t.Helper()
		c, err := ca.Issue(names...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}
