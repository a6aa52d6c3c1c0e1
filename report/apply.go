package report

// This file renders the report of an issue or renew run (apply.Report) as
// text: ApplyText in full (issue), ApplyChanges one line per change
// (renew). JSON is the report itself (model.Marshal).

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/certplan/certplan/apply"
)

// ApplyText writes an issue run's report in full: per certificate its
// outcome, dropped names, warnings and hooks; the retirements; the
// verification matrix and what is not served as planned; the names that
// verified before the deploy and no longer do; a summary line.
func ApplyText(w io.Writer, rep *apply.Report) {
	for _, c := range rep.Certificates {
		fmt.Fprintf(w, "%s: %s\n", c.ID, certLine(&c))
		for _, d := range c.Dropped {
			fmt.Fprintf(w, "  dropped %s (%s, %s): %s\n", d.Name, d.Stage, d.Code, d.Reason)
		}
		for _, x := range c.Warnings {
			fmt.Fprintf(w, "  warning: %s\n", x)
		}
		for i := range c.Hooks {
			fmt.Fprintf(w, "  deploy hook %s\n", hookLine(c.Hooks, i))
		}
	}
	for _, r := range rep.Retired {
		fmt.Fprintf(w, "%s: retired: no longer in the plan; %s\n", r.ID, retiredLine(&r))
		for i := range r.Hooks {
			fmt.Fprintf(w, "  deploy hook %s\n", hookLine(r.Hooks, i))
		}
	}
	if len(rep.Verification) > 0 {
		writeVerifyMatrix(w, rep.Verification)
		writeNotServed(w, rep.Verification)
	}
	for _, c := range rep.Certificates {
		if s := unverifiedLine(&c); s != "" {
			fmt.Fprintln(w, s)
		}
	}
	writeRegressed(w, rep.Regressed)
	fmt.Fprintln(w)
	fmt.Fprintln(w, summaryLine(rep))
}

// writeRegressed writes the names that verified before the run's deploys
// and do not after, one line per name, IP and story, with the ports that
// share it.
func writeRegressed(w io.Writer, rows []apply.Regression) {
	line := func(g *apply.Regression) string {
		how := "without SNI"
		if g.SNI {
			how = "with SNI"
		}
		s := fmt.Sprintf("%s: verified before the deploy (%s), now %s", how, g.Before, g.After)
		if g.Detail != "" {
			s += " (" + g.Detail + ")"
		}
		return s
	}
	for i := 0; i < len(rows); {
		j, ports := i, []string{}
		for ; j < len(rows) && rows[j].Name == rows[i].Name && rows[j].IP == rows[i].IP && line(&rows[j]) == line(&rows[i]); j++ {
			ports = append(ports, strconv.Itoa(rows[j].Port))
		}
		host := rows[i].IP
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		fmt.Fprintf(w, "BROKEN BY THIS RUN: %s on %s:%s %s\n", rows[i].Name, host, strings.Join(ports, ","), line(&rows[i]))
		i = j
	}
}

// regressedNames are the distinct names of rows, sorted as rows are.
func regressedNames(rows []apply.Regression) []string {
	var out []string
	for _, g := range rows {
		if len(out) == 0 || out[len(out)-1] != g.Name {
			out = append(out, g.Name)
		}
	}
	return out
}

// writeNotServed writes what is not served as planned, one line per
// name, IP and story, with the ports that share it.
func writeNotServed(w io.Writer, rows []apply.VerifyRow) {
	var group []apply.VerifyRow
	flush := func() {
		if len(group) == 0 {
			return
		}
		ports := make([]string, len(group))
		for i, v := range group {
			ports[i] = strconv.Itoa(v.Port)
		}
		host := group[0].IP
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		fmt.Fprintln(w, verifyProblem(&group[0], host+":"+strings.Join(ports, ",")))
		group = group[:0]
	}
	for _, v := range rows {
		if v.OK() {
			continue
		}
		if len(group) > 0 && (group[0].Name != v.Name || group[0].IP != v.IP || verifyProblem(&group[0], "") != verifyProblem(&v, "")) {
			flush()
		}
		group = append(group, v)
	}
	flush()
}

// retiredLine says what became of a retired certificate, after "no longer
// in the plan; ".
func retiredLine(r *apply.Retired) string {
	switch r.Status {
	case apply.RetireUndeployed:
		if r.Message != "" {
			return r.Message
		}
		if len(r.Hooks) == 0 {
			return "its files moved to " + r.Dir
		}
		return "undeployed; its files moved to " + r.Dir
	case apply.RetireFailed:
		for i, h := range r.Hooks {
			if !h.OK {
				return "deploy hook " + hookLine(r.Hooks, i) + "; the next run tries again"
			}
		}
		return "not undeployed: " + r.Error + "; the next run tries again"
	case apply.RetireKept:
		return r.Message + ", it is no longer renewed"
	}
	return r.Message
}

