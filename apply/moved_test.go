package apply

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDefaultIPsMoved: a default certificate whose IPs change while its
// names do not (the planner merged another IP's identical default into
// it) is deployed again with its new IPs, without an order; a hook that
// fails then is run again by the next run.
func TestDefaultIPsMoved(t *testing.T) {
	e := newEnv(t)
	hookLog := filepath.Join(t.TempDir(), "hooks.log")
	logged := func(o *Options) {
		o.Hooks[0] = "HOOK_LOG=" + hookLog + "\necho \"default on: $CERTPLAN_DEFAULT_IPS\"\n" + o.Hooks[0]
		o.Verify = nil
	}
	if r := e.run(plan("p1", defCert("mail.d.test")), ModeIssue, logged); r.Result() != ResultOK {
		t.Fatalf("first run: %+v", r)
	}
	serial := e.stored("default-127.0.0.2").Meta.Serial
	merged := defCert("mail.d.test")
	merged.IPs = []string{"127.0.0.2", "127.0.0.3"}
	p2 := plan("p2", merged)

	// A failing hook: the move is not recorded as deployed.
	r := e.run(p2, ModeRenew, func(o *Options) { logged(o); o.Hooks = []string{"exit 1"} })
	if got := statuses(r); got != "default-127.0.0.2="+StatusRedeployed {
		t.Fatalf("statuses %s", got)
	}
	os.Remove(hookLog)
	r = e.run(p2, ModeRenew, logged)
	if got := statuses(r); got != "default-127.0.0.2="+StatusRedeployed || r.Result() != ResultOK {
		t.Fatalf("statuses %s, result %v", got, r.Result())
	}
	if out := r.Certificates[0].Hooks[0].Output; !strings.Contains(out, "default on: 127.0.0.2 127.0.0.3") {
		t.Errorf("hook output: %s", out)
	}
	b, _ := os.ReadFile(hookLog)
	if got := strings.TrimSpace(string(b)); got != "renewed default-127.0.0.2" {
		t.Errorf("hook runs:\n%s", got)
	}
	if s := e.stored("default-127.0.0.2").Meta.Serial; s != serial {
		t.Errorf("serial %s, then %s: the move ordered a certificate", serial, s)
	}
	if r := e.run(p2, ModeRenew, logged); !r.Quiet() {
		t.Errorf("after the move: %s", statuses(r))
	}
}
