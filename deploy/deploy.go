// Package deploy runs deploy hooks: the commands that install a newly issued
// certificate into the mail servers (Postfix, Dovecot, Exim, cPanel; see
// examples/hooks) and reload them, and that take a retired one out again.
//
// A hook is a shell command line run once per changed or retired
// certificate, with the certificate described in environment variables:
//
//	CERTPLAN_CERT_ID      the certificate's id in the plan, such as default-127.0.0.2
//	CERTPLAN_CERT_DIR     directory with cert.pem, chain.pem, fullchain.pem,
//	                      privkey.pem and combined.pem (key then chain)
//	CERTPLAN_NAMES        the certificate's names, space-separated
//	CERTPLAN_DEFAULT_IPS  the IPs it is the default (no-SNI) certificate for,
//	                      space-separated; empty for an SNI certificate
//	CERTPLAN_CHANGE       what happened to it: new (first issued), changed
//	                      (reissued with other names), renewed (same names,
//	                      or deployed again), or retired
//
// # Retired certificates
//
// CERTPLAN_CHANGE=retired means the plan no longer has the certificate (a
// client domain left, its names moved to other certificates): the hook
// takes it out of the servers so that they stop presenting it, before and
// after it expires. CERTPLAN_NAMES and CERTPLAN_CERT_DIR are as when it was
// deployed (the files are still there for the hook to compare), and
// CERTPLAN_DEFAULT_IPS are the IPs it was the default certificate of.
//
// A hook removes only what points at this certificate: SNI entries, links
// or blocks that name its files. A name's entry that now points at another
// certificate stays. The retirements of a run come before its deploys, so
// a name that moved is deployed by its new certificate right after (and a
// hook that removed by name would still end right).
//
// A default certificate's files stay: the server's configuration names
// them, and a missing file breaks TLS for everyone on the IP. When the IP
// has a new default certificate, its deploy in the same run overwrites
// them; when the IP has left the plan, the administrator changes the
// server's configuration.
//
// A hook that knows nothing of retirement must exit 0 without changing
// anything for it, or it deploys the retired certificate again:
//
//	[ "$CERTPLAN_CHANGE" = retired ] && exit 0
//
// # Pre and post hooks
//
// RunCommand runs a run's pre or post hook (certplan's --pre-hook and
// --post-hook) the same way, once per run rather than per certificate,
// with CERTPLAN_HOOK=pre or post and no certificate variables.
//
// The package leaves choosing which certificates changed to its caller.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/certplan/certplan/internal/proc"
)

// Values of CERTPLAN_CHANGE (Cert.Change).
const (
	ChangeNew     = "new"
	ChangeChanged = "changed"
	ChangeRenewed = "renewed"
	ChangeRetired = "retired"
)

// Cert describes one certificate handed to a hook.
type Cert struct {
	ID         string
	Dir        string
	Names      []string
	DefaultIPs []string
	Change     string
}

// Env returns the CERTPLAN_* variables for c.
func (c Cert) Env() []string {
	return []string{
		"CERTPLAN_CERT_ID=" + c.ID,
		"CERTPLAN_CERT_DIR=" + c.Dir,
		"CERTPLAN_NAMES=" + strings.Join(c.Names, " "),
		"CERTPLAN_DEFAULT_IPS=" + strings.Join(c.DefaultIPs, " "),
		"CERTPLAN_CHANGE=" + c.Change,
	}
}

// HookError is a hook that failed: it exited non-zero, was killed, or
// timed out. Output holds the end of what it printed.
type HookError struct {
	// Kind is KindPre or KindPost for a run's hook; "" for a deploy hook.
	Kind     string
	Hook     string
	CertID   string
	ExitCode int // -1 when it did not exit normally
	TimedOut bool
	Output   string
	Err      error
}

func (e *HookError) Error() string {
	what := fmt.Sprintf("exit status %d", e.ExitCode)
	if e.TimedOut {
		what = "timed out"
	} else if e.ExitCode < 0 {
		what = e.Err.Error()
	}
	msg := fmt.Sprintf("deploy hook for %s: %s", e.CertID, what)
	if e.Kind != "" {
		msg = fmt.Sprintf("%s %q: %s", e.Kind, e.Hook, what)
	}
	if out := strings.TrimSpace(e.Output); out != "" {
		lines := strings.Split(out, "\n")
		msg += ": " + lines[len(lines)-1]
	}
	return msg
}

func (e *HookError) Unwrap() error { return e.Err }

// Run runs hook (a command line for /bin/sh -c) for c, with the process's
// environment plus c.Env(). It kills the hook when timeout passes or ctx ends.
// It returns the combined output (bounded) and a *HookError on failure.
func Run(ctx context.Context, hook string, c Cert, timeout time.Duration) ([]byte, error) {
	if strings.TrimSpace(hook) == "" {
		return nil, errors.New("deploy hook: empty command")
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", hook)
	cmd.Env = append(os.Environ(), c.Env()...)
	cmd.Dir = c.Dir
	// The hook runs in its own process group, and the whole group is killed
	// on timeout: a reload script's children must not outlive it. Do not
	// wait forever on a daemon that kept the pipe.
	out, err := proc.Run(cmd, 2*time.Second)
	if err == nil {
		return out, nil
	}
	return out, hookError(ctx, &HookError{Hook: hook, CertID: c.ID, ExitCode: -1, Output: string(out), Err: err})
}