// unverifiedLine says, for a certificate deployed in this run that
// verification did not find served although its hooks succeeded, when it
// is deployed again ("" for other certificates).
func unverifiedLine(c *apply.CertOutcome) string {
	if !c.Changed() || c.VerifyFailures == 0 {
		return ""
	}
	s := fmt.Sprintf("not verified %s: not served after %s (its hooks succeeded); ", c.ID, plural(c.VerifyFailures, "deploy"))
	if !c.RedeployAfter.IsZero() {
		return s + "deployed again after " + c.RedeployAfter.UTC().Format(time.RFC3339)
	}
	return s + `no more redeploys ("certplan check" keeps reporting it; once the server is fixed, "certplan issue" deploys it again)`
}

// certLine says what happened to one certificate.
func certLine(c *apply.CertOutcome) string {
	switch c.Status {
	case apply.StatusIssued:
		s := fmt.Sprintf("issued (%s: %s), %s, serial %s, expires %s", c.Action, c.Message, plural(len(c.Issued), "name"), c.Serial, c.NotAfter.Format("2006-01-02"))
		if c.Message == "" {
			s = fmt.Sprintf("issued (%s), %s, serial %s, expires %s", c.Action, plural(len(c.Issued), "name"), c.Serial, c.NotAfter.Format("2006-01-02"))
		}
		if c.Replaced != "" {
			s += ", replaces " + c.Replaced
		}
		return s
	case apply.StatusWouldIssue:
		return fmt.Sprintf("would %s (%s): %s", c.Action, c.Message, strings.Join(c.Issued, " "))
	case apply.StatusRedeployed:
		return "deployed again: the hooks of serial " + c.Serial + " had not all succeeded"
	case apply.StatusUnchanged:
		return "unchanged: " + c.Message
	case apply.StatusWaiting:
		return "waiting: " + c.Message
	case apply.StatusKept:
		return "kept the current certificate: " + c.Error + nextTry(c)
	case apply.StatusDeferred:
		return "deferred: " + c.Message
	}
	return "failed: " + c.Error + nextTry(c)
}

func nextTry(c *apply.CertOutcome) string {
	if c.NextCheck.IsZero() {
		return ""
	}
	return "; next attempt after " + c.NextCheck.UTC().Format(time.RFC3339)
}

// hookLine says how hooks[i] went, naming it by hookLabel; hooks of one
// certificate that share a label get their position too.
func hookLine(hooks []apply.HookOutcome, i int) string {
	h := hooks[i]
	label := hookLabel(h.Hook)
	for j := range hooks {
		if j != i && hookLabel(hooks[j].Hook) == label {
			label = fmt.Sprintf("%s (#%d)", label, i+1)
			break
		}
	}
	if h.OK {
		return label + ": ok"
	}
	// The line names the certificate already.
	msg := h.Error
	if rest, ok := strings.CutPrefix(msg, "deploy hook for "); ok {
		if _, after, ok := strings.Cut(rest, ": "); ok {
			msg = after
		}
	}
	return label + ": failed: " + msg
}

// verifyProblem says why v is not as planned; endpoint is where ("127.0.0.2:25").
func verifyProblem(v *apply.VerifyRow, endpoint string) string {
	var parts []string
	if v.WithSNI != apply.VerifyNew && v.WithSNI != apply.VerifyCurrent {
		parts = append(parts, "with SNI "+v.WithSNI+": "+v.WithSNIDetail)
	}
	if v.WithoutSNI != apply.VerifyNew && v.WithoutSNI != apply.VerifyCurrent && v.WithoutSNI != apply.VerifySNIOnly {
		parts = append(parts, "without SNI "+v.WithoutSNI+": "+v.WithoutSNIDetail)
	}
	return fmt.Sprintf("not served: %s on %s (%s): %s", v.Name, endpoint, v.CertID, strings.Join(parts, "; "))
}

// verifyMark is a verification verdict in one character.
var verifyMark = map[string]string{
	apply.VerifyNew: "+", apply.VerifyCurrent: "c", apply.VerifySNIOnly: "s", apply.VerifyOld: "O", apply.VerifyBad: "X",
}

// writeVerifyMatrix prints one row per name and IP and one column per
// port; a cell is two marks, with SNI then without.
func writeVerifyMatrix(w io.Writer, rows []apply.VerifyRow) {
	cells := make([]MatrixCell, len(rows))
	for i, r := range rows {
		cells[i] = MatrixCell{Name: r.Name, IP: r.IP, Extra: r.CertID, Port: r.Port,
			Mark: cmp.Or(verifyMark[r.WithSNI], "?") + cmp.Or(verifyMark[r.WithoutSNI], "?")}
	}
	WriteMatrix(w, "CERTIFICATE", cells, "(each cell: with SNI, then without; + the new certificate, c another current one, s SNI-only by plan, O an old one: not deployed, X none or not valid, . not probed)")
}

