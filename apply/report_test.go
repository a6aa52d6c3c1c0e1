package apply

import (
	"testing"

	"github.com/certplan/certplan/acme"
)

func TestResult(t *testing.T) {
	ok := CertOutcome{Status: StatusIssued, Hooks: []HookOutcome{{OK: true}}}
	failed := CertOutcome{Status: StatusFailed}
	tests := []struct {
		name string
		rep  Report
		want Result
	}{
		{"nothing due", Report{Certificates: []CertOutcome{{Status: StatusUnchanged}, {Status: StatusWaiting}}}, ResultOK},
		{"issued", Report{Certificates: []CertOutcome{ok}}, ResultOK},
		{"all failed", Report{Certificates: []CertOutcome{failed, {Status: StatusUnchanged}}}, ResultFailed},
		{"one of two failed", Report{Certificates: []CertOutcome{ok, failed}}, ResultPartial},
		{"kept", Report{Certificates: []CertOutcome{{Status: StatusKept}}}, ResultPartial},
		{"dropped", Report{Certificates: []CertOutcome{{Status: StatusIssued, Dropped: []acme.Dropped{{Name: "x"}}}}}, ResultPartial},
		{"hook failed", Report{Certificates: []CertOutcome{{Status: StatusIssued, Hooks: []HookOutcome{{OK: false}}}}}, ResultPartial},
		{"not served", Report{Certificates: []CertOutcome{ok}, Verification: []VerifyRow{{WithSNI: VerifyNew, WithoutSNI: VerifyOld}}}, ResultPartial},
		{"sni-only is fine", Report{Certificates: []CertOutcome{ok}, Verification: []VerifyRow{{WithSNI: VerifyNew, WithoutSNI: VerifySNIOnly}}}, ResultOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rep.Result(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStableJitter(t *testing.T) {
	seen := map[float64]bool{}
	for _, s := range []string{"1", "2", "abcdef", "fa2b19d0c3", ""} {
		j := stableJitter(s)
		if j < 0 || j >= 1 {
			t.Errorf("%q: %v out of [0, 1)", s, j)
		}
		if j != stableJitter(s) {
			t.Errorf("%q: not stable", s)
		}
		seen[j] = true
	}
	if len(seen) < 4 {
		t.Errorf("jitter does not spread: %v", seen)
	}
}
