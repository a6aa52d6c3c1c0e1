package realmail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/proc"
)

// Exim, cPanel's MTA, cannot be installed beside Postfix as a Debian package
// (exim4-daemon-light conflicts with postfix), so the tests run Debian's
// binary unpacked from its .deb: .ci/run (through
// internal/realmail/install-exim.sh) unpacks exim4-daemon-light,
// exim4-base and exim4-config under [EximRoot], installs libidn12 (the one
// library the binary needs that postfix's dependencies do not bring) and
// adds the Debian-exim user. Checked here with Exim 4.96 (Debian 12):
//
//   - "exim4 -C CONFIG -bd -oX PORTS -oP PIDFILE" runs a private daemon; with
//     -oX and no -oP no pid file is written;
//   - a SIGHUP re-executes exim_path (so it is set to the unpacked binary)
//     and drops privilege for a -C file not in trusted_configs: the tests
//     restart the daemon instead;
//   - Exim reads tls_certificate as exim_user (Debian-exim) at each TLS
//     start, so the certificate files and every directory above them must be
//     readable by that user: the instance directory is 0755, and the deploy
//     hook writes root:Debian-exim 0640 files.

// EximRoot is where install-exim.sh unpacks Debian's Exim packages;
// CERTPLAN_EXIM overrides the binary's path.
const EximRoot = "/usr/local/lib/certplan-exim4"

// eximUser is the user Exim drops to (Debian's build's default).
const eximUser = "Debian-exim"

// EximBinary returns the exim4 binary to run: $CERTPLAN_EXIM, the one
// unpacked under EximRoot, or an installed /usr/sbin/exim4.
func EximBinary() (string, error) {
	if p := os.Getenv("CERTPLAN_EXIM"); p != "" {
		return p, nil
	}
	for _, p := range []string{filepath.Join(EximRoot, "usr/sbin/exim4"), "/usr/sbin/exim4"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("exim4: not found")
}

// EximAvailable returns nil when a private Exim instance can start here, or
// a *MissingError saying what is missing.
func EximAvailable() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (the Exim daemon must start as root)")
	}
	exe, err := EximBinary()
	if err != nil {
		missing = append(missing, "exim4 under "+EximRoot+" (run internal/realmail/install-exim.sh, as .ci/run does)")
	} else if out, err := exec.Command(exe, "-C", "/dev/null", "-bV").CombinedOutput(); err != nil {
		missing = append(missing, fmt.Sprintf("a working %s (-bV: %v: %s; libidn12 missing?)", exe, err, firstLine(string(out))))
	}
	if _, err := user.Lookup(eximUser); err != nil {
		missing = append(missing, "user "+eximUser)
	}
	if _, err := proc.LookPath("openssl"); err != nil {
		missing = append(missing, "command openssl (package openssl)")
	}
	if len(missing) > 0 {
		return &MissingError{Server: "exim", Missing: missing}
	}
	return nil
}

// RequireExim skips the test when Exim cannot run here, or fails it when
// CERTPLAN_REQUIRE_INTEGRATION=1.
func RequireExim(t testing.TB) {
	t.Helper()
	require(t, EximAvailable())
}

// EximOptions configures a private Exim instance.
type EximOptions struct {
	// IP is the IPv4 loopback address to listen on (default DefaultIP).
	IP string
	// ExtraIPs are more IPv4 loopback addresses to listen on, on the same
	// ports (for a test of several IPs' default certificates).
	ExtraIPs []string
	// Hostname is primary_hostname (default server.main-domain.test).
	Hostname string
	// TLS is the main-section TLS configuration, such as the one
	// examples/hooks/exim.sh documents; the macro CERTPLAN_DIR is defined
	// before it as the instance's CertDir.
	TLS string
}

// Exim is a running private Exim daemon: SMTP (STARTTLS), submission
// (STARTTLS) and SMTPS (TLS on connect) on IP.
type Exim struct {
	IP                                  string
	SMTPPort, SubmissionPort, SMTPSPort int
	Dir                                 string
	// CertDir is where the deploy hook puts its files (EXIM_CERT_DIR):
	// root:Debian-exim 0750.
	CertDir    string
	ConfigFile string
	LogDir     string

	exe     string
	opts    EximOptions
	mu      sync.Mutex
	stopped bool
}

// StartExim starts a private Exim for t and stops it when t ends. It skips
// t when Exim cannot run here (failing it instead when
// CERTPLAN_REQUIRE_INTEGRATION=1).
func StartExim(t testing.TB, opts EximOptions) *Exim {
	t.Helper()
	RequireExim(t)
	e, err := NewExim(context.Background(), opts)
	if err != nil {
		t.Fatalf("start exim: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stop exim: %v", err)
		}
	})
	return e
}

