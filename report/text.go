package report

import (
	"bytes"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/certplan/certplan/model"
)

// headline returns the summary lines shared by the text and Markdown
// renderings.
func headline(p *model.Plan, s Summary) []string {
	var l []string
	l = append(l, fmt.Sprintf("%s on %s, %s to order (%d unchanged%s)",
		plural(s.Names, "name"), plural(s.Certificates, "certificate"), plural(s.Orders, "certificate"), s.Unchanged, retiredNote(s)))
	l = append(l, fmt.Sprintf("%s (for clients without SNI), %s, on %s", plural(s.Default, "default certificate"), plural(s.SNI, "SNI certificate"), plural(s.IPs, "server IP")))
	sni := fmt.Sprintf("%s SNI-only", plural(s.SNIOnly, "name"))
	if s.ExtraIPs > 0 {
		sni += fmt.Sprintf(" (%d more IPs would serve them without SNI)", s.ExtraIPs)
		if s.ExtraIPs == 1 {
			sni = strings.Replace(sni, "1 more IPs", "1 more IP", 1)
		}
	}
	l = append(l, fmt.Sprintf("%s excluded, %s", plural(s.Excluded, "name"), sni))
	if ns := noSNILine(p); ns != "" {
		l = append(l, ns)
	}
	if s.Probed {
		l = append(l, fmt.Sprintf("against today: %d fixed, %d still broken, %d broken by the plan, %d already fine",
			s.Fixed, s.StillBroken, s.Regressed, s.AlreadyOK))
	} else {
		l = append(l, "against today: not probed (no before/after coverage)")
	}
	if len(s.MustCoverExcluded) > 0 {
		l = append(l, "MUST-COVER NAMES NOT PLANNED: "+strings.Join(s.MustCoverExcluded, ", "))
	}
	if len(s.BrokenByPlan) > 0 {
		l = append(l, fmt.Sprintf("BROKEN BY THE PLAN: %s that clients verify today will fail once the plan is deployed: %s",
			plural(len(s.BrokenByPlan), "name"), listSome(s.BrokenByPlan, 10)))
	}
	l = append(l, plural(s.Warnings, "warning"))
	return l
}

// noSNILine says, per server IP, how many hosted domains clients without
// SNI fully verify (every planned name on the IP's default certificate)
// before and after the plan ([model.Plan.NoSNI]); "" for a plan without
// the counts.
func noSNILine(p *model.Plan) string {
	var parts []string
	for _, r := range p.NoSNI {
		before := "? today"
		switch r.BeforeFrom {
		case model.NoSNIFromProbe:
			before = fmt.Sprintf("%d today (probe)", r.Before)
		case model.NoSNIFromPrevious:
			before = fmt.Sprintf("%d today (previous plan)", r.Before)
		}
		parts = append(parts, fmt.Sprintf("%s %s -> %d after, of %d", r.IP, before, r.After, r.Domains))
	}
	if len(parts) == 0 {
		return ""
	}
	return "hosted domains fully covered without SNI: " + strings.Join(parts, "; ")
}

// wildcardPolicy says the plan's wildcard mode, "" for never.
func wildcardPolicy(p *model.Plan) string {
	switch {
	case p.Policy.Wildcards == "":
		return ""
	case len(p.Policy.WildcardZones) > 0:
		return fmt.Sprintf(", wildcards %s (zones %s)", p.Policy.Wildcards, strings.Join(p.Policy.WildcardZones, ", "))
	}
	return ", wildcards " + p.Policy.Wildcards
}

// listSome joins the first max names and says how many more there are.
func listSome(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:max], ", "), len(names)-max)
}

// brokenByPlanLine says plainly what one group of regressed rows loses
// and why: "smtp.domain4.test on 127.0.0.2:25,993: all clients verify
// today, after the plan they get a mismatch: excluded (caa-forbids): ...".
func brokenByPlanLine(g rowGroup) string {
	return fmt.Sprintf("%s on %s: %s verify today, after the plan %s; %s", g.Name, g.Endpoints, lost(&g.PlanCoverage), afterWords(&g.PlanCoverage), g.Note)
}

