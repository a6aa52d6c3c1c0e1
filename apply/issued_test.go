package apply

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// testCA is a root and an intermediate made with x509.CreateCertificate.
type testCA struct {
	t         *testing.T
	root      *x509.Certificate
	inter     *x509.Certificate
	interKey  crypto.Signer
	interPEM  []byte
	notBefore time.Time
}

func newTestCA(t *testing.T, now time.Time) *testCA {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ = x509.ParseCertificate(rootDER)
	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	inter := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test intermediate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	interDER, err := x509.CreateCertificate(rand.Reader, inter, root, interKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	inter, _ = x509.ParseCertificate(interDER)
	return &testCA{t: t, root: root, inter: inter, interKey: interKey, notBefore: now.Add(-time.Minute),
		interPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: interDER})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.root)
	return p
}

// issue returns leaf+intermediate PEM for names and key, changed by mod.
func (ca *testCA) issue(key crypto.PublicKey, names []string, mod func(*x509.Certificate)) []byte {
	ca.t.Helper()
	leaf := &x509.Certificate{SerialNumber: big.NewInt(3), DNSNames: names,
		NotBefore: ca.notBefore, NotAfter: ca.notBefore.Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if mod != nil {
		mod(leaf)
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca.inter, key, ca.interKey)
	if err != nil {
		ca.t.Fatal(err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.interPEM...)
}

// TestCheckIssued: the check of an issued certificate, as the pure
// function of (names ordered, key, chain, roots, now) it is.
func TestCheckIssued(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ca := newTestCA(t, now)
	other := newTestCA(t, now)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ordered := []string{"mail.d.test", "smtp.d.test"}
	tests := []struct {
		name  string
		chain []byte
		now   time.Time
		roots *x509.CertPool
		want  string // "" ok
	}{
		{name: "as ordered", chain: ca.issue(key.Public(), []string{"SMTP.d.test", "mail.d.test."}, nil)},
		{name: "an extra name", chain: ca.issue(key.Public(), []string{"mail.d.test", "smtp.d.test", "evil.d.test"}, nil), want: "it lists names not ordered: evil.d.test"},
		{name: "a missing name", chain: ca.issue(key.Public(), []string{"mail.d.test"}, nil), want: "it lacks names ordered: smtp.d.test"},
		{name: "an IP address", chain: ca.issue(key.Public(), ordered, func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.ParseIP("127.0.0.77")} }), want: "1 identifiers other than DNS names"},
		{name: "expired at the run's clock", chain: ca.issue(key.Public(), ordered, nil), now: now.Add(91 * 24 * time.Hour), want: "expired at 2026-08-30T11:59:00Z"},
		{name: "not valid yet", chain: ca.issue(key.Public(), ordered, func(c *x509.Certificate) { c.NotBefore = now.Add(time.Hour) }), want: "not valid before 2026-06-01T13:00:00Z"},
		{name: "a little clock skew", chain: ca.issue(key.Public(), ordered, func(c *x509.Certificate) { c.NotBefore = now.Add(30 * time.Second) })},
		{name: "another key", chain: ca.issue(otherKey.Public(), ordered, nil), want: "its public key is not the key of the request"},
		{name: "an untrusted chain", chain: ca.issue(key.Public(), ordered, nil), roots: other.pool(), want: "its chain does not verify to the CA's issuing roots"},
		{name: "not for servers", chain: ca.issue(key.Public(), ordered, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} }), want: "its chain does not verify"},
		{name: "no certificate", chain: []byte("garbage"), want: "no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, roots := now, ca.pool()
			if !tt.now.IsZero() {
				at = tt.now
			}
			if tt.roots != nil {
				roots = tt.roots
			}
			err := checkIssued(ordered, key.Public(), tt.chain, roots, at)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestIssuedCertRefused: against Pebble, with issuing roots Pebble does
// not issue under, the certificate is refused before it is stored: the
// order fails and is backed off like any other, the current certificate
// stays, and no hook runs.
func TestIssuedCertRefused(t *testing.T) {
	e := newEnv(t)
	p := plan("p1", defCert("mail.d.test"))
	if r := e.run(p, ModeIssue); r.Result() != ResultOK {
		t.Fatalf("first run: %s", statuses(r))
	}
	first := e.stored("default-127.0.0.2").Meta.Serial
	wrong := x509.NewCertPool()
	wrong.AppendCertsFromPEM(e.ca.RootsPEM) // the ACME server's TLS root
	r := e.run(p, ModeIssue, func(o *Options) { o.Force, o.IssuerRoots = true, wrong })
	c := r.Certificates[0]
	if c.Status != StatusFailed || !strings.Contains(c.Error, "refused what the CA issued: its chain does not verify") {
		t.Fatalf("status %s, error %q; want failed, chain refused", c.Status, c.Error)
	}
	if c.Serial != first || c.Failures != 1 || c.NextCheck.IsZero() || len(c.Hooks) != 0 {
		t.Errorf("serial %s (was %s), failures %d, next check %v, hooks %+v", c.Serial, first, c.Failures, c.NextCheck, c.Hooks)
	}
	if s := e.stored("default-127.0.0.2").Meta.Serial; s != first {
		t.Errorf("current serial %s, want %s", s, first)
	}
	st := e.options(p, ModeRenew).Store
	rs, err := st.LoadRenewal("default-127.0.0.2")
	if err != nil || rs.Failures != 1 || !strings.Contains(rs.LastError, "refused what the CA issued") {
		t.Errorf("renewal state %+v, %v: the failure should be recorded", rs, err)
	}
}
