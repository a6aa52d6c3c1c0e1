package names

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// TestCoversMatchesGo compares Covers with crypto/x509's VerifyHostname on
// a real certificate for every pair: the planner, coverage and the probe
// must agree with what Go clients (and RFC 6125) accept.
func TestCoversMatchesGo(t *testing.T) {
	certNames := []string{"*.example.com", "example.com", "mail.example.com", "*.mail.example.com", "m*.example.com", "*.com"}
	hosts := []string{"example.com", "mail.example.com", "smtp.example.com", "a.mail.example.com", "mail.example.org", "x.com", "mx.example.com"}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, cn := range certNames {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, DNSNames: []string{cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			want := c.VerifyHostname(h) == nil
			if got := Covers(cn, h); got != want {
				t.Errorf("Covers(%q, %q) = %v, x509 says %v", cn, h, got, want)
			}
		}
	}
}

func TestNormalizeWildcard(t *testing.T) {
	for in, want := range map[string]string{"*.Example.COM.": "*.example.com", "Mail.example.com": "mail.example.com", "*.bücher.example": "*.xn--bcher-kva.example"} {
		got, err := NormalizeWildcard(in)
		if err != nil || got != want {
			t.Errorf("NormalizeWildcard(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"m*.example.com", "*.*.example.com", "mail.*.example.com", "*", "*.com.."} {
		if got, err := NormalizeWildcard(in); err == nil {
			t.Errorf("NormalizeWildcard(%q) = %q, want an error", in, got)
		}
	}
}

func TestWildcardParent(t *testing.T) {
	if w, ok := WildcardParent("mail.example.com"); !ok || w != "*.example.com" {
		t.Errorf("got %q %v", w, ok)
	}
	if _, ok := WildcardParent("example.com"); ok {
		t.Error("a wildcard under a TLD must not be offered")
	}
}
