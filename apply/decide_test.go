package apply

import (
	"testing"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/store"
)

// TestDecide tables the pure decision: what is due from the plan, the
// stored certificate and its renewal and deploy state, with no I/O.
func TestDecide(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	names := []string{"a.test", "b.test"}
	fresh := &store.Meta{Serial: "01", Names: names, NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(89 * 24 * time.Hour)}
	old := &store.Meta{Serial: "02", Names: names, NotBefore: now.Add(-80 * 24 * time.Hour), NotAfter: now.Add(10 * 24 * time.Hour)}
	deployed := store.DeployState{DeployedSerial: "01"}
	failedOnce := store.RenewalState{Failures: 1, LastAttempt: now.Add(-time.Minute / 2)}
	def := model.PlannedCert{ID: "d", Names: names, Default: true, IPs: []string{"127.0.0.2", "127.0.0.3"}}
	tests := []struct {
		name     string
		f        facts
		step     step
		action   string
		reason   string
		why      string
		noDeploy bool // canDeploy false
	}{
		{name: "never issued, issue", f: facts{mode: ModeIssue}, step: stepOrder, action: planner.ActionIssue, reason: planner.ReasonNoCert},
		{name: "never issued, renew backs off", f: facts{mode: ModeRenew, rs: failedOnce}, step: stepNone, action: planner.ActionWait, reason: planner.ReasonBackoff},
		{name: "never issued, issue ignores backoff", f: facts{mode: ModeIssue, rs: failedOnce}, step: stepOrder, action: planner.ActionIssue},
		{name: "fresh and deployed", f: facts{mode: ModeRenew, cur: fresh, as: deployed}, step: stepNone, action: planner.ActionNone, reason: planner.ReasonNotDue},
		{name: "forced", f: facts{mode: ModeIssue, force: true, cur: fresh, as: deployed}, step: stepOrder, action: planner.ActionRenew, reason: "forced"},
		{name: "force is issue's only", f: facts{mode: ModeRenew, force: true, cur: fresh, as: deployed}, step: stepNone, action: planner.ActionNone},
		{name: "a third left", f: facts{mode: ModeRenew, cur: old, as: store.DeployState{DeployedSerial: "02"}}, step: stepOrder, action: planner.ActionRenew, reason: planner.ReasonThirdLeft},
		{name: "names changed", f: facts{mode: ModeRenew, cur: fresh, as: deployed, names: []string{"a.test"}}, step: stepOrder, action: planner.ActionReissue, reason: planner.ReasonNamesChanged},
		{name: "renewal backs off", f: facts{mode: ModeRenew, cur: old, rs: failedOnce, as: store.DeployState{DeployedSerial: "02"}}, step: stepNone, action: planner.ActionWait, reason: planner.ReasonBackoff, why: ""},
		{name: "ARI window open", f: facts{mode: ModeRenew, cur: fresh, as: deployed, rs: store.RenewalState{ARIWindowStart: now.Add(-time.Hour), ARIWindowEnd: now.Add(-time.Minute)}}, step: stepOrder, action: planner.ActionRenew, reason: planner.ReasonARIWindow},
		{name: "hooks failed", f: facts{mode: ModeRenew, cur: fresh}, step: stepRedeploy, action: planner.ActionNone, why: redeployHooksFailed},
		{name: "hooks failed, no hooks", f: facts{mode: ModeRenew, cur: fresh}, noDeploy: true, step: stepNone, action: planner.ActionNone},
		{name: "not served, redeploy not due", f: facts{mode: ModeRenew, cur: fresh, as: store.DeployState{VerifyFailures: 1, RedeployAfter: now.Add(time.Minute)}}, step: stepNone, action: planner.ActionNone},
		{name: "not served, redeploy due", f: facts{mode: ModeRenew, cur: fresh, as: store.DeployState{VerifyFailures: 1, RedeployAfter: now}}, step: stepRedeploy, why: redeployNotServed, action: planner.ActionNone},
		{name: "not served, issue does not wait", f: facts{mode: ModeIssue, cur: fresh, as: store.DeployState{VerifyFailures: 1, RedeployAfter: now.Add(time.Hour)}}, step: stepRedeploy, why: redeployNotServed, action: planner.ActionNone},
		{name: "renew stopped redeploying, issue deploys", f: facts{mode: ModeIssue, cur: fresh, as: store.DeployState{DeployedSerial: "01", VerifyFailures: 4}}, step: stepRedeploy, why: redeployNotServed, action: planner.ActionNone},
		{name: "renew stopped redeploying", f: facts{mode: ModeRenew, cur: fresh, as: store.DeployState{DeployedSerial: "01", VerifyFailures: 4}}, step: stepNone, action: planner.ActionNone},
		{name: "default IPs moved", f: facts{mode: ModeRenew, pc: def, cur: fresh, as: store.DeployState{DeployedSerial: "01", DefaultIPs: []string{"127.0.0.2"}}}, step: stepRedeploy, why: redeployDefaultsMoved, action: planner.ActionNone},
		{name: "default IPs same", f: facts{mode: ModeRenew, pc: def, cur: fresh, as: store.DeployState{DeployedSerial: "01", DefaultIPs: []string{"127.0.0.3", "127.0.0.2"}}}, step: stepNone, action: planner.ActionNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			f.now, f.canDeploy = now, !tt.noDeploy
			if f.names == nil {
				f.names = names
			}
			d := decide(f)
			if d.step != tt.step || d.renewal.Action != tt.action || d.why != tt.why {
				t.Errorf("decide = step %d, %s, why %q; want step %d, %s, why %q (%+v)", d.step, d.renewal.Action, d.why, tt.step, tt.action, tt.why, d.renewal)
			}
			if tt.reason != "" && d.renewal.Reason != tt.reason {
				t.Errorf("reason %s, want %s", d.renewal.Reason, tt.reason)
			}
		})
	}
}
