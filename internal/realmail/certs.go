package realmail

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/certplan/certplan/internal/atomicfile"
)

// Cert is a certificate chain and its private key, as PEM.
type Cert struct {
	// ChainPEM is the leaf, then the intermediates.
	ChainPEM []byte
	// KeyPEM is the leaf's private key (PKCS #8).
	KeyPEM []byte
	// Leaf is the parsed leaf.
	Leaf *x509.Certificate
}

// CombinedPEM is the key followed by the chain: the single-file form that
// Postfix's smtpd_tls_chain_files and tls_server_sni_maps read.
func (c Cert) CombinedPEM() []byte {
	return append(append([]byte{}, c.KeyPEM...), c.ChainPEM...)
}

// LeafPEM is the leaf certificate alone.
func (c Cert) LeafPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Leaf.Raw})
}

// IssuerPEM is the chain without its leaf.
func (c Cert) IssuerPEM() []byte {
	rest := c.ChainPEM
	var out []byte
	first := true
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out
		}
		if first {
			first = false
			continue
		}
		out = append(out, pem.EncodeToMemory(b)...)
	}
}

// WriteCertDir writes c into dir the way certplan's state directory holds a
// certificate, which is what deploy hooks receive in CERTPLAN_CERT_DIR:
// cert.pem (leaf), chain.pem (intermediates), fullchain.pem (leaf and
// intermediates), privkey.pem (0600) and combined.pem (key then full chain,
// 0600).
func (c Cert) WriteCertDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{"cert.pem", c.LeafPEM(), 0o644},
		{"chain.pem", c.IssuerPEM(), 0o644},
		{"fullchain.pem", c.ChainPEM, 0o644},
		{"privkey.pem", c.KeyPEM, 0o600},
		{"combined.pem", c.CombinedPEM(), 0o600},
	}
	for _, f := range files {
		if err := atomicfile.WriteFile(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	return nil
}

// CA is a throwaway certificate authority for tests: an ECDSA P-256 root
// that signs leaves directly.
type CA struct {
	Cert *x509.Certificate
	PEM  []byte // the root certificate, for a trust store (--ca-file)
	key  *ecdsa.PrivateKey
}

// NewCA makes a root named cn, valid from an hour ago for a week.
func NewCA(cn string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"certplan tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}, nil
}

// Issue signs a server certificate with a fresh P-256 key whose subject CN
// is names[0] and whose DNS names are all of names. The chain is the leaf
// and the root (so chain.pem is not empty, as with a real CA).
func (ca *CA) Issue(names ...string) (Cert, error) {
	if len(names) == 0 {
		return Cert{}, fmt.Errorf("issue: no names")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Cert{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(3 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return Cert{}, fmt.Errorf("issue %s: %w", names[0], err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return Cert{}, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Cert{}, err
	}
	var chain bytes.Buffer
	pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	chain.Write(ca.PEM)
	return Cert{
		ChainPEM: chain.Bytes(),
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		Leaf:     leaf,
	}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n.Add(n, big.NewInt(1))
}

// SPKISHA256 is the lowercase hex SHA-256 of a certificate's
// SubjectPublicKeyInfo, the form model.CertInfo and TLSA 3 1 1 use.
func SPKISHA256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}
