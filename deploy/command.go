package deploy

// This file runs the pre and post hooks of a run: commands that are not
// about one certificate (stop a web server that holds port 80 before the
// HTTP-01 challenge, start it again afterwards), run the way deploy hooks
// are (own process group, bounded output, a timeout).

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/certplan/certplan/internal/proc"
)

// Kinds of run hooks (HookError.Kind, CERTPLAN_HOOK).
const (
	KindPre  = "pre-hook"
	KindPost = "post-hook"
)

// RunCommand runs hook (a command line for /bin/sh -c) once for a whole
// run, as kind (KindPre or KindPost), with the process's environment plus
// CERTPLAN_HOOK=pre or post and env. It kills the hook's process group when
// timeout passes or ctx ends. It returns the combined output (bounded) and
// a *HookError on failure.
func RunCommand(ctx context.Context, kind, hook string, env []string, timeout time.Duration) ([]byte, error) {
	if strings.TrimSpace(hook) == "" {
		return nil, errors.New(kind + ": empty command")
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", hook)
	cmd.Env = append(os.Environ(), "CERTPLAN_HOOK="+strings.TrimSuffix(kind, "-hook"))
	cmd.Env = append(cmd.Env, env...)
	out, err := proc.Run(cmd, 2*time.Second)
	if err == nil {
		return out, nil
	}
	return out, hookError(ctx, &HookError{Kind: kind, Hook: hook, ExitCode: -1, Output: string(out), Err: err})
}

// hookError fills in he's exit code and whether it timed out.
func hookError(ctx context.Context, he *HookError) *HookError {
	var ee *exec.ExitError
	if errors.As(he.Err, &ee) && ee.Exited() {
		he.ExitCode = ee.ExitCode()
	}
	if ctx.Err() == context.DeadlineExceeded {
		he.TimedOut = true
	}
	return he
}
