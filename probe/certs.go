package probe

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/certplan/certplan/model"
)

// describe fills ep's chain, leaf and trust from the certificates the server
// sent, leaf first.
func (p *Prober) describe(ep *model.Endpoint, certs []*x509.Certificate) {
	ep.Chain = make([]model.CertInfo, len(certs))
	for i, c := range certs {
		ep.Chain[i] = p.certs.info(c)
	}
	ep.Leaf = &ep.Chain[0]
	r := p.chains.verify(certs, p.cfg.Now(), p.cfg.Roots)
	ep.Trusted, ep.IssuerTrusted, ep.TrustError = r.trusted, r.issuerTrusted, r.trustErr
}

// certCache maps a certificate's DER to its description: a server sends
// the same certificate to every client, so each is described once.
type certCache struct {
	mu sync.RWMutex
	m  map[string]model.CertInfo
}

func (cc *certCache) info(c *x509.Certificate) model.CertInfo {
	cc.mu.RLock()
	ci, ok := cc.m[string(c.Raw)] // no allocation for the lookup
	cc.mu.RUnlock()
	if ok {
		return ci
	}
	ci = CertInfo(c)
	cc.mu.Lock()
	if cc.m == nil {
		cc.m = make(map[string]model.CertInfo)
	}
	cc.m[string(c.Raw)] = ci
	cc.mu.Unlock()
	return ci
}

// CertInfo describes c. Serial and SPKISHA256 are lowercase hex; dates are
// RFC 3339 UTC; DNSNames keep the certificate's order and are never nil.
func CertInfo(c *x509.Certificate) model.CertInfo {
	spki := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	ci := model.CertInfo{
		SubjectCN:  c.Subject.CommonName,
		Subject:    c.Subject.String(),
		Issuer:     c.Issuer.String(),
		Serial:     c.SerialNumber.Text(16),
		NotBefore:  c.NotBefore.UTC().Format(time.RFC3339),
		NotAfter:   c.NotAfter.UTC().Format(time.RFC3339),
		SPKISHA256: hex.EncodeToString(spki[:]),
		DNSNames:   append([]string{}, c.DNSNames...),
		Cert:       c,
	}
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		ci.KeyType, ci.KeyBits = "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		ci.KeyType, ci.KeyBits = "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		ci.KeyType, ci.KeyBits = "Ed25519", 256
	default:
		ci.KeyType = c.PublicKeyAlgorithm.String()
	}
	return ci
}

// chainCache remembers verification results by chain. A result holds
// between the validity boundaries of the chain's certificates around the
// time it was computed, so it is reused until a certificate's dates flip it.
type chainCache struct {
	mu sync.RWMutex
	m  map[string][]chainResult // by leaf DER
}

type chainResult struct {
	intermediates [][]byte
	from, until   time.Time // the result holds for from <= t < until
	trusted       bool
	issuerTrusted bool
	trustErr      string
}

func sameIntermediates(a [][]byte, certs []*x509.Certificate) bool {
	if len(a) != len(certs) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], certs[i].Raw) {
			return false
		}
	}
	return true
}

func (cc *chainCache) verify(certs []*x509.Certificate, now time.Time, roots *x509.CertPool) chainResult {
	leaf, inter := certs[0], certs[1:]
	cc.mu.RLock()
	for _, r := range cc.m[string(leaf.Raw)] {
		if sameIntermediates(r.intermediates, inter) && !now.Before(r.from) && now.Before(r.until) {
			cc.mu.RUnlock()
			return r
		}
	}
	cc.mu.RUnlock()

	r := verifyChain(certs, now, roots)
	r.intermediates = make([][]byte, len(inter))
	for i, c := range inter {
		r.intermediates[i] = c.Raw
	}
	// The window around now in which no certificate's validity changes.
	r.from, r.until = time.Time{}, time.Unix(1<<62, 0)
	for _, c := range certs {
		for _, b := range []time.Time{c.NotBefore, c.NotAfter.Add(time.Second)} {
			if !b.After(now) && b.After(r.from) {
				r.from = b
			}
			if b.After(now) && b.Before(r.until) {
				r.until = b
			}
		}
	}
	cc.mu.Lock()
	if cc.m == nil {
		cc.m = make(map[string][]chainResult)
	}
	k := string(leaf.Raw)
	if len(cc.m[k]) >= 8 {
		cc.m[k] = cc.m[k][:0] // bounded: a leaf sent with endless intermediate variants
	}
	cc.m[k] = append(cc.m[k], r)
	cc.mu.Unlock()
	return r
}

// verifyChain verifies certs (leaf first, then what the server sent as
// intermediates) to roots at now, ignoring names. When it fails because the
// leaf is out of date, it verifies again inside the leaf's validity to tell
// whether the issuer is trusted.
func verifyChain(certs []*x509.Certificate, now time.Time, roots *x509.CertPool) chainResult {
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	leaf := certs[0]
	_, err := leaf.Verify(opts)
	if err == nil {
		return chainResult{trusted: true, issuerTrusted: true}
	}
	r := chainResult{trustErr: err.Error()}
	var ci x509.CertificateInvalidError
	leafInDate := !now.Before(leaf.NotBefore) && !now.After(leaf.NotAfter)
	// An expired intermediate with a leaf in date leaves the issuer
	// untrusted: the server must send a chain that verifies.
	if errors.As(err, &ci) && ci.Reason == x509.Expired && !leafInDate {
		// The leaf's last valid second first: its issuer was valid then
		// when the leaf is merely past its date; then the middle of its
		// validity, for a leaf from the future.
		var err2 error
		for _, at := range []time.Time{leaf.NotAfter, leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)} {
			opts.CurrentTime = at
			if _, err2 = leaf.Verify(opts); err2 == nil {
				r.issuerTrusted = true
				break
			}
		}
		if err2 != nil && err2.Error() != r.trustErr {
			r.trustErr += "; " + err2.Error()
		}
	}
	return r
}
