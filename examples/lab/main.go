// Command lab runs certplan's whole job on a built-in example, on loopback
// only: a shared mail host (server.main-domain.test on 127.0.0.2 and
// 127.0.0.3) with dozens of client domains, served by an in-process DNS
// server, and certplan run against it stage by stage.
//
//	go run ./examples/lab            # run the pipeline and print each stage
//	go run ./examples/lab --serve    # start the lab and keep it running, to try commands by hand
//	go run ./examples/lab --cpanel   # cPanel: one default certificate for all IPs, served by Exim (cpanel.go)
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/certplan/certplan/internal/cli"
	"github.com/certplan/certplan/internal/lab"
)

func main() {
	serve := flag.Bool("serve", false, "keep the lab running and print how to use it, until interrupted")
	cpanel := flag.Bool("cpanel", false, "cPanel mode: plan one default certificate for all IPs (--default-cert shared) and serve it through the Exim configuration that \"certplan emit exim\" prints (on the lab's Go listeners when Exim is not available)")
	dir := flag.String("dir", "", "write the lab's files (zones, reports, state) here instead of a temporary directory")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./examples/lab [--serve | --cpanel] [--dir DIR]\n\n"+
			"Runs certplan on a built-in example of a shared mail host, on loopback only.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, labOptions{dir: *dir, serve: *serve, cpanel: *cpanel}, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "lab: error: %v\n", err)
		os.Exit(1)
	}
}

type labOptions struct {
	dir         string
	serve       bool
	randomPorts bool // for tests that run beside a lab
	cpanel      bool // cPanel mode (cpanel.go)
	noExim      bool // cPanel mode on the Go listeners even when Exim is available (tests)
}

func run(ctx context.Context, o labOptions, stdout, stderr io.Writer) error {
	if o.dir != "" {
		if err := os.MkdirAll(o.dir, 0o755); err != nil {
			return err
		}
	}
	l, err := lab.Start(lab.Options{Dir: o.dir, RandomPorts: o.randomPorts, ACME: true, DANE: !o.cpanel})
	if err != nil && !o.randomPorts && errors.Is(err, syscall.EADDRINUSE) {
		// Another lab (or anything else) holds the usual ports: take free ones.
		fmt.Fprintf(stderr, "lab: %v; using free ports instead\n", err)
		l, err = lab.Start(lab.Options{Dir: o.dir, RandomPorts: true, ACME: true, DANE: !o.cpanel})
	}
	if err != nil {
		return err
	}
	defer l.Close()
	p := &pipeline{ctx: ctx, lab: l, out: stdout, errw: stderr, keep: o.dir != ""}
	if o.serve {
		return p.serve()
	}
	if o.cpanel {
		return p.runCPanel(o.noExim)
	}
	return p.run()
}

type pipeline struct {
	ctx  context.Context
	lab  *lab.Lab
	out  io.Writer
	errw io.Writer
	step int
	keep bool // the lab dir outlives the run (--dir): point at the full outputs
	// failed: a stage failed (the cPanel mode then prints Exim's log).
	failed bool
	// env overrides environment variables for certplan (CERTPLAN_NOW in
	// the DANE part, dane.go); last is the last stage's output.
	env  map[string]string
	last string
}

// getenv is certplan's environment: p.env over the process's.
func (p *pipeline) getenv(k string) string {
	if v, ok := p.env[k]; ok {
		return v
	}
	return os.Getenv(k)
}

// common are the flags every stage that runs the inventory gets: the lab's
// resolver and server IPs, and how to fetch its MTA-STS policy (the lab
// CA, the policy server's port).
func (p *pipeline) common() []string {
	args := []string{"--resolver", p.lab.Resolver()}
	for _, ip := range lab.ServerIPs {
		args = append(args, "--server-ip", ip)
	}
	return append(args, p.lab.MTASTSFlags()...)
}

func (p *pipeline) path(name string) string { return filepath.Join(p.lab.Dir, name) }

// certplan runs one certplan command in-process, showing the command line
// as an admin would type it and an excerpt of its output (the full output
// goes to a file in the lab dir), and returns its exit code.
func (p *pipeline) certplan(title string, args ...string) int {
	p.step++
	fmt.Fprintf(p.out, "\n== %d. %s\n$ certplan %s\n\n", p.step, title, shellQuote(args))
	var out, errw bytes.Buffer
	code := cli.Run(p.ctx, args, strings.NewReader(""), &out, &errw, p.getenv)
	p.last = out.String()
	full := ""
	if p.keep {
		cmd := args[0]
		if cmd == "--config" && len(args) > 2 {
			cmd = args[2]
		}
		full = p.path(fmt.Sprintf("out/%02d-%s.txt", p.step, cmd))
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, append(out.Bytes(), errw.Bytes()...), 0o644)
	}
	excerpt(p.out, out.String(), full)
	p.errw.Write(errw.Bytes())
	fmt.Fprintf(p.out, "[exit %d]\n", code)
	return code
}

