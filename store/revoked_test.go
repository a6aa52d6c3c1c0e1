package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRevocations(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if rs, err := s.LoadRevocations("a"); err != nil || len(rs) != 0 {
		t.Fatalf("none yet: %v, %v", rs, err)
	}
	s.Unlock()
	if err := s.SaveRevocation("a", Revocation{Serial: "1"}); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("unlocked save: %v", err)
	}
	if err := s.Lock(); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, serial := range []string{"1a", "2b"} {
		if err := s.SaveRevocation("a", Revocation{Serial: serial, Reason: "keyCompromise", RevokedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := s.LoadRevocations("a")
	if err != nil || len(rs) != 2 || rs[0].Serial != "1a" || rs[1].Serial != "2b" {
		t.Fatalf("revocations %+v, %v", rs, err)
	}
	if rv, err := s.Revoked("a", "2b"); err != nil || rv == nil || rv.Reason != "keyCompromise" || !rv.RevokedAt.Equal(at) {
		t.Fatalf("Revoked(2b) = %+v, %v", rv, err)
	}
	if rv, err := s.Revoked("a", "3c"); err != nil || rv != nil {
		t.Fatalf("Revoked(3c) = %+v, %v", rv, err)
	}
	// A corrupt record is an error to read, and is replaced by the next save.
	p := filepath.Join(dir, "certs", "a", "revoked.json")
	if err := os.WriteFile(p, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoked("a", "1a"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt: %v", err)
	}
	if err := s.SaveRevocation("a", Revocation{Serial: "3c"}); err != nil {
		t.Fatal(err)
	}
	if rv, err := s.Revoked("a", "3c"); err != nil || rv == nil {
		t.Fatalf("after a corrupt record: %+v, %v", rv, err)
	}
	if err := s.SaveRevocation("../x", Revocation{Serial: "1"}); err == nil {
		t.Fatal("invalid id accepted")
	}
}
