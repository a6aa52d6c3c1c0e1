package report

import (
	"bytes"
	"fmt"
	"html/template"
	"net/netip"
	"slices"
	"strings"

	"github.com/certplan/certplan/model"
)

// HTML renders the plan as one self-contained HTML file (inline CSS, no
// scripts, no external resources): the summary, the names the plan breaks,
// the before/after coverage matrix, the names still broken and why, the
// certificates, and every exclusion and warning explained. inv may be nil.
func HTML(p *model.Plan, inv *model.Inventory) []byte {
	info := infos(inv)
	d := htmlData{P: p, S: Summarize(p), Headline: headline(p, Summarize(p))}
	d.Matrix = matrix(p.Coverage)
	d.ByPlan, d.Still = brokenRows(p.Coverage)
	for _, e := range p.Excluded {
		d.Excluded = append(d.Excluded, exclRow{e, strings.Join(info[e.Name].roles, ", "), strings.Join(info[e.Name].domains, ", ")})
	}
	for _, c := range p.Certificates {
		d.Certs = append(d.Certs, certRow{c, markNames(c, info)})
	}
	var b bytes.Buffer
	if err := page.Execute(&b, d); err != nil {
		// The template is fixed and the data plain: an error is a bug.
		panic(fmt.Sprintf("report: html template: %v", err))
	}
	return b.Bytes()
}

type htmlData struct {
	P        *model.Plan
	S        Summary
	Headline []string
	Matrix   *matrixData
	ByPlan   []rowGroup // rows where a client verifies today and not after
	Still    []rowGroup // the other rows not ok after the plan
	Excluded []exclRow
	Certs    []certRow
}

type exclRow struct {
	model.Exclusion
	Roles, Domains string
}

type certRow struct {
	model.PlannedCert
	Shown []string
}

type matrixData struct {
	Cols []string // "IP:port"
	Rows []matrixRow
}

type matrixRow struct {
	Name   string
	Status string // "fixed", "broken", "regressed", "ok"
	Cells  []*model.PlanCoverage
}

func matrix(cov []model.PlanCoverage) *matrixData {
	if len(cov) == 0 {
		return nil
	}
	type ep struct {
		ip   string
		port int
	}
	var eps []ep
	seen := map[ep]bool{}
	for _, c := range cov {
		e := ep{c.IP, c.Port}
		if !seen[e] {
			seen[e] = true
			eps = append(eps, e)
		}
	}
	slices.SortFunc(eps, func(a, b ep) int {
		x, err1 := netip.ParseAddr(a.ip)
		y, err2 := netip.ParseAddr(b.ip)
		if err1 == nil && err2 == nil && x != y {
			return x.Compare(y)
		}
		if a.ip != b.ip {
			return strings.Compare(a.ip, b.ip)
		}
		return a.port - b.port
	})
	col := map[ep]int{}
	m := &matrixData{}
	for i, e := range eps {
		col[e] = i
		m.Cols = append(m.Cols, fmt.Sprintf("%s:%d", e.ip, e.port))
	}
	states := nameStates(cov)
	row := map[string]int{}
	for i := range cov {
		c := &cov[i]
		r, ok := row[c.Name]
		if !ok {
			r = len(m.Rows)
			row[c.Name] = r
			st := states[c.Name]
			status := "ok"
			switch {
			case st.regressed:
				status = "regressed"
			case st.before && st.after:
			case st.after:
				status = "fixed"
			default:
				status = "broken"
			}
			m.Rows = append(m.Rows, matrixRow{Name: c.Name, Status: status, Cells: make([]*model.PlanCoverage, len(eps))})
		}
		m.Rows[r].Cells[col[ep{c.IP, c.Port}]] = c
	}
	return m
}

func verdictClass(v string) string {
	switch v {
	case model.VerdictOK:
		return "ok"
	case model.VerdictError:
		return "err"
	default:
		return "bad"
	}
}

func verdictMark(v string) string {
	switch v {
	case model.VerdictOK:
		return "✓"
	case model.VerdictMismatch:
		return "✗"
	case model.VerdictExpired:
		return "E"
	case model.VerdictUntrusted:
		return "U"
	default:
		return "⨯"
	}
}

var page = template.Must(template.New("plan").Funcs(template.FuncMap{
	"vc":   verdictClass,
	"vm":   verdictMark,
	"join": strings.Join,
	"kind": certKind,
	"mode": defaultMode,
	"why":  sniOnlyWhy,
}).Parse(pageTemplate))

