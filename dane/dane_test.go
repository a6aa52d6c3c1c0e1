package dane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/model"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// pki is a root, an intermediate it signs and leaves the intermediate
// signs, made in the test.
type pki struct {
	root, inter             *x509.Certificate
	leaf, expired, otherKey *x509.Certificate
}

type keyed struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCert(t *testing.T, cn string, names []string, ca bool, parent *keyed, nb, na time.Time) *keyed {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: cn}, DNSNames: names,
		NotBefore: nb, NotAfter: na, BasicConstraintsValid: true, IsCA: ca,
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if ca {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &keyed{c, key}
}

func newPKI(t *testing.T) pki {
	t.Helper()
	from, to := now.AddDate(-1, 0, 0), now.AddDate(5, 0, 0)
	root := newCert(t, "Test Root", nil, true, nil, from, to)
	inter := newCert(t, "Test R11", nil, true, root, from, to)
	leaf := newCert(t, "mx.d.test", []string{"mx.d.test"}, false, inter, now.AddDate(0, -1, 0), now.AddDate(0, 2, 0))
	expired := newCert(t, "mx.d.test", []string{"mx.d.test"}, false, inter, now.AddDate(0, -4, 0), now.AddDate(0, 0, -1))
	other := newCert(t, "mx.d.test", []string{"mx.d.test"}, false, inter, now.AddDate(0, -1, 0), now.AddDate(0, 2, 0))
	return pki{root: root.cert, inter: inter.cert, leaf: leaf.cert, expired: expired.cert, otherKey: other.cert}
}

func TestRecord(t *testing.T) {
	p := newPKI(t)
	spki := sha256.Sum256(p.leaf.RawSubjectPublicKeyInfo)
	full := sha512.Sum512(p.leaf.Raw)
	for _, c := range []struct {
		name    string
		u, s, m uint8
		want    string
	}{
		{"3 1 1 is the SPKI's SHA-256", 3, 1, 1, hex.EncodeToString(spki[:])},
		{"3 0 2 is the certificate's SHA-512", 3, 0, 2, hex.EncodeToString(full[:])},
		{"3 0 0 is the certificate", 3, 0, 0, hex.EncodeToString(p.leaf.Raw)},
		{"3 1 0 is the SPKI", 3, 1, 0, hex.EncodeToString(p.leaf.RawSubjectPublicKeyInfo)},
		{"unknown selector", 3, 2, 1, ""},
		{"unknown matching type", 3, 1, 3, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Record(p.leaf, c.u, c.s, c.m)
			if got.Data != c.want || got.Usage != c.u || got.Selector != c.s || got.MatchingType != c.m {
				t.Errorf("got %+v, want data %q", got, c.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	p := newPKI(t)
	ee := func(c *x509.Certificate, s, m uint8) model.TLSA { return Record(c, DANEEE, s, m) }
	ta := func(c *x509.Certificate, s, m uint8) model.TLSA { return Record(c, DANETA, s, m) }
	upper := ee(p.leaf, 1, 1)
	upper.Data = strings.ToUpper(upper.Data)
	short := ee(p.otherKey, 1, 1)
	short.Data = short.Data[:40]
	sent := []*x509.Certificate{p.leaf, p.inter}
	for _, c := range []struct {
		name   string
		chain  []*x509.Certificate
		rrs    []model.TLSA
		host   string
		want   bool
		detail string
	}{
		{"3 1 1 of the leaf", sent, []model.TLSA{ee(p.leaf, 1, 1)}, "mx.d.test", true, "the leaf matches 3 1 1"},
		{"3 0 1 of the leaf", sent, []model.TLSA{ee(p.leaf, 0, 1)}, "mx.d.test", true, "the leaf matches 3 0 1"},
		{"3 1 2 of the leaf", sent, []model.TLSA{ee(p.leaf, 1, 2)}, "mx.d.test", true, "3 1 2"},
		{"3 0 0 of the leaf", sent, []model.TLSA{ee(p.leaf, 0, 0)}, "mx.d.test", true, "3 0 0"},
		{"uppercase hex", sent, []model.TLSA{upper}, "mx.d.test", true, "the leaf matches"},
		{"3 1 1 of another key", sent, []model.TLSA{ee(p.otherKey, 1, 1)}, "mx.d.test", false, "the leaf's record would be 3 1 1 " + ee(p.leaf, 1, 1).Data},
		{"one of two 3 1 1 (a rollover)", sent, []model.TLSA{ee(p.otherKey, 1, 1), ee(p.leaf, 1, 1)}, "mx.d.test", true, "the leaf matches"},
		{"3 x x ignores names and dates", []*x509.Certificate{p.expired}, []model.TLSA{ee(p.expired, 1, 1)}, "other.test", true, "the leaf matches"},
		{"3 x x is not matched above the leaf", sent, []model.TLSA{ee(p.inter, 1, 1)}, "mx.d.test", false, "no TLSA record matches"},
		{"2 1 1 of the intermediate", sent, []model.TLSA{ta(p.inter, 1, 1)}, "mx.d.test", true, `matches "Test R11", which the leaf chains to`},
		{"2 0 1 of the root, sent", []*x509.Certificate{p.leaf, p.inter, p.root}, []model.TLSA{ta(p.root, 0, 1)}, "mx.d.test", true, `matches "Test Root"`},
		{"2 0 1 of the root, not sent", sent, []model.TLSA{ta(p.root, 0, 1)}, "mx.d.test", false, "no TLSA record matches"},
		{"2 x x checks the name", sent, []model.TLSA{ta(p.inter, 1, 1)}, "mx2.d.test", false, "does not verify under it"},
		{"2 x x checks the dates", []*x509.Certificate{p.expired, p.inter}, []model.TLSA{ta(p.inter, 1, 1)}, "mx.d.test", false, "does not verify under it"},
		{"2 x x is not matched against the leaf", sent, []model.TLSA{ta(p.leaf, 1, 1)}, "mx.d.test", false, "no TLSA record matches"},
		{"only PKIX usages", sent, []model.TLSA{Record(p.leaf, PKIXEE, 1, 1), Record(p.root, PKIXTA, 1, 1)}, "mx.d.test", true, "usages 0 and 1 are unusable for SMTP"},
		{"PKIX-EE matching, DANE-EE not", sent, []model.TLSA{Record(p.leaf, PKIXEE, 1, 1), ee(p.otherKey, 1, 1)}, "mx.d.test", false, "(1 usable of 2)"},
		{"a digest of the wrong length", sent, []model.TLSA{short}, "mx.d.test", true, "a 20-byte digest for matching type 1"},
		{"unknown matching type", sent, []model.TLSA{{Usage: 3, Selector: 1, MatchingType: 9, Data: "ab"}}, "mx.d.test", true, "unknown matching type 9"},
		{"not hex", sent, []model.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: "zz"}}, "mx.d.test", true, "data is not hex"},
		{"no records", sent, nil, "mx.d.test", true, "no TLSA records"},
		{"no chain", nil, []model.TLSA{ee(p.leaf, 1, 1)}, "mx.d.test", false, "no certificate served"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ok, detail := Match(c.chain, c.rrs, c.host, now)
			if ok != c.want || !strings.Contains(detail, c.detail) {
				t.Errorf("got %v, %q; want %v, with %q", ok, detail, c.want, c.detail)
			}
		})
	}
}
