package acme

import (
	"context"
	"errors"
	"testing"

	"github.com/certplan/certplan/store"
)

// Revoke asks Pebble, signed by the account that ordered the certificate:
// Pebble records the reason; a second revocation is ErrAlreadyRevoked; a
// client without an account revokes nothing.
func TestRevoke(t *testing.T) {
	e := newEnv(t)
	c := e.client(nil)
	res, err := e.obtain(c, Request{CertID: "default-127.0.0.2", Names: []string{"mail.d.test"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf := res.Cert.Leaf
	if ok, _ := e.ca.Revoked(leaf.SerialNumber); ok {
		t.Fatal("revoked before Revoke")
	}
	reason, err := ParseRevocationReason("keycompromise")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(context.Background(), leaf, reason); err != nil {
		t.Fatal(err)
	}
	if ok, code := e.ca.Revoked(leaf.SerialNumber); !ok || code != 1 {
		t.Fatalf("at Pebble: revoked %v, reason %d; want revoked, keyCompromise (1)", ok, code)
	}
	if err := c.Revoke(context.Background(), leaf, reason); !errors.Is(err, ErrAlreadyRevoked) {
		t.Fatalf("second revocation: %v, want ErrAlreadyRevoked", err)
	}

	other, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	noAcct := e.client(func(cfg *Config) { cfg.Store = other })
	if err := noAcct.Revoke(context.Background(), leaf, 0); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("without an account: %v, want ErrNoAccount", err)
	}
}

func TestParseRevocationReason(t *testing.T) {
	for in, want := range map[string]uint{"unspecified": 0, "keyCompromise": 1, "affiliationChanged": 3, "superseded": 4, "cessationOfOperation": 5} {
		if got, err := ParseRevocationReason(in); err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "certificateHold", "cACompromise", "2"} {
		if _, err := ParseRevocationReason(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
