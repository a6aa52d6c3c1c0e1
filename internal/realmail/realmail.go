// Package realmail starts and stops private Postfix, Dovecot and Exim instances on
// loopback, for integration tests that need real mail servers rather than Go
// listeners: what a real MTA or IMAP server presents with and without SNI, and
// what a deploy hook must do for it to present a new certificate.
//
// Each instance lives in its own temporary directory (configuration, queue,
// state, log), listens on ports chosen at start on a loopback IP (127.0.0.2
// unless told otherwise), and never touches the system's own Postfix or
// Dovecot configuration or ports. [StartPostfix] and [StartDovecot] register
// a cleanup that stops the daemons and removes the directory, even when the
// test fails; instances left by a test binary that was killed are stopped by
// the next start.
//
// # Requirements
//
// Debian's postfix, dovecot-core, dovecot-imapd, dovecot-pop3d and openssl
// packages, and root (the Postfix master and the Dovecot master must start as
// root). Exim is unpacked, not installed (see exim.go and install-exim.sh).
// [PostfixAvailable], [DovecotAvailable] and [EximAvailable] say what is
// missing; [RequirePostfix], [RequireDovecot] and [RequireExim] skip a test
// when something is, unless CERTPLAN_REQUIRE_INTEGRATION=1 (as in CI), when
// they fail it.
//
// # Postfix and 127.0.0.2
//
// Postfix refuses an inet_interfaces address that is not on an interface
// (Linux routes 127.0.0.0/8 to lo, but only 127.0.0.1 is configured on it).
// An explicit address in master.cf ("127.0.0.2:2525 inet ...") is bound
// without that check, so instances keep inet_interfaces = 127.0.0.1 and name
// their IP in master.cf: no `ip addr add` and no CAP_NET_ADMIN needed.
//
// # Certificates
//
// [CA] issues the test certificates; [ServedLeaf] asks `openssl s_client`
// what a server presents, as the independent reference that certplan's own
// probe is compared with.
package realmail

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/proc"
)

// RequireEnv is the environment variable that turns a missing integration
// prerequisite from a skip into a failure.
const RequireEnv = "CERTPLAN_REQUIRE_INTEGRATION"

// DefaultIP is the loopback address instances listen on unless told
// otherwise: not 127.0.0.1, so that a test sees a "server IP" distinct from
// the client's source address.
const DefaultIP = "127.0.0.2"

// dirPrefix names the instance directories under os.TempDir(); sweep finds
// leftovers by it.
const dirPrefix = "realmail-"

// MissingError lists what an integration test needs and this machine lacks.
type MissingError struct {
	Server  string   // "postfix" or "dovecot"
	Missing []string // human-readable items, e.g. "command postmap (package postfix)"
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s integration: missing %s", e.Server, strings.Join(e.Missing, ", "))
}

type need struct{ cmd, pkg string }

func checkAvailable(server string, cmds []need, users []string, groups []string) error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (the "+server+" master process must start as root)")
	}
	for _, n := range cmds {
		if _, err := proc.LookPath(n.cmd); err != nil {
			missing = append(missing, fmt.Sprintf("command %s (package %s)", n.cmd, n.pkg))
		}
	}
	for _, u := range users {
		if _, err := user.Lookup(u); err != nil {
			missing = append(missing, "user "+u)
		}
	}
	for _, g := range groups {
		if _, err := user.LookupGroup(g); err != nil {
			missing = append(missing, "group "+g)
		}
	}
	if len(missing) > 0 {
		return &MissingError{Server: server, Missing: missing}
	}
	return nil
}

// PostfixAvailable returns nil when a private Postfix instance can start
// here, or a *MissingError saying what is missing.
func PostfixAvailable() error {
	return checkAvailable("postfix",
		[]need{{"postfix", "postfix"}, {"postconf", "postfix"}, {"postmap", "postfix"}, {"openssl", "openssl"}},
		[]string{"postfix"}, []string{"postdrop"})
}

