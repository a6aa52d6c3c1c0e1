package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/monitor"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/probe"
	"github.com/certplan/certplan/store"
	"github.com/spf13/cobra"
)

type checkOptions struct {
	stateDir   string
	inventory  string // --inventory FILE: TLSA records and MTA-STS policies of the MX hosts
	probe      probeInput
	noProbe    bool
	promFile   string
	thresholds monitor.Thresholds
}

func newCheckCmd(g *globals) *cobra.Command {
	o := &checkOptions{thresholds: monitor.DefaultThresholds}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check certificates and served names, for monitoring (Nagios exit codes, Prometheus metrics)",
		Long: `check reads the state directory (the applied plan and the issued certificates),
probes every planned name on its IPs with and without SNI, and reports, in the
Nagios plugin convention: days to expiry per certificate, renewals that fail or
are overdue, names that clients fail to verify, and the next renewal time.

A name the plan lists as sni-only is expected to fail without SNI and is not a
problem.

With --inventory (a saved "certplan inventory --format json", refreshed from
cron), the MX hosts' SMTP endpoints are also judged as validating senders see
them: DANE (the chain served with SNI against the DNSSEC-validated TLSA
records at _25._tcp.NAME) and MTA-STS (the mx patterns and the certificate,
for each domain whose policy is in enforce or testing mode).

--prom-file writes the same facts as Prometheus text-format metrics, for
node_exporter's textfile collector (written atomically).

Exit codes (Nagios):
  0  OK
  1  WARNING   a certificate expires within --warning-days, a renewal is
               failing or overdue, an input (a domain list line, a zone file,
               a --source file) could not be read when the plan was made, a
               hosted domain's DNS lookups fail (as the last renew found;
               with how long), (--inventory) an MX host fails a "testing"
               MTA-STS policy, or whether TLSA records pin its key is unknown
               (a failed lookup, a resolver that does not validate)
  2  CRITICAL  a certificate expires within --critical-days or has expired, a
               planned certificate was never issued (with its failed attempts
               to issue it, if any), a name fails to verify with or without
               SNI, or (--inventory) a validating sender refuses an MX host:
               its served chain matches none of its validated TLSA records
               (DANE), or an "enforce" MTA-STS policy does not accept it
  3  UNKNOWN   check could not run (no state, bad flags, unreadable files)`,
		Example: `  # From Nagios/Icinga (NRPE), after "certplan issue" or "certplan renew":
  certplan check --state-dir /var/lib/certplan

  # Also on non-standard ports, trusting a private CA
  certplan check --ports 25,587,465,993,smtp:2525 --ca-file /etc/ssl/private-ca.pem

  # For node_exporter's textfile collector, from cron, without the status line
  certplan check --prom-file /var/lib/node_exporter/textfile/certplan.prom > /dev/null

  # Also what DANE and MTA-STS senders do with the MX hosts
  certplan inventory --domains /etc/mail/domains --server-ip 192.0.2.10 --format json -o /var/lib/certplan-inv.json
  certplan check --inventory /var/lib/certplan-inv.json

  # Only the certificates' dates (no network)
  certplan check --no-probe`,
		Annotations: map[string]string{annotationUsageExit: fmt.Sprint(int(monitor.Unknown))},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), g)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.stateDir, "state-dir", store.DefaultDir, "certplan's state `dir`")
	o.probe.addFlags(fs, false)
	fs.StringVar(&o.inventory, "inventory", "", "read the inventory from `file` (from \"certplan inventory --format json\"); check judges the MX hosts' DANE and MTA-STS by it")
	fs.BoolVar(&o.noProbe, "no-probe", false, "do not probe the servers; judge the certificates' dates and renewals only")
	fs.StringVar(&o.promFile, "prom-file", "", "also write Prometheus text-format metrics to `file` (atomically)")
	fs.Float64Var(&o.thresholds.WarningDays, "warning-days", o.thresholds.WarningDays, "WARNING when a certificate expires within this many `days`")
	fs.Float64Var(&o.thresholds.CriticalDays, "critical-days", o.thresholds.CriticalDays, "CRITICAL when a certificate expires within this many `days`")
	return cmd
}