// save runs a certplan command quietly, for a document the next stages read.
func (p *pipeline) save(args ...string) error {
	var errw bytes.Buffer
	if code := cli.Run(p.ctx, args, strings.NewReader(""), io.Discard, &errw, p.getenv); code != cli.ExitOK && code != cli.ExitPartial {
		return fmt.Errorf("certplan %s: exit %d: %s", args[0], code, errw.String())
	}
	return nil
}

// excerpt prints long output as its head, the lines about the seed case
// (domain2.test) and its tail, saying what it left out.
func excerpt(w io.Writer, out, full string) {
	if out == "" {
		fmt.Fprintln(w, "(no output)")
		return
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	const head, tail = 16, 12
	if len(lines) <= head+tail+10 {
		fmt.Fprintln(w, strings.Join(lines, "\n"))
		return
	}
	skipped := 0
	for i, l := range lines {
		keep := i < head || i >= len(lines)-tail || strings.Contains(l, "domain2.test") || strings.Contains(l, lab.DANEDomain) || strings.HasPrefix(l, "MTA-STS") ||
			strings.HasPrefix(l, "NAME") || strings.HasPrefix(l, "ENDPOINT") || strings.HasPrefix(l, "(")
		if !keep {
			skipped++
			continue
		}
		if skipped > 0 {
			fmt.Fprintf(w, "   [... %d lines ...]\n", skipped)
			skipped = 0
		}
		fmt.Fprintln(w, l)
	}
	if full == "" {
		fmt.Fprintf(w, "(%d lines in all; run the lab with --dir DIR to keep every stage's full output)\n", len(lines))
		return
	}
	fmt.Fprintf(w, "(%d lines in all: %s)\n", len(lines), full)
}

func (p *pipeline) run() error {
	l := p.lab
	fmt.Fprintf(p.out, "certplan lab: a shared mail host %s on %s, %d hosted domains (zone files in %s),\n"+
		"its mail listeners on ports %s, and an ACME CA (Pebble) at %s\n",
		lab.Hostname, strings.Join(lab.ServerIPs, " and "), len(lab.HostedDomains()), l.ZonesDir, l.Mail.PortsFlag(), l.ACME.DirectoryURL)

	inv, probeFile := p.path("inventory.json"), p.path("probe.json")
	domains := []string{"--zones", l.ZonesDir}
	p.certplan("inventory: which names do mail clients use, and do they point here?", append(append([]string{"inventory"}, domains...), p.common()...)...)
	if err := p.save(append(append([]string{"inventory", "--format", "json", "-o", inv}, domains...), p.common()...)...); err != nil {
		return err
	}

	probeArgs := []string{"probe", "--inventory", inv, "--ports", l.Mail.PortsFlag(), "--ca-file", l.CAFile}
	p.certplan("probe: what does each client get today, with and without SNI?", probeArgs...)
	if err := p.save(append(probeArgs, "--format", "json", "-o", probeFile)...); err != nil {
		return err
	}

	planArgs := []string{"plan", "--inventory", inv, "--probe", probeFile, "--hostname", lab.Hostname}
	p.certplan("plan: the certificates that make every name verify, with and without SNI", planArgs...)
	report := p.path("report.html")
	if err := p.save(append(planArgs, "--format", "html", "-o", report)...); err != nil {
		return err
	}
	if p.keep {
		fmt.Fprintf(p.out, "(the same as an HTML report: %s)\n", report)
	} else {
		fmt.Fprintln(p.out, "(the same as an HTML report: run the lab with --dir DIR to keep it, as DIR/report.html)")
	}

	p.certplan("issue: order through ACME, deploy with the Exim hook, verify by probing again", p.applyArgs("issue")...)

	fmt.Fprintf(p.out, "\n-- a customer signs up: %s is added to the zones\n", lab.NewClient)
	if err := l.AddNewClient(); err != nil {
		return err
	}
	p.certplan("renew (from cron): the new domain's names join a certificate with room, ordered with ARI's replaces", p.applyArgs("renew", "--no-jitter")...)
	root, err := l.WriteServerRoot()
	if err != nil {
		return err
	}
	p.certplan("init: detect the server from its own files (a panel's, under "+root+"), write its config",
		"init", "--root", root, "--server-ip", lab.IP1, "--server-ip", lab.IP2, "--ca", l.ACME.DirectoryURL,
		"--email", "postmaster@main-domain.test", "--agree-tos", "--state-dir", p.path("state"))
	conf := filepath.Join(root, "etc", "certplan", "certplan.yaml")
	if code := p.certplan("renew again, as cron does, with init's config and no flags: the rest is remembered, nothing is due, so nothing is printed",
		"--config", conf, "renew"); code != cli.ExitOK {
		return fmt.Errorf("the second renew exited %d, want 0", code)
	}
	p.certplan("check (monitoring): days to expiry, renewals, every name with and without SNI, domains whose DNS fails",
		"check", "--state-dir", p.path("state"), "--ports", l.Mail.PortsFlag(), "--ca-file", l.TrustFile)
	return p.runDANE()
}

// applyArgs are the flags of issue and renew in the lab: the domain
// sources, the CA (Pebble), HTTP-01 on each server IP, the state directory,
// the deploy hook and what verification probes and trusts.
func (p *pipeline) applyArgs(cmd string, extra ...string) []string {
	l := p.lab
	// Two hooks, run in order: Exim's files, then the lab's listeners
	// reload (as "systemctl reload exim4" would).
	hook := fmt.Sprintf("EXIM_CERT_DIR=%s EXIM_GROUP=root bash %s",
		shellQuote([]string{l.Mail.Dir}), shellQuote([]string{hookPath("exim.sh")}))
	reload := "touch " + shellQuote([]string{filepath.Join(l.Mail.Dir, "reload")})
	args := append([]string{cmd, "--zones", l.ZonesDir}, p.common()...)
	args = append(args, "--hostname", lab.Hostname,
		"--ca", l.ACME.DirectoryURL, "--ca-roots", l.ACMERootsFile,
		"--issuer-roots", l.ACMEIssuerFile, "--profile", "classic",
		"--agree-tos", "--email", "postmaster@main-domain.test",
		"--http-listen", l.HTTPListen(), "--state-dir", p.path("state"),
		"--deploy-hook", hook, "--deploy-hook", reload, "--ports", l.Mail.PortsFlag(), "--ca-file", l.TrustFile)
	return append(args, extra...)
}

// hookPath finds an example deploy hook in the source tree this program was
// built from (go run ./examples/lab), or relative to the working directory.
func hookPath(name string) string {
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(file), "..", "hooks", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return filepath.Join("examples", "hooks", name)
}

func (p *pipeline) serve() error {
	l := p.lab
	fmt.Fprintf(p.out, "certplan lab running: DNS %s, mail on %s ports %s, ACME CA %s; files in %s\n\nTry:\n",
		l.Resolver(), strings.Join(lab.ServerIPs, " and "), l.Mail.PortsFlag(), l.ACME.DirectoryURL, l.Dir)
	cmds := [][]string{
		append([]string{"inventory", "--zones", l.ZonesDir}, p.common()...),
		append(append([]string{"probe", "--zones", l.ZonesDir}, p.common()...), "--ports", l.Mail.PortsFlag(), "--ca-file", l.CAFile),
		append(append([]string{"plan", "--zones", l.ZonesDir}, p.common()...), "--hostname", lab.Hostname, "--ports", l.Mail.PortsFlag(), "--ca-file", l.CAFile),
		p.applyArgs("issue", "--dry-run"),
		p.applyArgs("issue"),
		p.applyArgs("renew", "--no-jitter"),
		{"check", "--state-dir", p.path("state"), "--ports", l.Mail.PortsFlag(), "--ca-file", l.TrustFile},
	}
	for _, c := range cmds {
		fmt.Fprintf(p.out, "  go run ./cmd/certplan %s\n\n", shellQuote(c))
	}
	if l.DANE != nil {
		fmt.Fprintf(p.out, "The resolver validates: %s is signed (NSD on %s), not among the zones and without TLSA records here:\n"+
			"  go run ./cmd/certplan inventory %s --resolver %s --format json\n\n", lab.DANEDomain, l.DANE.Auth, lab.DANEDomain, l.DANE.Resolver)
	}
	fmt.Fprintf(p.out, "Interrupt (Ctrl-C) to stop.\n")
	<-p.ctx.Done()
	return nil
}

func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$*?[]{}()<>|&;\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
