package dnssectest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/internal/proc"
	"github.com/miekg/dns"
)

// daemon is NSD or an unbound, run in the foreground as the test's child,
// in a process group of its own.
type daemon struct {
	name string // "nsd", "unbound", "unbound-plain": its files are <dir>/<name>.*
	dir  string
	conf string
	addr string // where it answers DNS
	cmd  *exec.Cmd
	done chan error
}

// start starts the daemon on addr, written into its configuration by
// config(ip, port). Port 0 means a free port; another process may take it
// first, so then it tries a few.
func start(dir, name, addr string, config func(ip string, port int) string) (*daemon, error) {
	ip, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil, fmt.Errorf("port of %s: %w", addr, err)
	}
	for range 5 {
		pick := port
		if pick == 0 {
			if pick, err = freePort(ip); err != nil {
				return nil, err
			}
		}
		var d *daemon
		if d, err = try(dir, name, ip, pick, config); err == nil {
			return d, nil
		}
		if port != 0 || !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	return nil, err
}

// try starts the daemon once.
func try(dir, name, ip string, port int, config func(ip string, port int) string) (*daemon, error) {
	d := &daemon{name: name, dir: dir, conf: filepath.Join(dir, name+".conf"),
		addr: net.JoinHostPort(ip, strconv.Itoa(port)), done: make(chan error, 1)}
	if err := os.WriteFile(d.conf, []byte(config(ip, port)), 0o644); err != nil {
		return nil, err
	}
	bin, err := proc.LookPath(strings.TrimSuffix(name, "-plain"))
	if err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, name+".out"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	d.cmd = exec.Command(bin, "-d", "-c", d.conf)
	d.cmd.Stdout, d.cmd.Stderr = out, out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { d.done <- d.cmd.Wait() }()
	if err := d.wait(15 * time.Second); err != nil {
		d.stop()
		return nil, fmt.Errorf("%w; log: %s", err, d.logTail())
	}
	return d, nil
}

// wait asks the daemon for the root's SOA until it answers anything.
func (d *daemon) wait(limit time.Duration) error {
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeSOA)
	if err := dnstest.WaitAnswer(d.addr, m, d.done, limit); err != nil {
		return fmt.Errorf("%s: %w", d.name, err)
	}
	return nil
}

// signal sends sig to the daemon's process group.
func (d *daemon) signal(sig syscall.Signal) error {
	if err := syscall.Kill(-d.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("signal %s: %w", d.name, err)
	}
	return nil
}

// stop ends the daemon's process group: SIGTERM, then SIGKILL.
func (d *daemon) stop() {
	_ = d.signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
	case <-time.After(5 * time.Second):
		_ = d.signal(syscall.SIGKILL)
	}
}

// control runs unbound-control with the daemon's config.
func (d *daemon) control(args ...string) error {
	_, err := run(d.dir, "unbound-control", append([]string{"-c", d.conf}, args...)...)
	return err
}

// logTail is the end of the daemon's output and log file, for errors.
func (d *daemon) logTail() string {
	var s string
	for _, f := range []string{d.name + ".out", d.name + ".log"} {
		b, _ := os.ReadFile(filepath.Join(d.dir, f))
		s += string(b)
	}
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return strings.TrimSpace(s)
}

// nsdConfig serves every zone on port, with no database, chroot or user
// change, and its state in the rig's directory.
func (r *Rig) nsdConfig(ip string, port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `server:
	ip-address: %s
	port: %d
	do-ip6: no
	username: ""
	chroot: ""
	zonesdir: %q
	database: ""
	zonelistfile: %q
	xfrdfile: %q
	xfrdir: %q
	pidfile: %q
	logfile: %q
	server-count: 1
	verbosity: 1
	hide-version: yes
remote-control:
	control-enable: no
`, ip, port, r.dir, r.path("nsd.zonelist"), r.path("nsd.xfrd"), r.dir, r.path("nsd.pid"), r.path("nsd.log"))
	for _, o := range r.origins() {
		fmt.Fprintf(&b, "zone:\n\tname: %q\n\tzonefile: %q\n", o, r.zones[o].file())
	}
	return b.String()
}

// unboundConfig is a private unbound on port, validating with the root's
// key or not at all, with a stub-zone to NSD for the root and every zone,
// a control port without TLS for flushes, bogus answers cached for a
// second only, and records in the order the servers give them (a name with
// two addresses is validated by the CA at the first, as from the lab DNS). Replies carry the zones' TTLs (unless Config.CacheMaxTTL):
// tests read them.
func (r *Rig) unboundConfig(name, ip string, port int, validate bool) string {
	ctl, err := freePort(ip)
	if err != nil {
		ctl = port + 1 // start will fail and say so
	}
	modules, anchor := "iterator", ""
	if validate {
		modules = "validator iterator"
		file := r.path(name + ".anchor")
		_ = os.WriteFile(file, []byte(r.TrustAnchor+"\n"), 0o644)
		anchor = fmt.Sprintf("\ttrust-anchor-file: %q\n", file)
	}
	cacheMax := ""
	if r.cfg.CacheMaxTTL > 0 {
		cacheMax = fmt.Sprintf("\tcache-max-ttl: %d\n", r.cfg.CacheMaxTTL)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `server:
	interface: %s
	port: %d
	do-ip6: no
	do-daemonize: no
	username: ""
	chroot: ""
	directory: %q
	pidfile: %q
	use-syslog: no
	logfile: %q
	verbosity: 1
	val-log-level: 2
	num-threads: 1
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	module-config: %q
%s%s	val-bogus-ttl: 1
	aggressive-nsec: no
	qname-minimisation: no
	prefetch: no
	rrset-roundrobin: no
	local-zone: "test." nodefault
	local-zone: "invalid." nodefault
remote-control:
	control-enable: yes
	control-interface: %s
	control-port: %d
	control-use-cert: no
`, ip, port, r.dir, r.path(name+".pid"), r.path(name+".log"), modules, anchor, cacheMax, ip, ctl)
	for _, o := range r.origins() {
		fmt.Fprintf(&b, "stub-zone:\n\tname: %q\n\tstub-addr: %s\n", o, strings.Replace(r.Auth, ":", "@", 1))
	}
	return b.String() + r.stubConfig()
}

// stubConfig declares Config.Stubs, sorted: "domain-insecure" is a server
// option, which unbound accepts in a later "server:" clause.
func (r *Rig) stubConfig() string {
	if len(r.cfg.Stubs) == 0 {
		return ""
	}
	origins := make([]string, 0, len(r.cfg.Stubs))
	for o := range r.cfg.Stubs {
		origins = append(origins, o)
	}
	sort.Strings(origins)
	var b strings.Builder
	b.WriteString("server:\n")
	for _, o := range origins {
		fmt.Fprintf(&b, "\tdomain-insecure: %q\n", dns.CanonicalName(o))
	}
	for _, o := range origins {
		fmt.Fprintf(&b, "stub-zone:\n\tname: %q\n\tstub-addr: %s\n", dns.CanonicalName(o), strings.Replace(r.cfg.Stubs[o], ":", "@", 1))
	}
	return b.String()
}

func (r *Rig) path(name string) string { return filepath.Join(r.dir, name) }

// freePort returns a port free on ip for both UDP and TCP just now.
func freePort(ip string) (int, error) {
	for range 20 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, err
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}
