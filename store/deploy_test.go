package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDeployState: the store keeps apply's per-certificate deploy state
// in apply/<id>.json (the path earlier versions wrote), under the lock.
func TestDeployState(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	want := DeployState{DeployedSerial: "0a", DeployedAt: now, DefaultIPs: []string{"127.0.0.2"}, VerifyFailures: 2, RedeployAfter: now, ARINextFetch: now}
	if err := s.SaveDeployState("c1", want); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("unlocked save: %v", err)
	}
	if err := s.Lock(); err != nil {
		t.Fatal(err)
	}
	defer s.Unlock()
	if got, err := s.LoadDeployState("c1"); err != nil || got.DeployedSerial != "" {
		t.Fatalf("none yet: %+v, %v", got, err)
	}
	if err := s.SaveDeployState("c1", want); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "apply", "c1.json")); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadDeployState("c1")
	if err != nil || got.DeployedSerial != "0a" || got.VerifyFailures != 2 || !got.ARINextFetch.Equal(now) {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if err := s.SaveDeployState("../x", want); err == nil {
		t.Error("an invalid id was written")
	}
	os.WriteFile(filepath.Join(dir, "apply", "c2.json"), []byte("{"), 0o644)
	if _, err := s.LoadDeployState("c2"); err == nil {
		t.Error("corrupt state: no error")
	}
	if err := s.RemoveDeployState("c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveDeployState("c1"); err != nil {
		t.Errorf("removing twice: %v", err)
	}
}

// TestStateResets: what a new certificate, a success and a failure
// forget or count.
func TestStateResets(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	d := DeployState{DeployedSerial: "0a", DefaultIPs: []string{"127.0.0.2"}, VerifyFailures: 2, RedeployAfter: now, ARINextFetch: now}
	d.NewCertificate()
	if d.VerifyFailures != 0 || !d.RedeployAfter.IsZero() || !d.ARINextFetch.IsZero() || d.DeployedSerial != "0a" || len(d.DefaultIPs) != 1 {
		t.Errorf("new certificate: %+v", d)
	}
	rs := RenewalState{Failures: 3, LastError: "x", BackoffUntil: now, RetryAfter: now, ARIWindowStart: now, ARIWindowEnd: now,
		ARIFetchedAt: now, ARIExplanation: "u", ReducedCoverageSince: now}
	rs.Succeeded(now)
	if rs != (RenewalState{LastAttempt: now, LastSuccess: now}) {
		t.Errorf("succeeded: %+v", rs)
	}
	rs.Failed(now, "boom", func(n int) time.Duration { return time.Duration(n) * time.Minute })
	rs.Failed(now, "boom again", func(n int) time.Duration { return time.Duration(n) * time.Minute })
	if rs.Failures != 2 || rs.LastError != "boom again" || !rs.BackoffUntil.Equal(now.Add(2*time.Minute)) || !rs.LastSuccess.Equal(now) {
		t.Errorf("failed twice: %+v", rs)
	}
}
