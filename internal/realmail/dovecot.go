package realmail

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/atomicfile"
	"github.com/certplan/certplan/internal/proc"
)

// DovecotOptions configures a private Dovecot instance.
type DovecotOptions struct {
	// IP is the loopback address to listen on; DefaultIP when empty.
	// Dovecot binds 127.0.0.0/8 addresses without `ip addr add`.
	IP string
	// ExtraIPs are more loopback addresses to listen on, on the same ports.
	ExtraIPs []string
	// POP3 adds POP3 (STLS) and POP3S listeners to IMAP and IMAPS.
	POP3 bool

	// Default is the certificate served without SNI (ssl_cert, ssl_key).
	// Ignored when DefaultCertFile is set.
	Default Cert
	// DefaultCertFile and DefaultKeyFile, when set, are used as ssl_cert
	// and ssl_key as they are: files something else maintains, such as a
	// deploy hook under test.
	DefaultCertFile, DefaultKeyFile string

	// SNI maps a name to the certificate of its local_name block.
	SNI map[string]Cert
	// IncludeTry, when set, is added as `!include_try IncludeTry` (a path
	// or glob) for configuration something else maintains.
	IncludeTry string
}

// Dovecot is a running private Dovecot instance.
type Dovecot struct {
	IP         string
	IMAPPort   int // IMAP, STARTTLS offered
	IMAPSPort  int // IMAP over implicit TLS
	POP3Port   int // POP3, STLS offered; 0 unless DovecotOptions.POP3
	POP3SPort  int // POP3 over implicit TLS; 0 unless DovecotOptions.POP3
	Dir        string
	ConfigFile string // `dovecot -c ConfigFile`, `doveadm -c ConfigFile`
	LogFile    string // log_path

	DefaultCertFile, DefaultKeyFile string

	opts    DovecotOptions
	mu      sync.Mutex
	stopped bool
	nSNI    int
	sniConf string // the included file with the local_name blocks
}

// dovecotMaster is the master daemon's executable on Debian.
const dovecotMaster = "/usr/sbin/dovecot"

// StartDovecot starts a private Dovecot instance for t and stops it when t
// ends. It skips t when Dovecot cannot run here (failing it instead when
// CERTPLAN_REQUIRE_INTEGRATION=1).
func StartDovecot(t testing.TB, opts DovecotOptions) *Dovecot {
	t.Helper()
	RequireDovecot(t)
	d, err := NewDovecot(context.Background(), opts)
	if err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stop dovecot: %v", err)
		}
	})
	return d
}

// NewDovecot starts a private Dovecot instance. The caller must call Stop.
func NewDovecot(ctx context.Context, opts DovecotOptions) (*Dovecot, error) {
	if err := DovecotAvailable(); err != nil {
		return nil, err
	}
	if opts.IP == "" {
		opts.IP = DefaultIP
	}
	if ip := net.ParseIP(opts.IP); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("dovecot: %q is not a loopback address", opts.IP)
	}
	if opts.DefaultCertFile == "" && opts.Default.Leaf == nil {
		return nil, fmt.Errorf("dovecot: no default certificate")
	}
	if (opts.DefaultCertFile == "") != (opts.DefaultKeyFile == "") {
		return nil, fmt.Errorf("dovecot: DefaultCertFile and DefaultKeyFile go together")
	}
	sweep()
	dir, err := newInstanceDir("dovecot")
	if err != nil {
		return nil, fmt.Errorf("dovecot: %w", err)
	}
	d := &Dovecot{
		IP:         opts.IP,
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "dovecot.conf"),
		LogFile:    filepath.Join(dir, "dovecot.log"),
		sniConf:    filepath.Join(dir, "sni.conf"),
		opts:       opts,
	}
	if err := d.setup(); err != nil {
		d.Stop()
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err = d.start(ctx)
		if err == nil {
			return d, nil
		}
		if attempt == 3 || !strings.Contains(err.Error(), "in use") {
			d.Stop()
			return nil, err
		}
		d.stopMaster(ctx)
	}
}

