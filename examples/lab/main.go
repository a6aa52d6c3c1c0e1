// Command lab runs certplan's whole job on a built-in example, on loopback
// only: a shared mail host (server.main-domain.test on 127.0.0.2 and
// 127.0.0.3) with dozens of client domains, served by an in-process DNS
// server, and certplan run against it stage by stage.
//
//	go run ./examples/lab            # run the pipeline and print each stage
//	go run ./examples/lab --serve    # start the lab and keep it running, to try commands by hand
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/certplan/certplan/internal/cli"
	"github.com/certplan/certplan/internal/lab"
)

func main() {
	serve := flag.Bool("serve", false, "keep the lab running and print how to use it, until interrupted")
	dir := flag.String("dir", "", "write the lab's files (zones, reports, state) here instead of a temporary directory")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./examples/lab [--serve] [--dir DIR]\n\n"+
			"Runs certplan on a built-in example of a shared mail host, on loopback only.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, labOptions{dir: *dir, serve: *serve}, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "lab: error: %v\n", err)
		os.Exit(1)
	}
}

type labOptions struct {
	dir         string
	serve       bool
	randomPorts bool // for tests that run beside a lab
}

func run(ctx context.Context, o labOptions, stdout, stderr io.Writer) error {
	if o.dir != "" {
		if err := os.MkdirAll(o.dir, 0o755); err != nil {
			return err
		}
	}
	l, err := lab.Start(lab.Options{Dir: o.dir, RandomPorts: o.randomPorts})
	if err != nil {
		return err
	}
	defer l.Close()
	p := &pipeline{ctx: ctx, lab: l, out: stdout, errw: stderr}
	if o.serve {
		return p.serve()
	}
	return p.run()
}

type pipeline struct {
	ctx  context.Context
	lab  *lab.Lab
	out  io.Writer
	errw io.Writer
}

// common are the flags every stage gets: the lab's resolver and server IPs.
func (p *pipeline) common() []string {
	args := []string{"--resolver", p.lab.DNS.Addr()}
	for _, ip := range lab.ServerIPs {
		args = append(args, "--server-ip", ip)
	}
	return args
}

func (p *pipeline) path(name string) string { return filepath.Join(p.lab.Dir, name) }

// certplan runs one certplan command in-process, showing the command line
// as an admin would type it, and returns its exit code.
func (p *pipeline) certplan(title string, args ...string) int {
	fmt.Fprintf(p.out, "\n== %s\n$ certplan %s\n\n", title, shellQuote(args))
	return cli.Run(p.ctx, args, strings.NewReader(""), p.out, p.errw, os.Getenv)
}

func (p *pipeline) run() error {
	fmt.Fprintf(p.out, "certplan lab: a shared mail host %s on %s, %d hosted domains (zone files in %s)\n",
		lab.Hostname, strings.Join(lab.ServerIPs, " and "), len(lab.HostedDomains()), p.lab.ZonesDir)

	inv := p.path("inventory.json")
	p.certplan("1. inventory: which names do mail clients use, and do they point here?",
		append([]string{"inventory", "--zones", p.lab.ZonesDir}, p.common()...)...)
	// The same, saved as JSON for the next stages.
	if code := cli.Run(p.ctx, append([]string{"inventory", "--zones", p.lab.ZonesDir, "--format", "json", "-o", inv}, p.common()...),
		strings.NewReader(""), io.Discard, io.Discard, os.Getenv); code != cli.ExitOK && code != cli.ExitPartial {
		return fmt.Errorf("inventory failed (exit %d)", code)
	}
	fmt.Fprintf(p.out, "\n(saved as %s)\n", inv)

	probeFile := p.path("probe.json")
	probeArgs := []string{"probe", "--inventory", inv, "--ports", p.lab.Mail.PortsFlag(), "--ca-file", p.lab.CAFile}
	p.certplan("2. probe: what does each client get today, with and without SNI?", probeArgs...)
	if code := cli.Run(p.ctx, append(probeArgs, "--format", "json", "-o", probeFile), strings.NewReader(""), io.Discard, io.Discard, os.Getenv); code != cli.ExitOK && code != cli.ExitPartial {
		return fmt.Errorf("probe failed (exit %d)", code)
	}
	fmt.Fprintf(p.out, "\n(saved as %s)\n", probeFile)
	return nil
}

func (p *pipeline) serve() error {
	fmt.Fprintf(p.out, "certplan lab running; files in %s\n\nTry:\n", p.lab.Dir)
	fmt.Fprintf(p.out, "  go run ./cmd/certplan inventory --zones %s %s\n", p.lab.ZonesDir, shellQuote(p.common()))
	fmt.Fprintf(p.out, "  go run ./cmd/certplan probe --zones %s %s --ports %s --ca-file %s\n",
		p.lab.ZonesDir, shellQuote(p.common()), p.lab.Mail.PortsFlag(), p.lab.CAFile)
	fmt.Fprintf(p.out, "\nInterrupt (Ctrl-C) to stop.\n")
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
