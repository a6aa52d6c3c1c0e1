package report

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/certplan/certplan/model"
)

// Markdown renders the plan as a Markdown document: the summary, the names
// the plan breaks, then tables of certificates, exclusions, warnings and
// the coverage before and after. inv may be nil.
func Markdown(p *model.Plan, inv *model.Inventory) []byte {
	var b bytes.Buffer
	s := Summarize(p)
	info := infos(inv)
	fmt.Fprintf(&b, "# Certificate plan `%s`\n\n", p.ID)
	if p.GeneratedAt != "" {
		fmt.Fprintf(&b, "Generated %s. ", p.GeneratedAt)
	}
	fmt.Fprintf(&b, "Server IPs: %s. At most %d names per certificate", strings.Join(p.Policy.ServerIPs, ", "), p.Policy.MaxNames)
	if p.Policy.Profile != "" {
		fmt.Fprintf(&b, " (profile `%s`)", p.Policy.Profile)
	}
	fmt.Fprintf(&b, ". CA: `%s`. Default certificates: %s.\n\n", p.Policy.CAIdentifier, defaultMode(p))
	for _, l := range headline(p, s) {
		fmt.Fprintf(&b, "- %s\n", md(l))
	}
	if byPlan, _ := brokenRows(p.Coverage); len(byPlan) > 0 {
		fmt.Fprintf(&b, "\n## Broken by the plan\n\nClients verify these names today; once the plan is deployed they will not.\n\n| Name | Endpoints | Who loses | After the plan | Why |\n|---|---|---|---|---|\n")
		for _, g := range byPlan {
			fmt.Fprintf(&b, "| %s | %s | %s | %s / %s | %s |\n", md(g.Name), md(g.Endpoints), lost(&g.PlanCoverage), g.AfterWithSNI, g.AfterWithoutSNI, md(g.Note))
		}
	}
	fmt.Fprintf(&b, "\n## Certificates\n\n| ID | Kind | Change | IPs | Names |\n|---|---|---|---|---|\n")
	for _, c := range p.Certificates {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", c.ID, certKind(c), md(changeNote(c)), md(strings.Join(c.IPs, ", ")), md(strings.Join(markNames(c, info), ", ")))
	}
	if len(p.Retired) > 0 {
		fmt.Fprintf(&b, "\nRetired (no longer needed): %s\n", md(strings.Join(p.Retired, ", ")))
	}
	if len(p.Excluded) > 0 {
		fmt.Fprintf(&b, "\n## Excluded names\n\n| Name | Code | Reason |\n|---|---|---|\n")
		for _, e := range p.Excluded {
			fmt.Fprintf(&b, "| %s | `%s` | %s |\n", md(e.Name), e.Code, md(e.Reason))
		}
	}
	if len(p.Warnings) > 0 {
		fmt.Fprintf(&b, "\n## Warnings\n\n| Code | Name | Message |\n|---|---|---|\n")
		for _, w := range p.Warnings {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", w.Code, md(w.Name), md(w.Message))
		}
	}
	if len(p.SNIOnly) > 0 {
		fmt.Fprintf(&b, "\n## SNI-only names\n\nClients without SNI will not verify these (%s): %s\n", sniOnlyWhy(p), md(strings.Join(p.SNIOnly, ", ")))
	}
	if len(p.Coverage) > 0 {
		fmt.Fprintf(&b, "\n## Coverage before and after\n\n| Name | Endpoint | Before (SNI / no SNI) | After (SNI / no SNI) | Note |\n|---|---|---|---|---|\n")
		for _, c := range p.Coverage {
			fmt.Fprintf(&b, "| %s | %s:%d | %s / %s | %s / %s | %s |\n", md(c.Name), c.IP, c.Port,
				c.BeforeWithSNI, c.BeforeWithoutSNI, c.AfterWithSNI, c.AfterWithoutSNI, md(c.Note))
		}
	}
	return b.Bytes()
}

// md escapes text for a Markdown table cell.
func md(s string) string {
	r := strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "<", "&lt;", ">", "&gt;", "`", "\\`", "\n", " ")
	return r.Replace(s)
}
