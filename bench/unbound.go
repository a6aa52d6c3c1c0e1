package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/certplan/certplan/bench/internal/fastdns"
	"github.com/certplan/certplan/internal/dnstest"
	"github.com/miekg/dns"
)

// The resolver stage (issue 20): certplan's inventory through a real
// recursive resolver, Debian's unbound, forwarding to the bench responder.
// The child process starts a private unbound for each run (a cold cache),
// with its own config in a temporary directory; the parent inventories
// through it and reads what it cost.

// UnboundResult is the inventory of UnboundDomains domains through a
// private unbound, started cold for each run; the best run is kept.
type UnboundResult struct {
	Version   string        `json:"version"`
	Domains   int           `json:"domains"`
	Failed    int           `json:"domains_failed"`
	Elapsed   time.Duration `json:"elapsed_ns"` // the best run
	Runs      []float64     `json:"runs_s"`
	Questions int           `json:"questions"` // what certplan asked unbound
	// DANE are the questions of Questions that the DANE checks add, apart
	// from issue 20's figures (see InventoryResult.DANEQueries).
	DANE int `json:"dane_questions"`
	// Forwarded is what unbound asked the responder, and by type: more A
	// than certplan asks, since unbound asks a CNAME's target again
	// after the answer that named it (about one a "mail.D CNAME D").
	Forwarded       int64            `json:"forwarded"`
	ForwardedByType map[string]int64 `json:"forwarded_by_type"`
	ByType          map[string]int   `json:"by_type"`
	// Ceiling is the minimal client (fastdns.Blast) asking the questions
	// certplan asks for the same domains (synth's list) through another
	// cold unbound, in the same run: what this resolver gives any client
	// that asks them. Its best run.
	Ceiling *UnboundCeiling `json:"ceiling,omitempty"`
	// UnboundCPU is unbound's user and system time during the best run;
	// CertplanCPU the inventory's (this process) and ResponderCPU the
	// responder's (the child): with two cores, the three share 2×Elapsed.
	UnboundCPU   time.Duration `json:"unbound_cpu_ns"`
	CertplanCPU  time.Duration `json:"certplan_cpu_ns"`
	ResponderCPU time.Duration `json:"responder_cpu_ns"`
}

// ceilingRatio is certplan's time through unbound over the ceiling's.
func (u *UnboundResult) ceilingRatio() float64 {
	return u.Elapsed.Seconds() / u.Ceiling.Elapsed.Seconds()
}

// UnboundCeiling is one replay of the questions through a cold unbound.
type UnboundCeiling struct {
	fastdns.BlastResult
	UnboundCPU   time.Duration `json:"unbound_cpu_ns"`
	ClientCPU    time.Duration `json:"client_cpu_ns"`
	ResponderCPU time.Duration `json:"responder_cpu_ns"`
	Forwarded    int64         `json:"forwarded"`
}

