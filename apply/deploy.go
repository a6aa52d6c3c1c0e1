package apply

// This file runs the deploy hooks of a changed certificate and records in
// its deploy state whether they all succeeded (see package deploy for the
// hooks' environment).

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/certplan/certplan/deploy"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
)

// deploy runs every hook for c, and records the serial as deployed when all
// succeeded; when one failed, as no serial deployed, so that the next run
// deploys it again (even a redeploy of the same serial for moved default
// IPs).
func (r *runner) deploy(ctx context.Context, pc model.PlannedCert, c *store.Cert, change string, out *CertOutcome, as *store.DeployState) {
	dc := deploy.Cert{ID: pc.ID, Dir: absDir(c.Dir), Names: c.Meta.Names, Change: change}
	if pc.Default {
		dc.DefaultIPs = pc.IPs
	}
	var ok bool
	out.Hooks, ok = r.runHooks(ctx, dc)
	as.DefaultIPs = dc.DefaultIPs
	if !ok {
		as.DeployedSerial = ""
		return
	}
	as.DeployedSerial = c.Meta.Serial
	as.DeployedAt = r.o.Now().UTC()
	if r.o.Verify == nil {
		// Nothing verifies this deploy: the hooks' word is all there is.
		as.ForgetVerification()
	}
}

// runHooks runs every hook for dc, in order, and reports whether all
// succeeded.
func (r *runner) runHooks(ctx context.Context, dc deploy.Cert) ([]HookOutcome, bool) {
	ok := true
	var hooks []HookOutcome
	for _, h := range r.o.Hooks {
		r.log.Info("running deploy hook", "id", dc.ID, "change", dc.Change, "hook", h)
		outb, err := deploy.Run(ctx, h, dc, r.o.HookTimeout)
		ho := HookOutcome{Hook: h, OK: err == nil, Output: tail(string(outb), 2048)}
		if err != nil {
			ok = false
			ho.ExitCode, ho.Error = -1, err.Error()
			var he *deploy.HookError
			if errors.As(err, &he) {
				ho.ExitCode, ho.TimedOut = he.ExitCode, he.TimedOut
			}
			// The report carries the failure.
			r.log.Info("deploy hook failed", "id", dc.ID, "error", err)
		}
		hooks = append(hooks, ho)
	}
	return hooks, ok
}

// absDir makes dir absolute: the hook runs in it, and may cd elsewhere.
func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
