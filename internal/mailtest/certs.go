package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// CA is a certificate authority for tests: a self-signed ECDSA P-256 root
// that signs leaf certificates directly.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// CertPEM is Cert in PEM, for --ca-file.
	CertPEM []byte
}

// NewCA makes a CA whose subject CN is name, valid from an hour ago for ten
// years.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"certplan test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// WriteCertPEM writes the CA certificate to path (mode 0644).
func (ca *CA) WriteCertPEM(path string) error {
	return os.WriteFile(path, ca.CertPEM, 0o644)
}

// CertSpec describes a leaf certificate.
type CertSpec struct {
	// Names are the DNS SANs; the subject CN is Names[0].
	Names []string
	// NotBefore and NotAfter default to an hour ago and 90 days from now.
	NotBefore, NotAfter time.Time
}

// Issue makes a leaf certificate for spec signed by ca. The result's Leaf
// is set; its chain is the leaf alone (the CA is the trust anchor).
func (ca *CA) Issue(spec CertSpec) (*tls.Certificate, error) {
	return issue(spec, ca.Cert, ca.Key)
}

// SelfSigned makes a self-signed leaf certificate for spec, trusted by no
// one.
func SelfSigned(spec CertSpec) (*tls.Certificate, error) {
	return issue(spec, nil, nil)
}

// MustIssue is Issue for tests: it panics on error.
func (ca *CA) MustIssue(names ...string) *tls.Certificate {
	c, err := ca.Issue(CertSpec{Names: names})
	if err != nil {
		panic(err)
	}
	return c
}

func issue(spec CertSpec, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*tls.Certificate, error) {
	if len(spec.Names) == 0 {
		return nil, errors.New("mailtest: a certificate needs at least one name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if spec.NotBefore.IsZero() {
		spec.NotBefore = now.Add(-time.Hour)
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = now.AddDate(0, 0, 90)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: spec.Names[0]},
		DNSNames:              spec.Names,
		NotBefore:             spec.NotBefore,
		NotAfter:              spec.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

// CertPEM returns c's chain in PEM.
func CertPEM(c *tls.Certificate) []byte {
	var b []byte
	for _, der := range c.Certificate {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return b
}

// KeyPEM returns c's private key in PKCS #8 PEM.
func KeyPEM(c *tls.Certificate) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Certs is what a server presents: a default certificate for clients
// without SNI (or with an unknown name), and certificates by SNI name. It
// can be swapped at runtime with Set, as a deploy would; handshakes in
// flight keep what they chose. Several servers may share one Certs.
type Certs struct {
	v atomic.Pointer[certSet]
}

type certSet struct {
	def *tls.Certificate
	sni map[string]*tls.Certificate
}

// NewCerts returns Certs serving def by default and each of sni for the
// DNS names of its leaf (a "*.example.test" name serves one label under
// example.test).
func NewCerts(def *tls.Certificate, sni ...*tls.Certificate) *Certs {
	c := &Certs{}
	c.Set(def, sni...)
	return c
}

// Set replaces the certificates, as NewCerts describes.
func (c *Certs) Set(def *tls.Certificate, sni ...*tls.Certificate) {
	s := &certSet{def: def, sni: map[string]*tls.Certificate{}}
	for _, cert := range sni {
		leaf := cert.Leaf
		if leaf == nil {
			var err error
			if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				panic(fmt.Sprintf("mailtest: unparsable certificate: %v", err))
			}
		}
		for _, n := range leaf.DNSNames {
			s.sni[strings.ToLower(n)] = cert
		}
	}
	c.v.Store(s)
}

// SetByName replaces the certificates: def by default, and byName[n] for
// clients that send SNI n, as a server configured by SNI map (Postfix
// tls_server_sni_maps, Exim's per-name files) does, whatever names the
// certificates list.
func (c *Certs) SetByName(def *tls.Certificate, byName map[string]*tls.Certificate) {
	s := &certSet{def: def, sni: make(map[string]*tls.Certificate, len(byName))}
	for n, cert := range byName {
		s.sni[strings.ToLower(n)] = cert
	}
	c.v.Store(s)
}

// GetCertificate picks the certificate for hello, for tls.Config.
func (c *Certs) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	s := c.v.Load()
	if name := strings.ToLower(strings.TrimSuffix(hello.ServerName, ".")); name != "" {
		if cert := s.sni[name]; cert != nil {
			return cert, nil
		}
		if _, parent, ok := strings.Cut(name, "."); ok {
			if cert := s.sni["*."+parent]; cert != nil {
				return cert, nil
			}
		}
	}
	if s.def == nil {
		return nil, errors.New("mailtest: no certificate")
	}
	return s.def, nil
}
