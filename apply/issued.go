package apply

// This file checks a certificate the CA issued before the store takes it
// (and before any hook sees it): it lists exactly the names ordered, it is
// valid at the run's clock, its key is the key of the request, and its
// chain verifies to the CA's issuing roots for server authentication. A
// certificate that fails is an order failure like any other: the previous
// certificate stays current, no hook runs, and the failure is backed off.

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/store"
)

// IssuedCertError is a certificate the CA returned that does not match
// what was ordered; Problem says what did not match.
type IssuedCertError struct {
	CertID  string
	Problem string
}

func (e *IssuedCertError) Error() string {
	return fmt.Sprintf("certificate %s: %s: %s; the current certificate stays", e.CertID, IssuedCertRefused, e.Problem)
}

// IssuedCertRefused is in the message of every IssuedCertError, for a
// reader of the report (which carries errors as text).
const IssuedCertRefused = "refused what the CA issued"

// storeIssued checks what Obtain returned and stores it; a certificate
// that fails the check, or that the store cannot write, is recorded as a
// failed order.
func (r *runner) storeIssued(j *job, res *acme.Result) (*store.Cert, error) {
	ob := res.Obtained
	if ob == nil {
		return nil, fmt.Errorf("certificate %s: the CA client returned no certificate", j.pc.ID)
	}
	chain := append(append([]byte{}, ob.Files.CertPEM...), ob.Files.ChainPEM...)
	if err := checkIssued(res.Issued, ob.Key.Public(), chain, r.o.IssuerRoots, j.now); err != nil {
		return nil, &IssuedCertError{CertID: j.pc.ID, Problem: err.Error()}
	}
	c, err := r.o.Store.SaveCert(j.pc.ID, ob.Files, ob.Meta)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if ob.FromNextKey {
		r.nextKeyUsed(j)
	}
	r.log.Info("certificate issued", "id", j.pc.ID, "names", len(c.Meta.Names), "serial", c.Meta.Serial)
	return c, nil
}

// maxClockSkew is how far in the future a new certificate's notBefore may
// be: a CA that does not backdate (Pebble; Let's Encrypt backdates an
// hour) stamps its own clock, which may run a little ahead of ours. A
// certificate not valid for longer than that is refused, as is one expired
// at the run's clock (Options.Now, the clock renewal decides by).
const maxClockSkew = 5 * time.Minute

// checkIssued checks an issued certificate: chainPEM is the leaf followed
// by the intermediates the CA returned; ordered the names of the order;
// key the public key of the request; roots the CA's issuing roots (nil:
// the system's). The error says what did not match.
func checkIssued(ordered []string, key crypto.PublicKey, chainPEM []byte, roots *x509.CertPool, now time.Time) error {
	certs, err := ParseChain(chainPEM)
	if err != nil {
		return err
	}
	leaf := certs[0]
	if err := sameNames(ordered, leaf); err != nil {
		return err
	}
	if now.Add(maxClockSkew).Before(leaf.NotBefore) {
		return fmt.Errorf("not valid before %s (now %s)", leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("expired at %s (now %s)", leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if k, ok := key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(leaf.PublicKey) {
		return fmt.Errorf("its public key is not the key of the request")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	at := now // within the skew allowed above: as of its notBefore
	if at.Before(leaf.NotBefore) {
		at = leaf.NotBefore
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return fmt.Errorf("its chain does not verify to the CA's issuing roots (--issuer-roots; default the system's): %w", err)
	}
	return nil
}

// ParseChain parses the PEM certificates of a chain, leaf first.
func ParseChain(chainPEM []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := chainPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("chain holds a %q PEM block", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("chain: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("no certificate in what the CA returned")
	}
	return certs, nil
}

// sameNames checks that leaf lists exactly the ordered DNS names, and no
// other identifier (IP address, e-mail address, URI).
func sameNames(ordered []string, leaf *x509.Certificate) error {
	want, got := normNames(ordered), normNames(leaf.DNSNames)
	var extra, missing []string
	for _, n := range got {
		if !slices.Contains(want, n) {
			extra = append(extra, n)
		}
	}
	for _, n := range want {
		if !slices.Contains(got, n) {
			missing = append(missing, n)
		}
	}
	var parts []string
	if len(extra) > 0 {
		parts = append(parts, "it lists names not ordered: "+strings.Join(extra, ", "))
	}
	if len(missing) > 0 {
		parts = append(parts, "it lacks names ordered: "+strings.Join(missing, ", "))
	}
	if n := len(leaf.IPAddresses) + len(leaf.EmailAddresses) + len(leaf.URIs); n > 0 {
		parts = append(parts, fmt.Sprintf("it lists %d identifiers other than DNS names", n))
	}
	if len(parts) > 0 {
		return fmt.Errorf("%s", strings.Join(parts, "; "))
	}
	return nil
}