func (d *Dovecot) setup() error {
	// base_dir holds the sockets the unprivileged login processes use, so
	// everything on the way must be searchable (0755).
	for _, sub := range []string{"run", "state", "home"} {
		if err := os.Mkdir(filepath.Join(d.Dir, sub), 0o755); err != nil {
			return fmt.Errorf("dovecot: %w", err)
		}
	}
	if err := os.Mkdir(filepath.Join(d.Dir, "certs"), 0o700); err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	d.DefaultCertFile, d.DefaultKeyFile = d.opts.DefaultCertFile, d.opts.DefaultKeyFile
	if d.DefaultCertFile == "" {
		d.DefaultCertFile = filepath.Join(d.Dir, "certs", "default.crt")
		d.DefaultKeyFile = filepath.Join(d.Dir, "certs", "default.key")
		if err := writeCertKey(d.DefaultCertFile, d.DefaultKeyFile, d.opts.Default); err != nil {
			return fmt.Errorf("dovecot: %w", err)
		}
	}
	return d.writeSNI(d.opts.SNI)
}

func writeCertKey(certFile, keyFile string, c Cert) error {
	// The key first: a reader that sees the new certificate must find the
	// key that matches it.
	if err := atomicfile.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		return err
	}
	return atomicfile.WriteFile(certFile, c.ChainPEM, 0o644)
}

func (d *Dovecot) writeConfig() error {
	var b strings.Builder
	fmt.Fprintf(&b, `# private test instance (internal/realmail)
protocols = imap%s
listen = %s
base_dir = %s
state_dir = %s
log_path = %s
instance_name = %s
ssl = yes
ssl_cert = <%s
ssl_key = <%s
auth_mechanisms = plain
passdb {
  driver = static
  args = password=unused-%d
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=%s
}
service imap-login {
  inet_listener imap {
    port = %d
  }
  inet_listener imaps {
    port = %d
    ssl = yes
  }
}
`, map[bool]string{true: " pop3"}[d.opts.POP3], strings.Join(d.IPs(), ", "),
		filepath.Join(d.Dir, "run"), filepath.Join(d.Dir, "state"), d.LogFile,
		filepath.Base(d.Dir), d.DefaultCertFile, d.DefaultKeyFile,
		time.Now().UnixNano(), filepath.Join(d.Dir, "home"),
		d.IMAPPort, d.IMAPSPort)
	if d.opts.POP3 {
		fmt.Fprintf(&b, `service pop3-login {
  inet_listener pop3 {
    port = %d
  }
  inet_listener pop3s {
    port = %d
    ssl = yes
  }
}
`, d.POP3Port, d.POP3SPort)
	}
	fmt.Fprintf(&b, "!include %s\n", d.sniConf)
	if d.opts.IncludeTry != "" {
		fmt.Fprintf(&b, "!include_try %s\n", d.opts.IncludeTry)
	}
	return atomicfile.WriteFile(d.ConfigFile, []byte(b.String()), 0o644)
}

// writeSNI writes the certificates to new files and the local_name blocks
// that name them.
func (d *Dovecot) writeSNI(m map[string]Cert) error {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# SNI certificates (internal/realmail)\n")
	for _, name := range names {
		d.nSNI++
		certFile := filepath.Join(d.Dir, "certs", fmt.Sprintf("sni-%d.crt", d.nSNI))
		keyFile := filepath.Join(d.Dir, "certs", fmt.Sprintf("sni-%d.key", d.nSNI))
		if err := writeCertKey(certFile, keyFile, m[name]); err != nil {
			return fmt.Errorf("dovecot: %w", err)
		}
		fmt.Fprintf(&b, "local_name %s {\n  ssl_cert = <%s\n  ssl_key = <%s\n}\n", name, certFile, keyFile)
	}
	return atomicfile.WriteFile(d.sniConf, []byte(b.String()), 0o644)
}

// IPs returns IP and the extra IPs.
func (d *Dovecot) IPs() []string { return append([]string{d.IP}, d.opts.ExtraIPs...) }

