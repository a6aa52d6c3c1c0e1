package model

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
)

// TLSADigest is what a TLSA record of selector and matching type holds
// for cert (RFC 6698 §2.1.2, §2.1.3): selector 0 the certificate, 1 its
// SubjectPublicKeyInfo (DER); matching type 0 those bytes, 1 their
// SHA-256, 2 their SHA-512. ok is false for an unknown selector or
// matching type.
func TLSADigest(cert *x509.Certificate, selector, matching uint8) (d []byte, ok bool) {
	var b []byte
	switch selector {
	case 0:
		b = cert.Raw
	case 1:
		b = cert.RawSubjectPublicKeyInfo
	default:
		return nil, false
	}
	switch matching {
	case 0:
		return b, true
	case 1:
		s := sha256.Sum256(b)
		return s[:], true
	case 2:
		s := sha512.Sum512(b)
		return s[:], true
	}
	return nil, false
}

// Matches reports whether t's data is cert's digest for t's selector and
// matching type (its usage aside: which certificate of a chain it must
// match is the caller's rule).
func (t TLSA) Matches(cert *x509.Certificate) bool {
	want, err := hex.DecodeString(t.Data)
	if err != nil {
		return false
	}
	got, ok := TLSADigest(cert, t.Selector, t.MatchingType)
	return ok && bytes.Equal(got, want)
}
