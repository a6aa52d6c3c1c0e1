package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/certplan/certplan/emit"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
	"github.com/spf13/cobra"
)

type emitOptions struct {
	stateDir, planFile, liveDir string
	ports                       string
	sniMap, part                string
	dovecotVersion              string
	check                       bool
	serverConfig, exim          string
}

func newEmitCmd(g *globals) *cobra.Command {
	o := &emitOptions{}
	cmd := &cobra.Command{
		Use:   "emit postfix|dovecot|exim",
		Short: "Print the server configuration that serves the applied plan through stable paths",
		Long: `emit prints the configuration that makes a mail server serve the applied plan
(--state-dir's plan.json, or --plan FILE) through the serving paths that
certplan issue and renew keep up to date (--live-dir, default <state-dir>-live):

  <live-dir>/default-<ip>/   the default (no SNI) certificate of a server IP
  <live-dir>/sni/<name>/     the certificate of a name (*.d is _.d)

each with fullchain.pem, privkey.pem and combined.pem (key, then chain). The
paths name no certificate ID: a renewal, or a new plan that moves names to
other certificates, switches the files, and the configuration stays. Run emit
again when the plan's IPs or names change.

  postfix  main.cf's smtpd_tls_chain_files (or, when the IPs have different
           default certificates, a master.cf smtpd service per IP and port
           with -o smtpd_tls_chain_files) and tls_server_sni_maps with the
           SNI table's lines; --part prints one file's part only
  dovecot  a local <ip> block per IP with its default, and the local_name
           blocks of its SNI names nested inside; 2.4's setting names when
           the installed Dovecot (dovecot --version) or --dovecot-version is 2.4
  exim     tls_certificate as an expansion on $tls_in_sni and
           $received_ip_address; Exim reads the files as its own user, so
           issue and renew need --key-group Debian-exim (cPanel: mail)

--check compares the running configuration (postconf, doveconf -n -P,
exim -bP; --server-config for a non-default one) with the plan's, and
checks that the serving paths exist.

Exit codes:
  0  printed; with --check, the configuration serves the plan
  1  could not run (no applied plan, unreadable files, server tools missing)
  2  bad flags or arguments
  3  --check: the configuration differs (each difference is listed)`,
		Example: `  # Postfix: the main.cf lines, then the SNI table
  certplan emit postfix --part main
  certplan emit postfix --part sni > /etc/postfix/certplan-sni

  # Dovecot, for a plan file not applied yet
  certplan emit dovecot --plan plan.json > /etc/dovecot/conf.d/99-certplan.conf

  # Exim: is the running configuration the plan's?
  certplan emit exim --check`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"postfix", "dovecot", "exim"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), g, args[0])
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.stateDir, "state-dir", store.DefaultDir, "certplan's state `dir` (its plan.json is the applied plan)")
	fs.StringVar(&o.planFile, "plan", "", "plan `file` (from \"certplan plan --format json\"): emit prints its configuration instead of the applied plan's (issue and renew apply it instead of planning)")
	fs.StringVar(&o.liveDir, "live-dir", "", "the serving paths' `dir` (default <state-dir>-live)")
	fs.StringVar(&o.ports, "postfix-ports", "25,587,465", "postfix: SMTP, submission and SMTPS `ports` of the per-IP master.cf services")
	fs.StringVar(&o.sniMap, "sni-map", emit.DefaultSNIMapFile, "postfix: the SNI table's source `file`")
	fs.StringVar(&o.part, "part", "", "postfix: print only `part` main, master or sni")
	fs.StringVar(&o.dovecotVersion, "dovecot-version", "", "dovecot: write settings for this `version` (default: dovecot --version)")
	fs.BoolVar(&o.check, "check", false, "compare the running server's configuration with the plan's (exit 3 when it differs)")
	fs.StringVar(&o.serverConfig, "server-config", "", "--check: postfix configuration `dir`, dovecot.conf or exim configuration file (default: the server's own)")
	fs.StringVar(&o.exim, "exim", "", "--check: the exim `binary` (default exim4 or exim on PATH)")
	return cmd
}

func (o *emitOptions) run(ctx context.Context, g *globals, server string) error {
	if err := g.checkFormat("text"); err != nil {
		return err
	}
	opts, err := o.options(ctx, g, server)
	if err != nil {
		return err
	}
	plan, err := o.loadPlan()
	if err != nil {
		return err
	}
	if o.check {
		return o.runCheck(ctx, g, server, plan, opts)
	}
	var text string
	switch server {
	case "postfix":
		text = postfixPart(emit.RenderPostfix(plan, opts), o.part)
	case "dovecot":
		text = emit.RenderDovecot(plan, opts)
	case "exim":
		text = emit.RenderExim(plan, opts)
	}
	_, err = fmt.Fprint(g.Stdout, text)
	return err
}