const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>certplan: plan {{.P.ID}}</title>
<style>
:root { --ok: #1a7f37; --okbg: #dafbe1; --bad: #b42318; --badbg: #fee4e2; --err: #7a5af8; --errbg: #ebe9fe; --warn: #9a6700; --warnbg: #fff8c5; --line: #d0d7de; --muted: #57606a; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0; padding: 24px 32px 48px; background: #f6f8fa; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.meta { color: var(--muted); margin-bottom: 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 130px; }
.card b { display: block; font-size: 26px; line-height: 1.2; }
.card span { color: var(--muted); font-size: 12.5px; }
.card.good b { color: var(--ok); } .card.badc b { color: var(--bad); } .card.warnc b { color: var(--warn); }
.alert { background: var(--badbg); border: 1px solid var(--bad); color: var(--bad); border-radius: 8px; padding: 10px 14px; margin: 12px 0; font-weight: 600; }
ul.head { margin: 8px 0; padding-left: 20px; }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); width: 100%; }
th, td { border: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #eaeef2; font-weight: 600; position: sticky; top: 0; }
td.names { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.chip { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.c-new { background: #ddf4ff; color: #0969da; } .c-changed { background: var(--warnbg); color: var(--warn); } .c-unchanged { background: #eaeef2; color: var(--muted); }
.c-default { background: #dafbe1; color: var(--ok); } .c-SNI { background: #fbefff; color: #8250df; }
.s-ok { color: var(--muted); } .s-fixed { color: var(--ok); font-weight: 600; } .s-broken { color: var(--bad); font-weight: 600; } .s-regressed { color: #fff; background: var(--bad); font-weight: 600; }
.cell { white-space: nowrap; font-size: 12px; }
.v { display: inline-block; min-width: 16px; text-align: center; border-radius: 3px; font-weight: 700; }
.v.ok { color: var(--ok); background: var(--okbg); } .v.bad { color: var(--bad); background: var(--badbg); } .v.err { color: var(--err); background: var(--errbg); }
.lbl { color: var(--muted); display: inline-block; width: 46px; }
.note { color: var(--bad); font-size: 12px; }
.legend { color: var(--muted); font-size: 12.5px; margin: 6px 0; }
.code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; color: var(--bad); white-space: nowrap; }
.wcode { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; color: var(--warn); white-space: nowrap; }
.empty { color: var(--muted); font-style: italic; }
</style>
</head>
<body>
<h1>Certificate plan <code>{{.P.ID}}</code></h1>
<div class="meta">{{if .P.GeneratedAt}}Generated {{.P.GeneratedAt}} · {{end}}server IPs {{join .P.Policy.ServerIPs ", "}} · at most {{.P.Policy.MaxNames}} names per certificate{{if .P.Policy.Profile}} (profile {{.P.Policy.Profile}}){{end}} · CA {{.P.Policy.CAIdentifier}}{{if .P.Policy.Hostname}} · hostname {{.P.Policy.Hostname}}{{end}} · default certificates: {{mode .P}}</div>
{{if .S.MustCoverExcluded}}<div class="alert">Must-cover names the plan cannot cover: {{join .S.MustCoverExcluded ", "}} (see Excluded below)</div>{{end}}
<div class="cards">
<div class="card"><b>{{.S.Names}}</b><span>names planned</span></div>
<div class="card"><b>{{.S.Certificates}}</b><span>certificates ({{.S.Default}} default, {{.S.SNI}} SNI)</span></div>
<div class="card"><b>{{.S.Orders}}</b><span>to order now</span></div>
<div class="card{{if .S.Excluded}} warnc{{end}}"><b>{{.S.Excluded}}</b><span>names excluded</span></div>
<div class="card{{if .S.SNIOnly}} warnc{{end}}"><b>{{.S.SNIOnly}}</b><span>SNI-only names{{if .S.ExtraIPs}} ({{.S.ExtraIPs}} more IP{{if gt .S.ExtraIPs 1}}s{{end}} needed){{end}}</span></div>
{{if .S.Probed}}<div class="card good"><b>{{.S.Fixed}}</b><span>names fixed</span></div>
<div class="card{{if .S.StillBroken}} badc{{end}}"><b>{{.S.StillBroken}}</b><span>still broken</span></div>
<div class="card{{if .S.Regressed}} badc{{end}}"><b>{{.S.Regressed}}</b><span>broken by the plan</span></div>{{end}}
<div class="card{{if .S.Warnings}} warnc{{end}}"><b>{{.S.Warnings}}</b><span>warnings</span></div>
</div>
<ul class="head">{{range .Headline}}<li>{{.}}</li>{{end}}</ul>
{{if .ByPlan}}
<h2>Broken by the plan</h2>
<div class="alert">Clients verify these names today; once the plan is deployed they will not.</div>
<table>
<tr><th>Name</th><th>Endpoints</th><th>Who loses</th><th>Today (SNI / no SNI)</th><th>After (SNI / no SNI)</th><th>Why</th></tr>
{{range .ByPlan}}<tr><td class="mono">{{.Name}}</td><td class="mono">{{.Endpoints}}</td><td>{{.Lost}}</td><td>{{.BeforeWithSNI}} / {{.BeforeWithoutSNI}}</td><td>{{.AfterWithSNI}} / {{.AfterWithoutSNI}}</td><td class="note">{{.Note}}</td></tr>
{{end}}</table>{{end}}

<h2>Coverage before and after</h2>
{{with .Matrix}}<div class="legend">Each cell: what a client dialling the name at that IP and port gets, with SNI and without, today → after the plan. ✓ verifies, ✗ name mismatch, E expired, U untrusted, ⨯ connection or TLS failure; — the name was not probed there (it does not resolve to that IP). Hover a cell for the reason.</div>
<table>
<tr><th>Name</th><th>Status</th>{{range .Cols}}<th class="mono">{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr><td class="mono">{{.Name}}</td><td class="s-{{.Status}}">{{.Status}}</td>{{range .Cells}}<td class="cell"{{if .}}{{if .Note}} title="{{.Note}}"{{end}}{{end}}>{{if .}}<span class="lbl">SNI</span><span class="v {{vc .BeforeWithSNI}}">{{vm .BeforeWithSNI}}</span> → <span class="v {{vc .AfterWithSNI}}">{{vm .AfterWithSNI}}</span><br><span class="lbl">no SNI</span><span class="v {{vc .BeforeWithoutSNI}}">{{vm .BeforeWithoutSNI}}</span> → <span class="v {{vc .AfterWithoutSNI}}">{{vm .AfterWithoutSNI}}</span>{{else}}<span class="empty">—</span>{{end}}</td>{{end}}</tr>
{{end}}</table>
{{else}}<p class="empty">No probe: run the plan with a probe (or --probe FILE) to see what each client gets today and after.</p>{{end}}
{{if .Still}}
<h2>Still broken after the plan, and why</h2>
<table>
<tr><th>Name</th><th>Endpoints</th><th>Before (SNI / no SNI)</th><th>After (SNI / no SNI)</th><th>Why</th></tr>
{{range .Still}}<tr><td class="mono">{{.Name}}</td><td class="mono">{{.Endpoints}}</td><td>{{.BeforeWithSNI}} / {{.BeforeWithoutSNI}}</td><td>{{.AfterWithSNI}} / {{.AfterWithoutSNI}}</td><td class="note">{{.Note}}</td></tr>
{{end}}</table>{{end}}

<h2>Certificates</h2>
<table>
<tr><th>ID</th><th>Kind</th><th>Change</th><th>Served on</th><th>Names (* must-cover)</th></tr>
{{range .Certs}}<tr><td class="mono">{{.ID}}</td><td><span class="chip c-{{kind .PlannedCert}}">{{kind .PlannedCert}}</span></td><td><span class="chip c-{{.Change}}">{{.Change}}</span>{{if .Added}}<br><small>+ {{join .Added ", "}}</small>{{end}}{{if .Removed}}<br><small>− {{join .Removed ", "}}</small>{{end}}</td><td class="mono">{{join .IPs ", "}}</td><td class="names">{{join .Shown ", "}}</td></tr>
{{end}}</table>
{{if .P.Retired}}<p>Retired (no longer needed): <span class="mono">{{join .P.Retired ", "}}</span></p>{{end}}

<h2>Excluded names</h2>
{{if .Excluded}}<table>
<tr><th>Name</th><th>Code</th><th>Reason and fix</th>{{if (index .Excluded 0).Roles}}<th>Roles</th>{{end}}</tr>
{{range .Excluded}}<tr><td class="mono">{{.Name}}</td><td class="code">{{.Code}}</td><td>{{.Reason}}</td>{{if .Roles}}<td>{{.Roles}}{{if .Domains}}<br><small>{{.Domains}}</small>{{end}}</td>{{end}}</tr>
{{end}}</table>{{else}}<p class="empty">None: every name in the inventory is planned.</p>{{end}}

{{if .P.SNIOnly}}<h2>SNI-only names</h2>
<p>Clients without SNI will not verify these names: {{why .P}}. {{if .P.ExtraIPsNeeded}}{{.P.ExtraIPsNeeded}} more IP{{if gt .P.ExtraIPsNeeded 1}}s{{end}} would serve them on default certificates.{{end}}</p>
<p class="mono">{{join .P.SNIOnly ", "}}</p>{{end}}

<h2>Warnings</h2>
{{if .P.Warnings}}<table>
<tr><th>Code</th><th>Name</th><th>Message</th></tr>
{{range .P.Warnings}}<tr><td class="wcode">{{.Code}}</td><td class="mono">{{.Name}}</td><td>{{.Message}}</td></tr>
{{end}}</table>{{else}}<p class="empty">None.</p>{{end}}

<h2>Rate-limit budget</h2>
<p>{{.P.Budget.Orders}} orders. Certificates per registered domain (all / to order now):</p>
<table>
<tr><th>Registered domain</th><th>Certificates</th><th>To order</th></tr>
{{range .P.Budget.PerRegisteredDomain}}<tr><td class="mono">{{.Domain}}</td><td>{{.Count}}</td><td>{{.Orders}}</td></tr>
{{end}}</table>
</body>
</html>
`
