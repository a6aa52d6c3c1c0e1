package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/monitor"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/store"
	"github.com/spf13/cobra"
)

// certRow is one certificate as "certplan certificates" lists it.
type certRow struct {
	ID          string    `json:"id"`
	Names       []string  `json:"names"`
	IPs         []string  `json:"ips"`
	Default     bool      `json:"default"`
	Planned     bool      `json:"planned"`
	Issued      bool      `json:"issued"`
	Serial      string    `json:"serial,omitempty"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	NextRenewal time.Time `json:"next_renewal,omitzero"`
	// LastResult is "ok", "failed" or "" (never attempted).
	LastResult  string    `json:"last_result"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	Failures    int       `json:"failures"`
	LastError   string    `json:"last_error,omitempty"`
}

func newCertificatesCmd(g *globals) *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:     "certificates",
		Aliases: []string{"list"},
		Args:    cobra.NoArgs,
		Short:   "List the certificates in the state directory: names, IPs, expiry, next renewal, last result",
		Long: `certificates lists every certificate of the applied plan and every issued
certificate in the state directory: its ID, how many names it has (and the
first few), the IPs it is served on, whether it is an IP's default certificate
(what clients without SNI get) or an SNI certificate, when it expires, when it
is next due for renewal (the CA's ARI window when known, else a third of the
lifetime left), and the result of the last attempt to issue or renew it.

It only reads (no lock, no network), so it may run while "certplan renew" does.

Exit codes:
  0  listed (also when nothing is issued yet: the list says so)
  1  the state directory could not be read
  2  bad flags or arguments`,
		Example: `  certplan certificates
  certplan list --state-dir /var/lib/certplan --format json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkFormat("text", "json"); err != nil {
				return err
			}
			plan, certs, _, err := loadCheckState(stateDir)
			if err != nil {
				return err
			}
			rows := certRows(certs, planned(plan))
			w, commit := g.output()
			if g.Format == "json" {
				b, _ := json.MarshalIndent(map[string]any{"certificates": rows}, "", "  ")
				w.Write(append(b, '\n'))
			} else {
				writeCertRows(w, rows, g.Now())
			}
			return commit()
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", store.DefaultDir, "certplan's state `dir`")
	return cmd
}

// planned is the set of certificate IDs the applied plan has.
func planned(plan *model.Plan) map[string]bool {
	m := map[string]bool{}
	if plan == nil {
		return m
	}
	for _, c := range plan.Certificates {
		m[c.ID] = true
	}
	return m
}

// certRows turns what check loads into the list's rows, in the same order:
// the plan's certificates, then issued ones the plan no longer has.
func certRows(certs []monitor.Cert, inPlan map[string]bool) []certRow {
	rows := make([]certRow, 0, len(certs))
	for _, c := range certs {
		r := certRow{ID: c.ID, Names: c.Names, IPs: c.IPs, Default: c.Default, Planned: inPlan[c.ID], Issued: c.Issued,
			Serial: c.Serial, NotAfter: c.NotAfter, LastAttempt: c.LastAttempt, Failures: c.Failures, LastError: c.LastError}
		if r.Names == nil {
			r.Names = []string{}
		}
		if r.IPs == nil {
			r.IPs = []string{}
		}
		if c.Issued {
			r.NextRenewal, _ = planner.RenewAt(&planner.CertState{NotBefore: c.NotBefore, NotAfter: c.NotAfter, ARI: c.ARI}, 0)
		}
		switch {
		case c.Failures > 0:
			r.LastResult = "failed"
		case !c.LastSuccess.IsZero() || c.Issued:
			r.LastResult = "ok"
		}
		rows = append(rows, r)
	}
	return rows
}

func writeCertRows(w io.Writer, rows []certRow, now time.Time) {
	if len(rows) == 0 {
		fmt.Fprintln(w, `no certificates planned or issued: run "certplan issue" first`)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tIPS\tNAMES\tNOT AFTER\tNEXT RENEWAL\tLAST RESULT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, certKind(r), dash(strings.Join(r.IPs, ",")),
			firstNames(r.Names, 2), dateOr(r.NotAfter, "not issued"), renewalText(r, now), lastResult(r))
	}
	tw.Flush()
}

func certKind(r certRow) string {
	switch {
	case !r.Planned:
		return "retiring"
	case r.Default:
		return "default"
	}
	return "sni"
}

// firstNames is "3: a, b, ..." for a list of 3 names shown 2 at most.
func firstNames(names []string, max int) string {
	if len(names) == 0 {
		return "0"
	}
	shown := names
	if len(shown) > max {
		shown = shown[:max]
	}
	s := fmt.Sprintf("%d: %s", len(names), strings.Join(shown, ", "))
	if len(names) > max {
		s += ", ..."
	}
	return s
}

func dateOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func renewalText(r certRow, now time.Time) string {
	switch {
	case !r.Issued:
		return "-"
	case !r.NextRenewal.After(now):
		return "due now"
	}
	return dateOr(r.NextRenewal, "-")
}

func lastResult(r certRow) string {
	switch r.LastResult {
	case "failed":
		return fmt.Sprintf("failed %s (%s): %s", dateOr(r.LastAttempt, "-"), plural(r.Failures, "attempt"), oneLine(r.LastError, 80))
	case "":
		return "-"
	}
	return r.LastResult
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine is s on one line, cut to at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}
