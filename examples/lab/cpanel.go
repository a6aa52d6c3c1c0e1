package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/certplan/certplan/internal/cli"
	"github.com/certplan/certplan/internal/lab"
	"github.com/certplan/certplan/internal/realmail"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/monitor"
)

// The cPanel mode (--cpanel). cPanel's Exim and Dovecot have one service
// certificate for all of the server's IPs, so the lab plans with
// --default-cert shared: one default certificate for both lab IPs, the
// overflow on SNI certificates. It issues as the default mode does
// (verified on the lab's Go listeners), prints the Exim configuration
// that "certplan emit exim" gives for the serving paths, and, when Exim
// can run here (realmail.EximAvailable: Debian's exim4 unpacked by
// internal/realmail/install-exim.sh, root, the Debian-exim user), starts
// a private Exim on both IPs with exactly that configuration and checks
// every planned name on its SMTP, submission and SMTPS ports, with and
// without SNI. Without Exim it says so and checks the same plan on the Go
// listeners.

// cpanelLive makes the serving paths' directory for the cPanel mode: Exim
// reads the keys as Debian-exim, through --key-group, so every directory
// above the files must let that user through. A directory of its own
// under the system's temporary directory does, wherever --dir is.
func cpanelLive() (dir string, cleanup func(), err error) {
	parent, err := os.MkdirTemp("", "certplan-lab-live-")
	if err != nil {
		return "", nil, err
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		os.RemoveAll(parent)
		return "", nil, err
	}
	return parent + "/live", func() { os.RemoveAll(parent) }, nil
}

func (p *pipeline) runCPanel(noExim bool) error {
	l := p.lab
	eximErr := realmail.EximAvailable()
	if noExim && eximErr == nil {
		eximErr = fmt.Errorf("exim: not used by this run, which asked for the Go listeners")
	}
	fmt.Fprintf(p.out, "certplan lab, cPanel mode: %s on %s has one Exim and one Dovecot service certificate\n"+
		"for both IPs, so certplan plans one default certificate for every IP (--default-cert shared)\n",
		lab.Hostname, strings.Join(lab.ServerIPs, " and "))
	live, cleanup, err := cpanelLive()
	if err != nil {
		return err
	}
	defer cleanup()
	inv := p.path("inventory.json")
	if err := p.save(append([]string{"inventory", "--zones", l.ZonesDir, "--format", "json", "-o", inv}, p.common()...)...); err != nil {
		return err
	}
	p.certplan("plan --default-cert shared: one default certificate for both IPs, SNI certificates for the rest",
		"plan", "--inventory", inv, "--no-probe", "--hostname", lab.Hostname, "--default-cert", model.DefaultCertShared)
	// --verify-wait: the listeners reload 100-odd SNI files; on a loaded
	// machine (go test -race beside other tests) that took over 10s.
	extra := []string{"--default-cert", model.DefaultCertShared, "--live-dir", live, "--verify-wait", "60s"}
	if eximErr == nil {
		extra = append(extra, "--key-group", "Debian-exim") // Exim reads the keys as Debian-exim
	}
	if code := p.certplan("issue: order through ACME, update the serving paths, verify on the lab's listeners", p.applyArgs("issue", extra...)...); code != cli.ExitOK {
		return fmt.Errorf("issue exited %d, want 0", code)
	}
	emitArgs := []string{"emit", "exim", "--state-dir", p.path("state"), "--live-dir", live}
	p.certplan("emit exim: the Exim configuration that serves the plan through the serving paths", emitArgs...)
	conf, err := p.capture(emitArgs...)
	if err != nil {
		return err
	}
	return p.serveCPanel(conf, eximErr)
}

// serveCPanel checks the applied plan on a private Exim configured with
// conf, or, when eximErr says Exim cannot run here, on the Go listeners.
func (p *pipeline) serveCPanel(conf string, eximErr error) error {
	l := p.lab
	check := []string{"check", "--state-dir", p.path("state"), "--ca-file", l.TrustFile, "--ports"}
	title := "check: every name on Exim (configured by emit exim), with and without SNI, on both IPs"
	if eximErr != nil {
		fmt.Fprintf(p.out, "\n-- Exim is not available here (%v):\n-- the lab's Go listeners serve the same plan instead\n", eximErr)
		check = append(check, l.Mail.PortsFlag())
		title = "check: every name on the lab's Go listeners, with and without SNI, on both IPs"
	} else {
		e, err := realmail.NewExim(p.ctx, realmail.EximOptions{IP: lab.IP1, ExtraIPs: []string{lab.IP2}, Hostname: lab.Hostname, TLS: conf})
		if err != nil {
			return err
		}
		defer e.Stop()
		fmt.Fprintf(p.out, "\n-- a private Exim (%s) runs with that configuration on %s, ports %d (SMTP), %d (submission), %d (SMTPS)\n",
			e.ConfigFile, strings.Join(e.IPs(), " and "), e.SMTPPort, e.SubmissionPort, e.SMTPSPort)
		// Exim accepts 20 connections at once by default (smtp_accept_max)
		// and refuses the rest: probe fewer at a time.
		check = append(check, fmt.Sprintf("%s:%d,%s:%d,%s:%d", model.ProtoSMTP, e.SMTPPort,
			model.ProtoSubmission, e.SubmissionPort, model.ProtoSMTPS, e.SMTPSPort), "--concurrency", "8")
		defer func() {
			if p.failed {
				fmt.Fprintf(p.errw, "exim log:\n%s", e.Log())
			}
		}()
	}
	// WARNING (exit 1) is the lab's broken-dns.test, whose DNS fails on
	// purpose; a name not served would be CRITICAL.
	if code := p.certplan(title, check...); code != cli.ExitOK && code != int(monitor.Warning) {
		p.failed = true
		return fmt.Errorf("check exited %d, want 0 or 1 (WARNING)", code)
	}
	return nil
}

// capture runs a certplan command quietly and returns its output.
func (p *pipeline) capture(args ...string) (string, error) {
	var out, errw bytes.Buffer
	if code := cli.Run(p.ctx, args, strings.NewReader(""), &out, &errw, os.Getenv); code != cli.ExitOK {
		return "", fmt.Errorf("certplan %s: exit %d: %s", args[0], code, errw.String())
	}
	return out.String(), nil
}
