package cli

// This file maps the outcome of an issue or renew run (apply.Report) to
// its exit code and its one "certplan: error:" line with hints; the
// report itself is rendered by package report.

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/apply"
)

func caHint(err error) string {
	var cs *acme.ChallengeSetupError
	switch {
	case errors.As(err, &cs):
		return "fix the challenge setup (--challenge, --dns-provider and the provider's environment variables, as lego documents them); nothing was sent to the CA"
	case errors.Is(err, acme.ErrTOSNotAgreed):
		return "read the CA's terms of service, then add --agree-tos (and --email for expiry notices)"
	case strings.Contains(err.Error(), "certificate signed by unknown authority"):
		return "a private ACME server (such as Pebble) needs --ca-roots with the root of its TLS certificate"
	}
	return "check --ca and the network path to the CA"
}

// runError sums up, in one "certplan: error:" line with hints, why a run
// did not do everything it should; the report above says it per
// certificate. It carries the exit code (nil: exit 0).
func runError(rep *apply.Report, mode apply.Mode, connErr error, o *applyOptions) error {
	code := ExitPartial
	switch rep.Result() {
	case apply.ResultOK:
		return nil
	case apply.ResultFailed:
		// A dry run's failed preflight is its finding, not a failure of the
		// run: exit 3. Not reaching the CA still is one.
		if !rep.DryRun || connErr != nil {
			code = ExitFailure
		}
	}
	if rep.DryRun && connErr == nil {
		return dryRunError(rep, code)
	}
	count := map[string]int{}
	dropped, hooksFailed := 0, 0
	for _, c := range rep.Certificates {
		count[c.Status]++
		if c.Status == apply.StatusIssued || c.Status == apply.StatusWouldIssue {
			dropped += len(c.Dropped) // a failed one's are in its error
		}
		if !hooksOK(c.Hooks) {
			hooksFailed++
		}
	}
	for _, r := range rep.Retired {
		if r.Status == apply.RetireFailed {
			hooksFailed++
		}
	}
	var s runSummary
	if n := count[apply.StatusFailed]; n > 0 {
		s.add(plural(n, "certificate")+" not issued", failedHint(rep, n, mode, connErr))
	}
	if n := count[apply.StatusKept]; n > 0 {
		s.add(plural(n, "certificate")+" kept: renewing would drop names", "--allow-reduced-coverage renews anyway; the dropped names are shown above")
	}
	if dropped > 0 {
		s.add(plural(dropped, "name") + " left off")
	}
	if n := count[apply.StatusDeferred]; n > 0 {
		s.add(plural(n, "certificate") + " deferred by --max-orders")
	}
	if hooksFailed > 0 {
		s.add("deploy hooks failed for "+plural(hooksFailed, "certificate"), "the next run runs the failed certificates' hooks again")
	}
	s.notServed(rep, o)
	if h := rep.PostHook; h != nil && !h.OK {
		s.add(h.Error, "the certificates are in place; whatever the pre-hook stopped may still be stopped: run the post-hook by hand")
	}
	s.regressed(rep)
	if len(s.parts) == 0 {
		s.add("not everything was done")
	}
	return withCode(code, errors.New(strings.Join(s.parts, "; ")), s.hints...)
}

// dryRunError sums up a dry run whose preflight found names that would
// fail: the report above names them.
func dryRunError(rep *apply.Report, code int) error {
	failed, dropped := 0, 0
	for _, c := range rep.Certificates {
		switch c.Status {
		case apply.StatusFailed, apply.StatusKept:
			failed++
		case apply.StatusWouldIssue:
			dropped += len(c.Dropped)
		}
	}
	var parts []string
	if failed > 0 {
		parts = append(parts, plural(failed, "certificate")+" would not be issued")
	}
	if dropped > 0 {
		parts = append(parts, plural(dropped, "name")+" would be left off")
	}
	if len(parts) == 0 {
		parts = append(parts, "not everything would be done")
	}
	return withCode(code, errors.New("dry run: "+strings.Join(parts, "; ")),
		"the preflight's findings are shown above per name; nothing was ordered or written")
}

// runSummary is runError's line, in parts, and its hints.
type runSummary struct{ parts, hints []string }

func (s *runSummary) add(part string, hints ...string) {
	s.parts = append(s.parts, part)
	s.hints = append(s.hints, hints...)
}

// notServed adds the verification rows not served as planned.
func (s *runSummary) notServed(rep *apply.Report, o *applyOptions) {
	bad := 0
	for _, v := range rep.Verification {
		if !v.OK() {
			bad++
		}
	}
	if bad == 0 {
		return
	}
	s.add(fmt.Sprintf("%d of %s not served as planned", bad, plural(len(rep.Verification), "name/endpoint pair")),
		`the "not served" lines above say what clients get instead; "certplan check" keeps watching`)
	if o != nil {
		s.hints = append(s.hints, notServedHint(o.hooks, o.stateDir))
	}
}

// regressed adds the names that verified before the run's deploys and do
// not after.
func (s *runSummary) regressed(rep *apply.Report) {
	var names []string
	for _, g := range rep.Regressed {
		if !slices.Contains(names, g.Name) {
			names = append(names, g.Name)
		}
	}
	if len(names) == 0 {
		return
	}
	s.add(fmt.Sprintf("%s verified before the deploy and no longer: %s", plural(len(names), "name"), strings.Join(names, ", ")),
		`the "BROKEN BY THIS RUN" lines above say with or without SNI and what clients get now: a deploy hook removed or replaced what served the name (certplan's example hooks touch only the entries of the certificates they install), or the name was served by the IP's previous default certificate, which the new one replaced; plan the name (see why it is excluded in "certplan plan") or restore its own SNI entry`)
}

// failedHint says what stays of the n failed certificates (the
// certificates in place, unless none was issued yet) and what to do.
func failedHint(rep *apply.Report, n int, mode apply.Mode, connErr error) string {
	never := 0
	for _, c := range rep.Certificates {
		if c.Status == apply.StatusFailed && c.Serial == "" {
			never++
		}
	}
	stay := "the certificates in place stay"
	switch {
	case never == n:
		stay = "none of them was issued before, so their names stay uncovered"
	case never > 0:
		stay = fmt.Sprintf("the certificates in place stay (%d of the failed ones had none yet)", never)
	}
	switch {
	case connErr != nil:
		return caHint(connErr)
	case refusedIssued(rep):
		return stay + "; the CA returned a certificate that does not match the order (shown above), so nothing was stored or deployed: a private or test CA needs --issuer-roots with the root it issues under"
	case mode == apply.ModeRenew:
		return stay + `; renew tries again after the time shown ("next attempt after"), "certplan issue" at once`
	}
	return stay + "; run issue again once the cause shown above is fixed"
}

// refusedIssued reports whether a certificate failed because what the
// CA issued was refused (apply.IssuedCertError).
func refusedIssued(rep *apply.Report) bool {
	for _, c := range rep.Certificates {
		if c.Status == apply.StatusFailed && strings.Contains(c.Error, apply.IssuedCertRefused) {
			return true
		}
	}
	return false
}

func hooksOK(hs []apply.HookOutcome) bool {
	for _, h := range hs {
		if !h.OK {
			return false
		}
	}
	return true
}

// plural is "1 name", "2 names".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