func summaryLine(rep *apply.Report) string {
	counts := map[string]int{}
	for _, c := range rep.Certificates {
		counts[c.Status]++
	}
	var parts []string
	for _, s := range []string{apply.StatusIssued, apply.StatusWouldIssue, apply.StatusRedeployed, apply.StatusUnchanged, apply.StatusWaiting, apply.StatusDeferred, apply.StatusKept, apply.StatusFailed} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	s := fmt.Sprintf("%s: %s", plural(len(rep.Certificates), "certificate"), strings.Join(parts, ", "))
	if n := len(rep.Retired); n > 0 {
		s += fmt.Sprintf("; %d retired", n)
	}
	if rep.Verified {
		ok := 0
		for _, v := range rep.Verification {
			if v.OK() {
				ok++
			}
		}
		s += fmt.Sprintf("; verified %d of %s", ok, plural(len(rep.Verification), "name/endpoint pair"))
	}
	if n := len(regressedNames(rep.Regressed)); n > 0 {
		s += fmt.Sprintf("; %s broken by this run", plural(n, "name"))
	}
	return s
}

// ApplyChanges writes a renew run's report: one line per change: issued, redeployed, kept,
// failed, retired, each verification problem and each name the run broke.
func ApplyChanges(w io.Writer, rep *apply.Report) {
	for _, c := range rep.Certificates {
		switch c.Status {
		case apply.StatusUnchanged, apply.StatusWaiting:
			continue
		case apply.StatusIssued:
			verb := map[string]string{"issue": "issued", "reissue": "reissued", "renew": "renewed"}[c.Action]
			if verb == "" {
				verb = "issued"
			}
			s := fmt.Sprintf("%s %s (%s): %s, serial %s, expires %s", verb, c.ID, c.Message, plural(len(c.Issued), "name"), c.Serial, c.NotAfter.Format("2006-01-02"))
			if c.Replaced != "" {
				s += ", replaces " + c.Replaced
			}
			if len(c.Dropped) > 0 {
				var dn []string
				for _, d := range c.Dropped {
					dn = append(dn, d.Name+" ("+d.Code+")")
				}
				s += "; dropped " + strings.Join(dn, ", ")
			}
			fmt.Fprintln(w, s+hooksSummary(&c))
		case apply.StatusRedeployed:
			fmt.Fprintf(w, "deployed %s again (serial %s)%s\n", c.ID, c.Serial, hooksSummary(&c))
		case apply.StatusWouldIssue:
			fmt.Fprintf(w, "would %s %s (%s): %s\n", c.Action, c.ID, c.Message, strings.Join(c.Issued, " "))
		case apply.StatusDeferred:
			fmt.Fprintf(w, "deferred %s: %s\n", c.ID, c.Message)
		default:
			fmt.Fprintf(w, "%s %s: %s%s\n", c.Status, c.ID, c.Error, nextTry(&c))
		}
	}
	for _, r := range rep.Retired {
		if r.Status == apply.RetireWould {
			fmt.Fprintf(w, "would retire %s: no longer in the plan; %s\n", r.ID, r.Message)
			continue
		}
		fmt.Fprintf(w, "retired %s: no longer in the plan; %s\n", r.ID, retiredLine(&r))
	}
	for _, v := range rep.Verification {
		if !v.OK() {
			fmt.Fprintln(w, verifyProblem(&v, hostPort(v.IP, v.Port)))
		}
	}
	for _, c := range rep.Certificates {
		if s := unverifiedLine(&c); s != "" {
			fmt.Fprintln(w, s)
		}
	}
	writeRegressed(w, rep.Regressed)
}

func hooksSummary(c *apply.CertOutcome) string {
	if len(c.Hooks) == 0 {
		return ""
	}
	for i, h := range c.Hooks {
		if !h.OK {
			return "; deploy hook " + hookLine(c.Hooks, i)
		}
	}
	return "; deployed"
}

// hookLabel names a hook in the text report by its command line as given:
// its first line, and when that is long, its end (where the program or
// script usually is, after any VAR=value settings). It does not parse
// shell: the JSON report has every hook in full.
func hookLabel(hook string) string {
	line, _, more := strings.Cut(strings.TrimSpace(hook), "\n")
	line = strings.TrimSpace(line)
	if r := []rune(line); len(r) > maxHookLabel {
		line = string(r[len(r)-maxHookLabel+3:])
		if i := strings.IndexByte(line, ' '); i >= 0 {
			line = line[i+1:] // from a word's start
		}
		line = "..." + line
	}
	if more {
		line += " ..."
	}
	return line
}

const maxHookLabel = 48

func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