func (o *checkOptions) run(ctx context.Context, g *globals) error {
	if err := g.checkFormat("text", "json"); err != nil {
		return withCode(int(monitor.Unknown), err)
	}
	if o.thresholds.WarningDays < 0 || o.thresholds.CriticalDays < 0 {
		return usageError("--warning-days %v, --critical-days %v: must not be negative", o.thresholds.WarningDays, o.thresholds.CriticalDays)
	}
	if o.thresholds.CriticalDays > o.thresholds.WarningDays {
		return usageError("--critical-days %v is more than --warning-days %v: a certificate would go CRITICAL before WARNING", o.thresholds.CriticalDays, o.thresholds.WarningDays)
	}
	if err := checkOutputPath("--prom-file", o.promFile); err != nil {
		return err
	}
	now := g.Now()
	// A check that cannot run says UNKNOWN in the metrics too, rather than
	// leaving the last run's OK for node_exporter to serve.
	unknown := func(err error) error {
		if o.promFile != "" {
			var b strings.Builder
			monitor.WriteProm(&b, monitor.Result{Status: monitor.Unknown}, now)
			if werr := writeOutputFile("--prom-file", o.promFile, []byte(b.String()), 0o644); werr != nil {
				err = errors.Join(err, werr)
			}
		}
		return withCode(int(monitor.Unknown), err)
	}
	plan, certs, failing, err := loadCheckState(o.stateDir)
	if err != nil {
		return unknown(err)
	}
	var cov []model.Coverage
	if !o.noProbe && plan != nil {
		report, err := o.probePlan(ctx, g, plan)
		if err != nil {
			return unknown(err)
		}
		cov = report.Coverage
	}
	var sniOnly []string
	if plan != nil {
		sniOnly = plan.SNIOnly
	}
	r := monitor.Evaluate(now, certs, cov, sniOnly, o.thresholds)
	r.AddInputErrors(plan)
	r.AddFailingDomains(now, failing)
	if o.promFile != "" {
		var b strings.Builder
		monitor.WriteProm(&b, r, now)
		if err := writeOutputFile("--prom-file", o.promFile, []byte(b.String()), 0o644); err != nil {
			return withCode(int(monitor.Unknown), err)
		}
	}
	w, commit := g.output()
	if g.Format == "json" {
		b, _ := json.MarshalIndent(r, "", "  ")
		w.Write(append(b, '\n'))
	} else {
		writeCheckText(w, r)
	}
	if err := commit(); err != nil {
		return withCode(int(monitor.Unknown), err)
	}
	return withCode(int(r.Status), nil)
}

// loadCheckState reads the applied plan, the issued certificates and the
// hosted domains whose lookups fail. A planned certificate that has no
// files is reported as not issued; an issued one the plan no longer has is
// still checked.
func loadCheckState(dir string) (*model.Plan, []monitor.Cert, []monitor.FailingDomain, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, nil, withHint(fmt.Errorf("state dir %s: %w", dir, errors.Unwrap(err)),
			`run "certplan issue" first, or give --state-dir`)
	}
	st, err := store.OpenReadOnly(dir)
	if err != nil {
		return nil, nil, nil, stateHint(err, dir)
	}
	defer st.Close()
	plan, err := st.LoadPlan()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil, appliedPlanError(err, dir)
	}
	ids, err := st.ListCerts()
	if err != nil {
		return nil, nil, nil, err
	}
	seen := map[string]bool{}
	var certs []monitor.Cert
	if plan != nil {
		for _, pc := range plan.Certificates {
			seen[pc.ID] = true
			c, err := checkCert(st, pc.ID)
			if err != nil {
				return nil, nil, nil, err
			}
			c.Names, c.IPs, c.Default = pc.Names, pc.IPs, pc.Default
			certs = append(certs, c)
		}
	}
	for _, id := range ids {
		if !seen[id] {
			c, err := checkCert(st, id)
			if err != nil {
				return nil, nil, nil, err
			}
			certs = append(certs, c)
		}
	}
	failing, err := checkFailingDomains(st)
	if err != nil {
		return nil, nil, nil, err
	}
	return plan, certs, failing, nil
}

// checkFailingDomains reads the hosted domains whose lookups fail.
func checkFailingDomains(st *store.Store) ([]monitor.FailingDomain, error) {
	ds, err := st.LoadFailingDomains()
	if err != nil {
		return nil, stateHint(err, st.Dir())
	}
	out := make([]monitor.FailingDomain, len(ds))
	for i, d := range ds {
		out[i] = monitor.FailingDomain{Domain: d.Domain, Since: d.Since, Error: d.Error}
	}
	return out, nil
}