// options checks the flags for server and fills emit.Options.
func (o *emitOptions) options(ctx context.Context, g *globals, server string) (emit.Options, error) {
	opts := emit.Options{LiveDir: o.liveDir, SNIMapFile: o.sniMap, DovecotVersion: o.dovecotVersion}
	switch server {
	case "postfix", "dovecot", "exim":
	default:
		return opts, usageError("emit %q: the server is postfix, dovecot or exim", server)
	}
	if o.part != "" && (server != "postfix" || (o.part != "main" && o.part != "master" && o.part != "sni")) {
		return opts, usageError("--part %q: postfix only, and main, master or sni", o.part)
	}
	if o.part != "" && o.check {
		return opts, usageError("--part and --check: --check compares every part")
	}
	if opts.LiveDir == "" {
		opts.LiveDir = store.LiveDirFor(o.stateDir)
	}
	abs, err := filepath.Abs(opts.LiveDir)
	if err != nil {
		return opts, err
	}
	opts.LiveDir = abs
	if opts.Ports, err = parseEmitPorts(o.ports); err != nil {
		return opts, err
	}
	if server == "dovecot" && opts.DovecotVersion == "" {
		v, err := emit.DovecotVersion(ctx)
		if err != nil {
			fmt.Fprintf(g.Stderr, "certplan: note: %v: writing Dovecot 2.3 settings (--dovecot-version 2.4 for 2.4's)\n", err)
		}
		opts.DovecotVersion = v
	}
	return opts, nil
}

func parseEmitPorts(s string) (emit.Ports, error) {
	f := strings.Split(s, ",")
	var n [3]int
	for i := range f {
		p, err := strconv.Atoi(strings.TrimSpace(f[i]))
		if err != nil || p < 1 || p > 65535 || len(f) != 3 {
			return emit.Ports{}, usageError("--postfix-ports %q: three ports, SMTP,submission,SMTPS (such as 25,587,465)", s)
		}
		n[i] = p
	}
	return emit.Ports{SMTP: n[0], Submission: n[1], SMTPS: n[2]}, nil
}

func postfixPart(c *emit.Postfix, part string) string {
	switch part {
	case "main":
		return c.MainText()
	case "master":
		return c.MasterText()
	case "sni":
		return c.SNIText()
	}
	return c.Text()
}

// loadPlan reads --plan, or the applied plan from the state directory.
func (o *emitOptions) loadPlan() (*model.Plan, error) {
	plan := &model.Plan{}
	if o.planFile != "" {
		return plan, readDocument("--plan", o.planFile, model.KindPlan, plan)
	}
	hint := `run "certplan issue" first, or give --plan FILE (from "certplan plan --format json")`
	if _, err := os.Stat(o.stateDir); err != nil {
		return nil, withHint(fmt.Errorf("state dir %s: %w", o.stateDir, errors.Unwrap(err)), hint)
	}
	st, err := store.OpenReadOnly(o.stateDir)
	if err != nil {
		return nil, stateHint(err, o.stateDir)
	}
	defer st.Close()
	plan, err = st.LoadPlan()
	if errors.Is(err, store.ErrNotFound) {
		return nil, withHint(fmt.Errorf("no applied plan in %s", o.stateDir), hint)
	}
	if err != nil {
		return nil, appliedPlanError(err, o.stateDir)
	}
	return plan, nil
}

// runCheck compares the running configuration with the plan's and checks
// that the serving paths exist.
func (o *emitOptions) runCheck(ctx context.Context, g *globals, server string, plan *model.Plan, opts emit.Options) error {
	var diffs []emit.Diff
	var err error
	switch server {
	case "postfix":
		diffs, err = emit.CheckPostfix(ctx, emit.RenderPostfix(plan, opts), o.serverConfig)
	case "dovecot":
		diffs, err = emit.CheckDovecot(ctx, emit.RenderDovecot(plan, opts), o.serverConfig)
	case "exim":
		exe := o.exim
		if exe == "" {
			exe = findExim()
		}
		diffs, err = emit.CheckExim(ctx, exe, o.serverConfig, opts.LiveDir)
	}
	if err != nil {
		return withHint(fmt.Errorf("emit %s --check: %w", server, err), "is "+server+" installed here? --server-config names a non-default configuration")
	}
	diffs = append(diffs, emit.CheckLive(plan, opts.LiveDir)...)
	for _, d := range diffs {
		fmt.Fprintf(g.Stdout, "differs: %s\n", d)
	}
	if len(diffs) > 0 {
		fmt.Fprintf(g.Stderr, "certplan: hint: \"certplan emit %s\" prints the plan's configuration; issue or renew makes the serving paths\n", server)
		return withCode(ExitPartial, nil)
	}
	fmt.Fprintf(g.Stdout, "ok: %s serves the plan through %s\n", server, opts.LiveDir)
	return nil
}

func findExim() string {
	for _, name := range []string{"exim4", "exim"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return "exim4"
}