func (d *Dovecot) start(ctx context.Context) error {
	n := 2
	if d.opts.POP3 {
		n = 4
	}
	ports, err := freePorts(d.IP, n)
	if err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	d.IMAPPort, d.IMAPSPort = ports[0], ports[1]
	if d.opts.POP3 {
		d.POP3Port, d.POP3SPort = ports[2], ports[3]
	}
	if err := d.writeConfig(); err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	// The daemon keeps the output it was started with open: give it a file,
	// not a pipe that Wait would wait on.
	outFile := filepath.Join(d.Dir, "start.out")
	out, err := os.Create(outFile)
	if err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	defer out.Close()
	path, err := proc.LookPath("dovecot")
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, path, "-c", d.ConfigFile)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(outFile)
		return fmt.Errorf("dovecot -c %s: %w: %s\n%s", d.ConfigFile, err, strings.TrimSpace(string(b)), tail(d.LogFile, 10))
	}
	for _, ip := range d.IPs() {
		if err := waitListening(ip, d.Ports(), commandTimeout); err != nil {
			b, _ := os.ReadFile(outFile)
			return fmt.Errorf("dovecot: %w: %s\n%s", err, strings.TrimSpace(string(b)), tail(d.LogFile, 10))
		}
	}
	// The master binds its listeners, then forks into the background, then
	// writes its pid file: Stop needs the pid file.
	pidFile := filepath.Join(d.Dir, "run", "master.pid")
	for deadline := time.Now().Add(commandTimeout); ; {
		if pid := readPid(pidFile); pid != 0 && processAlive(pid) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dovecot: no live master in %s after %v\n%s", pidFile, commandTimeout, tail(d.LogFile, 10))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Ports returns the instance's listening ports.
func (d *Dovecot) Ports() []int {
	var ports []int
	for _, port := range []int{d.IMAPPort, d.IMAPSPort, d.POP3Port, d.POP3SPort} {
		if port != 0 {
			ports = append(ports, port)
		}
	}
	return ports
}

// SetDefault replaces the default certificate (with
// DovecotOptions.DefaultCertFile, those files) and reloads Dovecot.
func (d *Dovecot) SetDefault(ctx context.Context, c Cert) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := writeCertKey(d.DefaultCertFile, d.DefaultKeyFile, c); err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	return d.reload(ctx)
}

// UseDefaultFiles points ssl_cert and ssl_key at files something else
// maintains, such as a deploy hook, and reloads Dovecot: what an
// administrator does once when handing the certificates over to certplan.
func (d *Dovecot) UseDefaultFiles(ctx context.Context, certFile, keyFile string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.DefaultCertFile, d.DefaultKeyFile = certFile, keyFile
	if err := d.writeConfig(); err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	return d.reload(ctx)
}

// SetSNI replaces the local_name blocks and reloads Dovecot.
func (d *Dovecot) SetSNI(ctx context.Context, m map[string]Cert) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.writeSNI(m); err != nil {
		return err
	}
	return d.reload(ctx)
}

// Reload makes Dovecot re-read its configuration and certificates
// (`doveadm reload`); login processes started after it use them.
func (d *Dovecot) Reload(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reload(ctx)
}

func (d *Dovecot) reload(ctx context.Context) error {
	// doveconf first: a configuration the master cannot parse would leave
	// it running the old one, and the log would be the only trace.
	if _, err := run(ctx, "doveconf", "-c", d.ConfigFile, "-n"); err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	if _, err := run(ctx, "doveadm", "-c", d.ConfigFile, "reload"); err != nil {
		return fmt.Errorf("dovecot: %w\n%s", err, tail(d.LogFile, 10))
	}
	return nil
}

// Log returns the instance's log, for failure messages.
func (d *Dovecot) Log() string { return readLog(d.LogFile) }

// Stop stops the instance and removes its directory. It is safe to call
// more than once.
func (d *Dovecot) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil
	}
	d.stopped = true
	err := d.stopMaster(context.Background())
	if rerr := os.RemoveAll(d.Dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// stopMaster stops the instance's master (see stopDaemon).
func (d *Dovecot) stopMaster(ctx context.Context) error {
	return stopDaemon("dovecot", filepath.Join(d.Dir, "run", "master.pid"), dovecotMaster, 3*time.Second)
}

// stopDovecotDir stops a leftover instance found by sweep.
func stopDovecotDir(dir string) {
	d := &Dovecot{Dir: dir, ConfigFile: filepath.Join(dir, "dovecot.conf")}
	d.stopMaster(context.Background())
}

// IMAPAddr is IP:IMAPPort.
func (d *Dovecot) IMAPAddr() string { return net.JoinHostPort(d.IP, strconv.Itoa(d.IMAPPort)) }

// IMAPSAddr is IP:IMAPSPort.
func (d *Dovecot) IMAPSAddr() string { return net.JoinHostPort(d.IP, strconv.Itoa(d.IMAPSPort)) }