func checkCert(st *store.Store, id string) (monitor.Cert, error) {
	c := monitor.Cert{ID: id}
	// Failed attempts are recorded for a certificate never issued too.
	rs, err := st.LoadRenewal(id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return c, fmt.Errorf("certificate %s: renewal state: %w", id, err)
	}
	c.Failures, c.LastError = rs.Failures, rs.LastError
	c.LastAttempt, c.LastSuccess = rs.LastAttempt, rs.LastSuccess
	sc, err := st.LoadCert(id)
	if errors.Is(err, store.ErrNotFound) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("certificate %s: %w", id, err)
	}
	c.Issued, c.Serial, c.NotBefore, c.NotAfter = true, sc.Meta.Serial, sc.Meta.NotBefore, sc.Meta.NotAfter
	c.Names = sc.Meta.Names
	if !rs.ARIWindowStart.IsZero() {
		c.ARI = &planner.Window{Start: rs.ARIWindowStart, End: rs.ARIWindowEnd}
	}
	return c, nil
}

// probePlan probes every planned name on its certificate's IPs, on every
// port, with and without SNI.
func (o *checkOptions) probePlan(ctx context.Context, g *globals, plan *model.Plan) (*model.ProbeReport, error) {
	ports, err := probe.ParsePorts(o.probe.Ports)
	if err != nil {
		return nil, usageError("--ports: %v", err)
	}
	scope := planScope(plan, ports)
	if o.inventory != "" {
		in := inventoryInput{InventoryFile: o.inventory}
		inv, err := in.load(ctx, g, nil)
		if err != nil {
			return nil, err
		}
		scope.MX = probe.MXHosts(inv)
	}
	return runProbe(ctx, g, scope, o.probe.CAFile)
}

// planScope is what clients of plan's names dial: each certificate's names
// on each of its IPs, on every port.
func planScope(plan *model.Plan, ports []probe.Port) probe.Scope {
	var s probe.Scope
	ips := map[string]bool{}
	for _, c := range plan.Certificates {
		for _, ip := range c.IPs {
			ips[ip] = true
			for _, p := range ports {
				for _, cn := range c.Names {
					for _, n := range plan.DialNames(cn) { // a wildcard: the names it replaced
						s.Names = append(s.Names, probe.NameAt{Name: n, Service: probe.Service{IP: ip, Port: p.Port, Protocol: p.Protocol}})
					}
				}
			}
		}
	}
	for ip := range ips {
		for _, p := range ports {
			s.Services = append(s.Services, probe.Service{IP: ip, Port: p.Port, Protocol: p.Protocol})
		}
	}
	return s
}

func writeCheckText(w io.Writer, r monitor.Result) {
	fmt.Fprintf(w, "CERTPLAN %s - %s | certificates=%d broken_names=%d", r.Status, r.Summary, len(r.Certs), r.BrokenNames)
	for _, c := range r.Coverage {
		if c.DANE != "" || c.MTASTS != "" {
			fmt.Fprintf(w, " refused_mx=%d", r.RefusedMX)
			break
		}
	}
	// An expired certificate has negative days left: perfdata shows them,
	// and they are the minimum.
	minDays, found := 0.0, false
	for _, c := range r.Certs {
		if c.Issued && (!found || c.DaysLeft < minDays) {
			minDays, found = c.DaysLeft, true
		}
	}
	if found {
		fmt.Fprintf(w, " min_days_left=%.1f", minDays)
	}
	fmt.Fprintln(w)
	for _, f := range r.Findings {
		fmt.Fprintf(w, "%s: %s\n", f.Status, f.Message)
	}
	for _, c := range r.Certs {
		if !c.Issued {
			if c.Failures > 0 {
				fmt.Fprintf(w, "certificate %s: not issued, %s so far\n", c.ID, plural(c.Failures, "failed attempt"))
				continue
			}
			fmt.Fprintf(w, "certificate %s: not issued\n", c.ID)
			continue
		}
		fmt.Fprintf(w, "certificate %s: %d names, serial %s, expires %s (%.1f days), renewal due %s\n",
			c.ID, c.Names, c.Serial, c.NotAfter.UTC().Format("2006-01-02 15:04 UTC"), c.DaysLeft, c.NextRenewal.UTC().Format("2006-01-02 15:04 UTC"))
	}
}

// appliedPlanError is an error reading the applied plan of dir (which
// store.LoadPlan names as such), with stateHint's next step.
func appliedPlanError(err error, dir string) error {
	return stateHint(err, dir)
}

// stateHint adds the next step to an error reading the state directory:
// who may read it, or what to do about a file certplan did not write.
func stateHint(err error, dir string) error {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return withHint(err, "run as the user that owns "+dir+" (usually root; from NRPE, through sudo)")
	case errors.Is(err, store.ErrCorrupt):
		return withHint(err, "a file in "+dir+" is not as certplan wrote it: restore it from a backup, or move "+
			filepath.Join(dir, "plan.json")+" aside to plan afresh (certificate IDs may then change)")
	}
	return err
}
