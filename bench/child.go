package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/certplan/certplan/bench/internal/fastdns"
	"github.com/certplan/certplan/bench/internal/mailbench"
	"github.com/certplan/certplan/bench/internal/synth"
	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
)

// The servers run in a child process (this program again, with
// childEnv set): the DNS responder and the mail listeners then do not share
// the measured process's heap, garbage collector, scheduler or peak memory,
// and a CPU profile of the parent shows only the client side.
const childEnv = "CERTPLAN_BENCH_CHILD"

// childConfig is what the child serves; it travels as JSON in childEnv.
type childConfig struct {
	Domains     int      `json:"domains"`
	DeadDomains int      `json:"dead_domains"`
	Seed        uint64   `json:"seed"`
	MailIPs     []string `json:"mail_ips"`
	TarpitIP    string   `json:"tarpit_ip"`
	SNINames    int      `json:"sni_names"`
	DNSSockets  int      `json:"dns_sockets"`
}

// mailProtos are the services on every mail IP: SMTP with STARTTLS,
// submission with STARTTLS, and submissions over implicit TLS.
var mailProtos = []string{model.ProtoSMTP, model.ProtoSubmission, model.ProtoSMTPS}

// childReady is the child's first line on stdout.
type childReady struct {
	DNS      string             `json:"dns"`
	Services []mailbench.Target `json:"services"`
	Tarpits  []mailbench.Target `json:"tarpits"`
	CAPEM    string             `json:"ca_pem"`
	SNINames []string           `json:"sni_names"`
	Error    string             `json:"error,omitempty"`
}

// childStats answers "stats".
type childStats struct {
	DNS    fastdns.Stats `json:"dns"`
	UserNS int64         `json:"user_ns"`
	SysNS  int64         `json:"sys_ns"`
	MaxRSS int64         `json:"max_rss_bytes"`
	// CSW counts the responder's context switches, voluntary (it slept:
	// its sockets were empty) and not.
	CSW int64 `json:"csw"`
}

// childMain serves until stdin closes. Commands, one a line: "stats";
// "unbound" (start a private unbound forwarding to the responder, cold,
// stopping the one before) and "unbound-stop".
func childMain() int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 2
	}
	out := json.NewEncoder(os.Stdout)
	ready, closeAll, srv, err := serve(cfg)
	if err != nil {
		_ = out.Encode(childReady{Error: err.Error()})
		return 1
	}
	defer closeAll()
	if err := out.Encode(ready); err != nil {
		return 1
	}
	var ub *unboundProc
	defer func() {
		if ub != nil {
			ub.stop()
		}
	}()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "unbound", "unbound-stop":
			_ = out.Encode(unboundCommand(sc.Text(), ready.DNS, &ub))
		case "stats":
			var ru syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			_ = out.Encode(childStats{
				DNS:    srv.Stats(),
				UserNS: ru.Utime.Nano(),
				SysNS:  ru.Stime.Nano(),
				MaxRSS: ru.Maxrss * 1024,
				CSW:    ru.Nvcsw + ru.Nivcsw,
			})
		}
	}
	return 0
}

func serve(cfg childConfig) (ready childReady, closeAll func(), srv *fastdns.Server, err error) {
	var closers []func()
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	w := synth.Generate(synth.Config{Domains: cfg.Domains, DeadDomains: cfg.DeadDomains, Seed: cfg.Seed})
	srv, err = fastdns.Start(w, fastdns.Options{Sockets: cfg.DNSSockets})
	if err != nil {
		return ready, closeAll, nil, err
	}
	closers = append(closers, func() { srv.Close() })
	ready.DNS = srv.Addr()

	ca, err := mailtest.NewCA("certplan bench CA")
	if err != nil {
		return ready, closeAll, nil, err
	}
	ready.CAPEM = string(ca.CertPEM)
	def, err := ca.Issue(mailtest.CertSpec{Names: []string{"server.hosting1.test"}})
	if err != nil {
		return ready, closeAll, nil, err
	}
	names := w.MailHosts
	if len(names) > cfg.SNINames {
		names = names[:cfg.SNINames]
	}
	var sni []*tls.Certificate
	for _, n := range names {
		c, err := ca.Issue(mailtest.CertSpec{Names: []string{n}})
		if err != nil {
			return ready, closeAll, nil, err
		}
		sni = append(sni, c)
	}
	certs := mailtest.NewCerts(def, sni...)
	ready.SNINames = names
	listen := func(ip, proto string, mode mailtest.Mode) (mailbench.Target, error) {
		l, err := mailtest.Start(mailtest.Config{Addr: net.JoinHostPort(ip, "0"), Protocol: proto, Certs: certs, Mode: mode, Hostname: "server.hosting1.test"})
		if err != nil {
			return mailbench.Target{}, err
		}
		closers = append(closers, func() { l.Close() })
		return mailbench.Target{IP: ip, Port: l.Port(), Protocol: proto}, nil
	}
	for _, ip := range cfg.MailIPs {
		for _, p := range mailProtos {
			t, err := listen(ip, p, mailtest.Normal)
			if err != nil {
				return ready, closeAll, nil, err
			}
			ready.Services = append(ready.Services, t)
		}
	}
	if cfg.TarpitIP != "" {
		// Hosts that accept and never answer.
		for _, p := range mailProtos {
			t, err := listen(cfg.TarpitIP, p, mailtest.Silent)
			if err != nil {
				return ready, closeAll, nil, err
			}
			ready.Tarpits = append(ready.Tarpits, t)
		}
	}
	return ready, closeAll, srv, nil
}

// child is a running server process.
type child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *json.Decoder
	Ready childReady
}

func startChild(cfg childConfig) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: in, out: json.NewDecoder(outp)}
	if err := c.out.Decode(&c.Ready); err != nil {
		c.Close()
		return nil, fmt.Errorf("bench child: %w", err)
	}
	if c.Ready.Error != "" {
		c.Close()
		return nil, fmt.Errorf("bench child: %s", c.Ready.Error)
	}
	return c, nil
}

// cpuSince is the child's CPU time (user and system) since before.
func (s childStats) cpuSince(before childStats) time.Duration {
	return time.Duration(s.UserNS + s.SysNS - before.UserNS - before.SysNS)
}

func (c *child) Stats() (childStats, error) {
	var st childStats
	if _, err := io.WriteString(c.in, "stats\n"); err != nil {
		return st, err
	}
	err := c.out.Decode(&st)
	return st, err
}

func (c *child) Close() error {
	c.in.Close()
	return c.cmd.Wait()
}