// afterWords says what the clients that lose get after the plan.
func afterWords(c *model.PlanCoverage) string {
	v := c.AfterWithoutSNI
	if c.BeforeWithSNI == model.VerdictOK && c.AfterWithSNI != model.VerdictOK {
		v = c.AfterWithSNI
	}
	switch v {
	case model.VerdictMismatch:
		return "they get a name mismatch"
	case model.VerdictError:
		return "the handshake fails"
	}
	return "the certificate is " + v
}

func retiredNote(s Summary) string {
	if s.Retired == 0 {
		return ""
	}
	return fmt.Sprintf(", %d retired", s.Retired)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// defaultMode says how the plan's default certificates are served: one
// per IP (per-ip, also every plan made before the mode was recorded) or
// one shared by every server IP (shared, as cPanel's service certificate).
func defaultMode(p *model.Plan) string {
	if p.Policy.DefaultCert == model.DefaultCertShared {
		return "shared (one default certificate for every server IP)"
	}
	return "per-ip (a default certificate per server IP)"
}

// sniOnlyWhy says why the plan's SNI-only names are not on a default
// certificate.
func sniOnlyWhy(p *model.Plan) string {
	if p.Policy.DefaultCert == model.DefaultCertShared {
		return "the default certificate shared by all IPs is full"
	}
	return "the default certificate of their IP is full"
}

func certKind(c model.PlannedCert) string {
	if c.Default {
		return "default"
	}
	return "SNI"
}

func changeNote(c model.PlannedCert) string {
	s := c.Change
	if len(c.Added) > 0 {
		s += fmt.Sprintf(" +%d", len(c.Added))
	}
	if len(c.Removed) > 0 {
		s += fmt.Sprintf(" -%d", len(c.Removed))
	}
	return s
}

// Text renders the plan for a terminal: the summary, the names the plan
// breaks (clients verify them today and will not after), then
// certificates, exclusions, warnings, SNI-only names and the names still
// broken after the plan, one line per name, verdicts and reason with the
// endpoints they apply to. inv may be nil.
func Text(p *model.Plan, inv *model.Inventory) []byte {
	var b bytes.Buffer
	s := Summarize(p)
	fmt.Fprintf(&b, "plan %s", p.ID)
	if p.GeneratedAt != "" {
		fmt.Fprintf(&b, " (%s)", p.GeneratedAt)
	}
	fmt.Fprintf(&b, ": at most %d names per certificate", p.Policy.MaxNames)
	if p.Policy.Profile != "" {
		fmt.Fprintf(&b, " (profile %s)", p.Policy.Profile)
	}
	fmt.Fprintf(&b, ", CA %s%s\n  default certificates: %s\n", p.Policy.CAIdentifier, wildcardPolicy(p), defaultMode(p))
	for _, l := range headline(p, s) {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	if l := danePinnedLine(p); l != "" {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	info := infos(inv)
	byPlan, still := brokenRows(p.Coverage)
	if len(byPlan) > 0 {
		fmt.Fprintf(&b, "\nBROKEN BY THE PLAN (clients verify these today; deploying the plan breaks them)\n")
		for _, g := range byPlan {
			fmt.Fprintf(&b, "  %s\n", brokenByPlanLine(g))
		}
	}

	fmt.Fprintf(&b, "\nCERTIFICATES\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, c := range p.Certificates {
		fmt.Fprintf(tw, "  %s\t%s\t%s\ton %s\t%s\n", c.ID, certKind(c), changeNote(c), strings.Join(c.IPs, ", "), plural(len(c.Names), "name"))
	}
	tw.Flush()
	for _, c := range p.Certificates {
		fmt.Fprintf(&b, "  %s:\n", c.ID)
		wrap(&b, "    ", markNames(c, info), 100)
		if len(c.Removed) > 0 {
			wrap(&b, "    removed: ", c.Removed, 100)
		}
		if c.Key != "" {
			fmt.Fprintf(&b, "    key: %s (%s)\n", c.Key, c.KeyReason)
		}
	}
	if len(p.Retired) > 0 {
		fmt.Fprintf(&b, "  retired (no longer needed): %s\n", strings.Join(p.Retired, ", "))
	}
	if len(p.Excluded) > 0 {
		fmt.Fprintf(&b, "\nEXCLUDED\n")
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, e := range p.Excluded {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.Name, e.Code, e.Reason)
		}
		tw.Flush()
	}
	if len(p.Warnings) > 0 {
		fmt.Fprintf(&b, "\nWARNINGS\n")
		writeWarnings(&b, p.Warnings)
	}
	if len(p.SNIOnly) > 0 {
		fmt.Fprintf(&b, "\nSNI ONLY (clients without SNI will not verify these: %s)\n", sniOnlyWhy(p))
		wrap(&b, "  ", p.SNIOnly, 100)
	}
	if len(still) > 0 {
		fmt.Fprintf(&b, "\nSTILL BROKEN AFTER THE PLAN (before -> after, with SNI / without SNI)\n")
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, c := range still {
			fmt.Fprintf(tw, "  %s\t%s\t%s/%s -> %s/%s\t%s\n", c.Name, c.Endpoints,
				c.BeforeWithSNI, c.BeforeWithoutSNI, c.AfterWithSNI, c.AfterWithoutSNI, c.Note)
		}
		tw.Flush()
	}
	return b.Bytes()
}

// danePinnedLine counts the names left out because their TLSA records
// trust no key of the certificate they would go on ("" for none): the
// records to publish are in their EXCLUDED lines.
func danePinnedLine(p *model.Plan) string {
	var ns []string
	for _, e := range p.Excluded {
		if e.Code == model.ExcludeDANEPinned {
			ns = append(ns, e.Name)
		}
	}
	if len(ns) == 0 {
		return ""
	}
	return fmt.Sprintf("DANE: %s left out, their TLSA records trusting no key of the certificate they would go on (EXCLUDED gives the records to publish): %s",
		plural(len(ns), "name"), listSome(ns, 10))
}

// markNames returns a certificate's names, must-cover ones marked with "*"
// and IDNs followed by their Unicode form.
func markNames(c model.PlannedCert, info map[string]nameInfo) []string {
	out := make([]string, len(c.Names))
	for i, n := range c.Names {
		s := n
		if u := info[n].unicode; u != "" {
			s += " (" + u + ")"
		}
		for _, m := range c.MustCover {
			if m == n {
				s += "*"
			}
		}
		out[i] = s
	}
	return out
}

// wrap writes words separated by ", " in lines of about width characters.
func wrap(b *bytes.Buffer, prefix string, words []string, width int) {
	line := prefix
	for i, w := range words {
		sep := ""
		if i < len(words)-1 {
			sep = ","
		}
		if len(line) > len(prefix) && len(line)+len(w)+1 > width {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line = strings.Repeat(" ", len(prefix))
		}
		line += w + sep + " "
	}
	b.WriteString(strings.TrimRight(line, " ") + "\n")
}

// warningsShown is how many warnings of one code the text report prints
// before it summarises the rest: with thousands of domains one code can
// repeat for each of them (a wildcard-name for every wildcard).
const warningsShown = 5

// writeWarnings prints the warnings in order, at most warningsShown of a
// code followed by a line saying how many more there are; the JSON plan
// and the other formats list them all.
func writeWarnings(b *bytes.Buffer, ws []model.Warning) {
	total := map[string]int{}
	for _, w := range ws {
		total[w.Code]++
	}
	shown := map[string]int{}
	for _, w := range ws {
		n := shown[w.Code]
		shown[w.Code]++
		switch {
		case n < warningsShown || total[w.Code] == warningsShown+1:
			if w.Name != "" {
				fmt.Fprintf(b, "  %s: %s: %s\n", w.Code, w.Name, w.Message)
			} else {
				fmt.Fprintf(b, "  %s: %s\n", w.Code, w.Message)
			}
		case n == warningsShown:
			fmt.Fprintf(b, "  %s: ... and %d more like it (--format json or markdown lists them all)\n", w.Code, total[w.Code]-warningsShown)
		}
	}
}