// unboundPath is the unbound binary, or "" when it is not installed.
func unboundPath() string {
	p, err := exec.LookPath("unbound")
	if err != nil {
		for _, c := range []string{"/usr/sbin/unbound", "/usr/local/sbin/unbound"} {
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
		return ""
	}
	return p
}

// unboundStages inventories the first UnboundDomains domains through a
// fresh unbound, Reps times. Without unbound it records a note and
// returns; the test decides whether that is a failure.
func (st *stages) unboundStages(ctx context.Context) error {
	cfg, log := st.cfg, st.log
	if unboundPath() == "" {
		st.res.Notes = append(st.res.Notes, "unbound stage skipped: unbound is not installed (apt-get install unbound)")
		log.logf("unbound: not installed, stage skipped")
		return nil
	}
	domains := st.domains[:min(cfg.UnboundDomains, len(st.domains))]
	var best *UnboundResult
	var ceiling *UnboundCeiling
	var runs []float64
	for rep := range cfg.Reps {
		stop := func() {}
		if rep == 0 {
			stop = profile(cfg.CPUProfile, "unbound")
		}
		r, err := st.unboundRun(ctx, domains)
		stop()
		if err != nil {
			return err
		}
		runs = append(runs, r.Elapsed.Seconds())
		log.logf("through unbound: %d domains in %s, %.2f questions a domain (of which DANE: %d), %d forwarded to the responder, cpu: unbound %s, certplan %s, responder %s; %d failed",
			r.Domains, dur(r.Elapsed), float64(r.Questions-r.DANE)/float64(r.Domains), r.DANE, r.Forwarded, dur(r.UnboundCPU), dur(r.CertplanCPU), dur(r.ResponderCPU), r.Failed)
		if best == nil || r.Elapsed < best.Elapsed {
			best = r
		}
		c, err := st.unboundCeiling(ctx)
		if err != nil {
			return err
		}
		log.logf("ceiling through unbound: the same %d questions in %s (%d lost), %d forwarded, cpu: unbound %s, client %s, responder %s",
			c.Queries, dur(c.Elapsed), c.Lost, c.Forwarded, dur(c.UnboundCPU), dur(c.ClientCPU), dur(c.ResponderCPU))
		if ceiling == nil || c.Elapsed < ceiling.Elapsed {
			ceiling = c
		}
	}
	best.Runs = runs
	best.Ceiling = ceiling
	st.res.DNS.Unbound = best
	return nil
}

// coldUnbound has the child start a cold unbound. stop stops it and
// returns the reply with unbound's CPU time; after the first call (a
// deferred one too) it does nothing.
func (st *stages) coldUnbound() (u unboundReply, stop func() (unboundReply, error), err error) {
	u, err = st.ch.command("unbound")
	if err == nil && u.Error != "" {
		err = fmt.Errorf("unbound: %s", u.Error)
	}
	if err != nil {
		return u, nil, err
	}
	stopped := false
	stop = func() (unboundReply, error) {
		if stopped {
			return unboundReply{}, nil
		}
		stopped = true
		return st.ch.command("unbound-stop")
	}
	return u, stop, nil
}

// unboundCeiling replays st.unboundQs, the questions certplan asks for
// the stage's domains, with the minimal client through a cold unbound.
func (st *stages) unboundCeiling(ctx context.Context) (*UnboundCeiling, error) {
	u, stop, err := st.coldUnbound()
	if err != nil {
		return nil, err
	}
	defer stop()
	before, err := st.ch.Stats()
	if err != nil {
		return nil, err
	}
	cpu0, _, _ := selfTimes()
	r, err := fastdns.Blast(ctx, u.Addr, st.unboundQs, fastdns.BlastOptions{InFlight: st.cfg.Concurrency, Timeout: 5 * time.Second})
	cpu1, _, _ := selfTimes()
	after, serr := st.ch.Stats()
	s, uerr := stop()
	if err = cmp.Or(err, serr, uerr); err != nil {
		return nil, err
	}
	return &UnboundCeiling{BlastResult: r, UnboundCPU: time.Duration(s.CPUNS - u.CPUNS), ClientCPU: cpu1 - cpu0,
		ResponderCPU: after.cpuSince(before), Forwarded: after.DNS.Queries - before.DNS.Queries}, nil
}

// unboundRun starts a cold unbound in the child, inventories domains
// through it, and stops it.
func (st *stages) unboundRun(ctx context.Context, domains []string) (*UnboundResult, error) {
	u, stop, err := st.coldUnbound()
	if err != nil {
		return nil, err
	}
	defer stop()
	before, err := st.ch.Stats()
	if err != nil {
		return nil, err
	}
	cpu0, _, _ := selfTimes()
	inv, el, err := st.inventoryStream(ctx, domains, invRun{server: u.Addr, timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	cpu1, _, _ := selfTimes()
	after, err := st.ch.Stats()
	if err != nil {
		return nil, err
	}
	fwdByType := map[string]int64{}
	for k, v := range after.DNS.ByType {
		if d := v - before.DNS.ByType[k]; d != 0 {
			fwdByType[k] = d
		}
	}
	s, err := stop()
	if err != nil {
		return nil, err
	}
	return &UnboundResult{Version: u.Version, Domains: len(domains), Failed: inv.Stats.DomainsFailed, Elapsed: el,
		Questions: inv.Stats.Queries, DANE: inv.Stats.DANEQueries, ByType: inv.Stats.QueriesByType, Forwarded: after.DNS.Queries - before.DNS.Queries, ForwardedByType: fwdByType,
		UnboundCPU: time.Duration(s.CPUNS - u.CPUNS), CertplanCPU: cpu1 - cpu0, ResponderCPU: after.cpuSince(before)}, nil
}

// unboundReply answers the child's "unbound" and "unbound-stop" commands.
type unboundReply struct {
	Addr    string `json:"addr,omitempty"`
	Version string `json:"version,omitempty"`
	CPUNS   int64  `json:"cpu_ns"` // unbound's CPU time so far
	Error   string `json:"error,omitempty"`
}

// command sends a command to the child and reads its unboundReply.
func (c *child) command(cmd string) (unboundReply, error) {
	var r unboundReply
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		return r, err
	}
	err := c.out.Decode(&r)
	return r, err
}

// unboundProc is a private unbound, run by the child.
type unboundProc struct {
	cmd  *exec.Cmd
	dir  string
	addr string
	done chan error
}

// unboundConfig is the private config: foreground, no user change or
// chroot, no validation, the world's TLD served (unbound's built-in
// local zone for test. would answer NXDOMAIN), queries to loopback
// allowed, everything forwarded to the responder at fwd.
const unboundConfig = `server:
	interface: 127.0.0.1
	port: %d
	do-ip6: no
	do-daemonize: no
	username: ""
	chroot: ""
	directory: %q
	pidfile: %q
	use-syslog: no
	logfile: ""
	verbosity: 0
	num-threads: 2
	so-reuseport: yes
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	module-config: "iterator"
	local-zone: "test." nodefault
	qname-minimisation: no
	msg-cache-size: 64m
	rrset-cache-size: 128m
	num-queries-per-thread: 1024
	outgoing-range: 4096
	prefetch: no
forward-zone:
	name: "."
	forward-addr: %s
`

// startUnbound starts a private unbound forwarding to the responder at
// fwd ("127.0.0.1:PORT") and waits until it answers.
func startUnbound(fwd string) (*unboundProc, error) {
	bin := unboundPath()
	if bin == "" {
		return nil, errors.New("not installed")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	host, fport, err := net.SplitHostPort(fwd)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "certplan-bench-unbound-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "unbound.conf")
	text := fmt.Sprintf(unboundConfig, port, dir, filepath.Join(dir, "unbound.pid"), host+"@"+fport)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(bin, "-d", "-c", conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	u := &unboundProc{cmd: cmd, dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan error, 1)}
	go func() { u.done <- cmd.Wait() }()
	if err := u.wait(10 * time.Second); err != nil {
		u.stop()
		return nil, err
	}
	return u, nil
}

// wait asks unbound a question until it answers.
func (u *unboundProc) wait(limit time.Duration) error {
	m := new(dns.Msg)
	m.SetQuestion("unbound-ready.invalid.", dns.TypeA)
	return dnstest.WaitAnswer(u.addr, m, u.done, limit)
}

// cpu returns unbound's user and system time so far, from /proc.
func (u *unboundProc) cpu() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", u.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// After the command in parentheses: state is field 3, utime 14, stime 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return (ut + st) * int64(time.Second) / 100 // USER_HZ
}

// stop ends unbound and removes its directory.
func (u *unboundProc) stop() {
	_ = u.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-u.done:
	case <-time.After(5 * time.Second):
		_ = u.cmd.Process.Kill()
		<-u.done
	}
	os.RemoveAll(u.dir)
}

// unboundVersion is "unbound 1.17.1", from unbound -V.
func unboundVersion() string {
	out, _ := exec.Command(unboundPath(), "-V").Output()
	v, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(strings.Replace(v, "Version", "unbound", 1))
}

// freePort returns a port free on 127.0.0.1 for both UDP and TCP just now.
func freePort() (int, error) {
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port for unbound")
}

// unboundCommand runs the child's side of "unbound" (start a fresh one,
// stopping the one before) and "unbound-stop".
func unboundCommand(cmd, responder string, cur **unboundProc) unboundReply {
	var r unboundReply
	if *cur != nil {
		r.CPUNS = (*cur).cpu()
		(*cur).stop()
		*cur = nil
	}
	if cmd == "unbound-stop" {
		return r
	}
	u, err := startUnbound(responder)
	if err != nil {
		return unboundReply{Error: err.Error()}
	}
	*cur = u
	return unboundReply{Addr: u.addr, Version: unboundVersion(), CPUNS: u.cpu()}
}
