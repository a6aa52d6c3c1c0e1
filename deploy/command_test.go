package deploy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRunCommandEnvAndOutput(t *testing.T) {
	out, err := RunCommand(context.Background(), KindPre, `echo "hook=$CERTPLAN_HOOK x=$X"`, []string{"X=1"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "hook=pre x=1" {
		t.Errorf("output %q, want hook=pre x=1", got)
	}
}

func TestRunCommandFailureNamesTheHook(t *testing.T) {
	_, err := RunCommand(context.Background(), KindPost, "echo nginx did not start; exit 3", nil, time.Minute)
	var he *HookError
	if !errors.As(err, &he) || he.ExitCode != 3 || he.Kind != KindPost {
		t.Fatalf("err %v (%#v), want a post-hook HookError with exit code 3", err, he)
	}
	want := `post-hook "echo nginx did not start; exit 3": exit status 3: nginx did not start`
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// A hook that outlives its timeout is killed with its children.
func TestRunCommandTimeoutKillsGroup(t *testing.T) {
	start := time.Now()
	_, err := RunCommand(context.Background(), KindPre, "sleep 30 & sleep 30", nil, 200*time.Millisecond)
	var he *HookError
	if !errors.As(err, &he) || !he.TimedOut {
		t.Fatalf("err %v, want a timed-out HookError", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s: the group was not killed", d)
	}
	if !strings.Contains(err.Error(), "pre-hook") || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("error %q does not name the pre-hook and the timeout", err)
	}
}

func TestRunCommandEmpty(t *testing.T) {
	if _, err := RunCommand(context.Background(), KindPre, "  ", nil, 0); err == nil {
		t.Fatal("an empty pre-hook ran")
	}
}
