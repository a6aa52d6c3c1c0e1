package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/certplan/certplan/apply"
)

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 names", 1: "1 name", 2: "2 names"} {
		if got := plural(n, "name"); got != want {
			t.Errorf("plural(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestRunError: one summary, with the exit code and a hint, for every run
// that did not do everything; none for one that did.
func TestRunError(t *testing.T) {
	ok := apply.CertOutcome{Status: apply.StatusIssued, Hooks: []apply.HookOutcome{{OK: true}}}
	failed := apply.CertOutcome{Status: apply.StatusFailed, Error: "order failed"}
	hookFailed := apply.CertOutcome{Status: apply.StatusIssued, Hooks: []apply.HookOutcome{{OK: false}}}
	tests := []struct {
		name    string
		rep     apply.Report
		mode    apply.Mode
		connErr error
		code    int
		msg     string
		hint    string
	}{
		{"ok", apply.Report{Certificates: []apply.CertOutcome{ok}}, apply.ModeRenew, nil, ExitOK, "", ""},
		{"order rejected", apply.Report{Certificates: []apply.CertOutcome{failed}}, apply.ModeRenew, nil, ExitFailure,
			"1 certificate not issued", "renew tries again after the time shown"},
		{"CA down", apply.Report{Certificates: []apply.CertOutcome{failed, failed}}, apply.ModeIssue, errors.New("dial tcp: connection refused"), ExitFailure,
			"2 certificates not issued", "check --ca and the network path to the CA"},
		{"one of two", apply.Report{Certificates: []apply.CertOutcome{ok, failed}}, apply.ModeIssue, nil, ExitPartial,
			"1 certificate not issued", "run issue again once the cause shown above is fixed"},
		{"hook", apply.Report{Certificates: []apply.CertOutcome{hookFailed}}, apply.ModeRenew, nil, ExitPartial,
			"deploy hooks failed for 1 certificate", "the next run runs the failed certificates' hooks again"},
		{"retirement hook", apply.Report{Certificates: []apply.CertOutcome{{Status: apply.StatusUnchanged}}, Retired: []apply.Retired{{ID: "x", Status: apply.RetireFailed}}}, apply.ModeRenew, nil, ExitPartial,
			"deploy hooks failed for 1 certificate", "hooks again"},
		{"not served", apply.Report{Certificates: []apply.CertOutcome{ok}, Verification: []apply.VerifyRow{
			{WithSNI: apply.VerifyNew, WithoutSNI: apply.VerifyBad}, {WithSNI: apply.VerifyNew, WithoutSNI: apply.VerifyNew}}}, apply.ModeRenew, nil, ExitPartial,
			"1 of 2 name/endpoint pairs not served as planned", `"certplan check" keeps watching`},
		{"regressed", apply.Report{Certificates: []apply.CertOutcome{ok}, Regressed: []apply.Regression{
			{Name: "mail.domain3.test", IP: "127.0.0.2", Port: 25, SNI: true, Before: "ok", After: "mismatch"},
			{Name: "mail.domain3.test", IP: "127.0.0.2", Port: 587, SNI: true, Before: "ok", After: "mismatch"}}}, apply.ModeIssue, nil, ExitPartial,
			"1 name verified before the deploy and no longer: mail.domain3.test", `the "BROKEN BY THIS RUN" lines above`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runError(&tt.rep, tt.mode, tt.connErr, nil)
			if tt.code == ExitOK {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != tt.code || ee.err == nil || ee.err.Error() != tt.msg {
				t.Fatalf("got %#v, want exit %d with %q", err, tt.code, tt.msg)
			}
			if len(ee.hints) == 0 || !strings.Contains(strings.Join(ee.hints, "\n"), tt.hint) {
				t.Errorf("hints %q, want one with %q", ee.hints, tt.hint)
			}
		})
	}
}