// DovecotAvailable returns nil when a private Dovecot instance can start
// here, or a *MissingError saying what is missing.
func DovecotAvailable() error {
	err := checkAvailable("dovecot",
		[]need{{"dovecot", "dovecot-core"}, {"doveadm", "dovecot-core"}, {"doveconf", "dovecot-core"}, {"openssl", "openssl"}},
		[]string{"dovecot", "dovenull"}, nil)
	var missing []string
	for _, bin := range []struct{ file, pkg string }{
		{"/usr/lib/dovecot/imap-login", "dovecot-imapd"},
		{"/usr/lib/dovecot/pop3-login", "dovecot-pop3d"},
	} {
		if _, serr := os.Stat(bin.file); serr != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", bin.file, bin.pkg))
		}
	}
	if len(missing) == 0 {
		return err
	}
	var me *MissingError
	if errors.As(err, &me) {
		me.Missing = append(me.Missing, missing...)
		return me
	}
	return &MissingError{Server: "dovecot", Missing: missing}
}

// Required reports whether integration tests must run rather than skip.
func Required() bool {
	v := os.Getenv(RequireEnv)
	return v != "" && v != "0" && v != "false"
}

// RequirePostfix skips the test when Postfix cannot run here, or fails it
// when CERTPLAN_REQUIRE_INTEGRATION=1.
func RequirePostfix(t testing.TB) {
	t.Helper()
	require(t, PostfixAvailable())
}

// RequireDovecot skips the test when Dovecot cannot run here, or fails it
// when CERTPLAN_REQUIRE_INTEGRATION=1.
func RequireDovecot(t testing.TB) {
	t.Helper()
	require(t, DovecotAvailable())
}

func require(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if Required() {
		t.Fatalf("%v (%s=1: integration tests must run; install the packages, as .ci/run does, and run as root)", err, RequireEnv)
		return
	}
	t.Skipf("%v (set %s=1 to make this a failure)", err, RequireEnv)
}

// freePorts returns n distinct TCP ports that were free on ip a moment ago.
// Another process may take one before the server binds it: callers retry
// their start on "address in use".
func freePorts(ip string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", ip, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitListening waits until every port accepts a TCP connection on ip.
func waitListening(ip string, ports []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, p := range ports {
		addr := net.JoinHostPort(ip, strconv.Itoa(p))
		for {
			c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not listening after %v: %w", addr, timeout, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// newInstanceDir makes a directory for one instance, readable by the
// unprivileged users the daemons switch to (os.MkdirTemp makes 0700, and
// t.TempDir's parents are 0700 too), and records the owning process so that
// sweep can stop instances whose test binary died.
func newInstanceDir(kind string) (string, error) {
	dir, err := os.MkdirTemp("", dirPrefix+kind+"-*")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// sweep stops instances whose owning test process no longer exists (a test
// binary killed by a timeout or a signal never runs its cleanups) and removes
// their directories. Only directories made by newInstanceDir are touched.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		base := filepath.Base(dir)
		switch {
		case strings.HasPrefix(base, dirPrefix+"postfix-"):
			stopPostfixDir(dir)
		case strings.HasPrefix(base, dirPrefix+"dovecot-"):
			stopDovecotDir(dir)
		case strings.HasPrefix(base, dirPrefix+"exim-"):
			stopEximDir(dir)
		default:
			continue
		}
		os.RemoveAll(dir)
	}
}

// processAlive reports whether pid is a live process (a zombie is not).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// "pid (comm) S ...": the state follows the last ')'.
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

// readPid reads the first field of a pid file.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// stopDaemon stops the master daemon named by pidFile, however it ended up:
// SIGTERM, as "postfix stop" and "doveadm stop" send (without their
// whole-second polling), a wait of up to grace, then a kill of its process
// group. exe is the master's executable: a pid file whose pid now belongs
// to another program is left alone. name prefixes errors.
func stopDaemon(name, pidFile, exe string, grace time.Duration) error {
	pid := readPid(pidFile)
	if pid == 0 || !processAlive(pid) {
		return nil
	}
	if got, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); got != exe {
		return nil // a stale pid file; the pid is someone else's now
	}
	err := syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(grace); time.Now().Before(deadline) && processAlive(pid); {
		time.Sleep(20 * time.Millisecond)
	}
	killGroup(pid, exe)
	if processAlive(pid) {
		return fmt.Errorf("%s master %d still running", name, pid)
	}
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// readLog returns a log file's content, for failure messages.
func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// killGroup ends what is left of a daemon whose master has pid: the master
// is a process group leader (both Postfix's and Dovecot's masters call
// setsid), so the group id is that pid. exe guards against a pid file from a
// long-dead instance whose pid now belongs to another program. When the
// master is already gone nothing is killed: its children notice and exit.
func killGroup(pid int, exe string) {
	if pid <= 1 || !processAlive(pid) {
		return
	}
	if got, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); err != nil || got != exe {
		return
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 50 && processAlive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
