package store

import (
	"crypto/x509"
	"testing"
)

// A name's SNI entry may point at a certificate whose leaf lists it or a
// wildcard covering it (one left-most label, as clients match).
func TestLiveCovers(t *testing.T) {
	leaf := &x509.Certificate{DNSNames: []string{"*.D.test", "d.test"}}
	for name, want := range map[string]bool{
		"d.test": true, "mail.d.test": true, "MAIL.d.test": true, "*.d.test": true,
		"a.mail.d.test": false, "e.test": false, "*.mail.d.test": false,
	} {
		if got := covers(leaf, name); got != want {
			t.Errorf("covers(%v, %q) = %v, want %v", leaf.DNSNames, name, got, want)
		}
	}
}