// NewExim starts a private Exim. The caller must call Stop.
func NewExim(ctx context.Context, opts EximOptions) (*Exim, error) {
	if err := EximAvailable(); err != nil {
		return nil, err
	}
	if opts.IP == "" {
		opts.IP = DefaultIP
	}
	for _, a := range append([]string{opts.IP}, opts.ExtraIPs...) {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
			return nil, fmt.Errorf("exim: %q is not an IPv4 loopback address", a)
		}
	}
	if opts.Hostname == "" {
		opts.Hostname = "server.main-domain.test"
	}
	exe, _ := EximBinary()
	sweep()
	dir, err := newInstanceDir("exim")
	if err != nil {
		return nil, fmt.Errorf("exim: %w", err)
	}
	e := &Exim{IP: opts.IP, Dir: dir, CertDir: filepath.Join(dir, "certs"), ConfigFile: filepath.Join(dir, "exim.conf"),
		LogDir: filepath.Join(dir, "log"), exe: exe, opts: opts}
	if err := e.setup(); err != nil {
		e.Stop()
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err = e.start(ctx)
		if err == nil {
			return e, nil
		}
		if attempt == 3 || !strings.Contains(err.Error(), "in use") {
			e.Stop()
			return nil, err
		}
		e.stopDaemon()
	}
}

// setup makes the spool, log and certificate directories, owned so that
// Exim (as Debian-exim) may write the first two and read the third.
func (e *Exim) setup() error {
	u, err := user.Lookup(eximUser)
	if err != nil {
		return fmt.Errorf("exim: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, d := range []struct {
		path     string
		uid, gid int
		mode     os.FileMode
	}{
		{filepath.Join(e.Dir, "spool"), uid, gid, 0o750},
		{e.LogDir, uid, gid, 0o750},
		{e.CertDir, 0, gid, 0o750},
	} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			return fmt.Errorf("exim: %w", err)
		}
		if err := os.Chown(d.path, d.uid, d.gid); err != nil {
			return fmt.Errorf("exim: %w", err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("exim: %w", err)
		}
	}
	return nil
}

// eximConf is the instance's configuration: listeners come from -oX, and
// no message is accepted (the tests only handshake).
const eximConf = `# private test instance (internal/realmail)
exim_path = %[1]s
spool_directory = %[2]s/spool
log_file_path = %[2]s/log/%%slog
pid_file_path = %[2]s/exim.pid
exim_user = Debian-exim
exim_group = Debian-exim
primary_hostname = %[3]s
local_interfaces = <; %[4]s
tls_on_connect_ports = %[7]d
tls_advertise_hosts = *
acl_smtp_rcpt = acl_check_rcpt
CERTPLAN_DIR = %[8]s
%[9]s

begin acl
acl_check_rcpt:
  deny
`

func (e *Exim) start(ctx context.Context) error {
	ports, err := freePorts(e.IP, 3)
	if err != nil {
		return fmt.Errorf("exim: %w", err)
	}
	e.SMTPPort, e.SubmissionPort, e.SMTPSPort = ports[0], ports[1], ports[2]
	return e.launch(ctx)
}

// launch writes the configuration for the instance's ports and starts the
// daemon. Exim checks its configuration before it daemonises: errors come
// back here, not only in a log.
func (e *Exim) launch(ctx context.Context) error {
	var listen []string
	for _, ip := range e.IPs() {
		for _, p := range e.Ports() {
			listen = append(listen, fmt.Sprintf("%s.%d", ip, p))
		}
	}
	conf := fmt.Sprintf(eximConf, e.exe, e.Dir, e.opts.Hostname, strings.Join(listen, " ; "), e.SMTPPort, e.SubmissionPort, e.SMTPSPort, e.CertDir, e.opts.TLS)
	if err := os.WriteFile(e.ConfigFile, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("exim: %w", err)
	}
	if out, err := run(ctx, e.exe, "-C", e.ConfigFile, "-bd", "-oX", strings.Join(listen, ":"), "-oP", e.pidFile()); err != nil {
		return fmt.Errorf("exim: %w\n%s%s", err, out, tail(filepath.Join(e.LogDir, "paniclog"), 10))
	}
	for _, ip := range e.IPs() {
		if err := waitListening(ip, e.Ports(), commandTimeout); err != nil {
			return fmt.Errorf("exim: %w\n%s", err, tail(filepath.Join(e.LogDir, "paniclog"), 10))
		}
	}
	return nil
}

// IPs returns IP and the extra IPs.
func (e *Exim) IPs() []string { return append([]string{e.IP}, e.opts.ExtraIPs...) }

func (e *Exim) pidFile() string { return filepath.Join(e.Dir, "exim.pid") }

// Ports returns the SMTP, submission and SMTPS ports.
func (e *Exim) Ports() []int { return []int{e.SMTPPort, e.SubmissionPort, e.SMTPSPort} }

// Log returns the main and panic logs, for failure messages.
func (e *Exim) Log() string {
	return readLog(filepath.Join(e.LogDir, "mainlog")) + readLog(filepath.Join(e.LogDir, "paniclog"))
}

// Restart stops the daemon and starts it again on the same ports, as a
// configuration change needs (see the package notes on SIGHUP).
func (e *Exim) Restart(ctx context.Context) error {
	if err := e.stopDaemon(); err != nil {
		return err
	}
	return e.launch(ctx)
}

func (e *Exim) stopDaemon() error {
	return stopDaemon("exim", e.pidFile(), e.exe, 5*time.Second)
}

// Stop stops the daemon and removes the instance directory.
func (e *Exim) Stop() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return nil
	}
	e.stopped = true
	err := e.stopDaemon()
	os.RemoveAll(e.Dir)
	return err
}

// stopEximDir stops the daemon of a leftover instance directory.
func stopEximDir(dir string) {
	exe, err := EximBinary()
	if err != nil {
		return
	}
	stopDaemon("exim", filepath.Join(dir, "exim.pid"), exe, 2*time.Second)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
