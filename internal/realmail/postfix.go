package realmail

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/atomicfile"
)

// PostfixOptions configures a private Postfix instance.
type PostfixOptions struct {
	// IP is the loopback address to listen on; DefaultIP when empty.
	IP string
	// Submission adds a submission service (STARTTLS required before
	// anything else, smtpd_tls_security_level = encrypt) on its own port.
	Submission bool
	// SMTPS adds a service with implicit TLS (smtpd_tls_wrappermode).
	SMTPS bool

	// Default is the certificate served without SNI (and for an SNI name
	// with no entry in the map). Ignored when DefaultChainFile is set.
	Default Cert
	// DefaultChainFile, when set, is used as smtpd_tls_chain_files as is:
	// a file (key, then chain) that something else maintains, such as a
	// deploy hook under test.
	DefaultChainFile string

	// SNI maps a name (or ".parent" for every name under parent) to the
	// certificate served when a client sends it. Ignored when SNIMaps is set.
	SNI map[string]Cert
	// SNIMapType is the table type of the instance's own SNI map:
	// "texthash" (the default: read at process start, no postmap) or an
	// indexed type ("hash", "btree"; "lmdb" and "cdb" with Debian's
	// postfix-lmdb, postfix-cdb), built with `postmap -F`.
	SNIMapType string
	// SNIMaps, when set, is used as tls_server_sni_maps as is
	// ("hash:/path/sni"), for a map that something else maintains.
	SNIMaps string

	// Main holds extra main.cf parameters, applied after the harness's own.
	Main map[string]string
}

// Postfix is a running private Postfix instance.
type Postfix struct {
	IP             string
	SMTPPort       int // SMTP with STARTTLS offered (smtpd_tls_security_level = may)
	SubmissionPort int // 0 unless PostfixOptions.Submission
	SMTPSPort      int // 0 unless PostfixOptions.SMTPS
	Dir            string
	ConfigDir      string // main.cf and master.cf: `postfix -c ConfigDir`
	LogFile        string // maillog_file
	// DefaultChainFile is smtpd_tls_chain_files, SNIMapFile the source of
	// the instance's own SNI map ("" when PostfixOptions.SNIMaps is set).
	DefaultChainFile string
	SNIMapFile       string

	opts    PostfixOptions
	mu      sync.Mutex
	stopped bool
	nSNI    int
}

// StartPostfix starts a private Postfix instance for t and stops it when t
// ends. It skips t when Postfix cannot run here (failing it instead when
// CERTPLAN_REQUIRE_INTEGRATION=1).
func StartPostfix(t testing.TB, opts PostfixOptions) *Postfix {
	t.Helper()
	RequirePostfix(t)
	p, err := NewPostfix(context.Background(), opts)
	if err != nil {
		t.Fatalf("start postfix: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop postfix: %v", err)
		}
	})
	return p
}

// NewPostfix starts a private Postfix instance. The caller must call Stop.
func NewPostfix(ctx context.Context, opts PostfixOptions) (*Postfix, error) {
	if err := PostfixAvailable(); err != nil {
		return nil, err
	}
	if opts.IP == "" {
		opts.IP = DefaultIP
	}
	if ip := net.ParseIP(opts.IP); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return nil, fmt.Errorf("postfix: %q is not an IPv4 loopback address", opts.IP)
	}
	if opts.SNIMapType == "" {
		opts.SNIMapType = "texthash"
	}
	if opts.DefaultChainFile == "" && opts.Default.Leaf == nil {
		return nil, fmt.Errorf("postfix: no default certificate")
	}
	sweep()
	dir, err := newInstanceDir("postfix")
	if err != nil {
		return nil, fmt.Errorf("postfix: %w", err)
	}
	p := &Postfix{
		IP:        opts.IP,
		Dir:       dir,
		ConfigDir: filepath.Join(dir, "etc"),
		LogFile:   filepath.Join(dir, "maillog"),
		opts:      opts,
	}
	if err := p.setup(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	// A port found free can be taken before the master binds it: try again
	// with new ports.
	for attempt := 1; ; attempt++ {
		err = p.start(ctx)
		if err == nil {
			return p, nil
		}
		if attempt == 3 || !strings.Contains(err.Error()+tail(p.LogFile, 20), "in use") {
			p.Stop()
			return nil, err
		}
		p.stopMaster(ctx)
	}
}

func (p *Postfix) setup(ctx context.Context) error {
	for _, d := range []string{"etc", "certs"} {
		if err := os.Mkdir(filepath.Join(p.Dir, d), 0o755); err != nil {
			return fmt.Errorf("postfix: %w", err)
		}
	}
	if err := makeQueue(p.Dir); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	// Private keys: readable by root only; smtpd loads them before it drops
	// privileges.
	if err := os.Chmod(filepath.Join(p.Dir, "certs"), 0o700); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}

	p.DefaultChainFile = p.opts.DefaultChainFile
	if p.DefaultChainFile == "" {
		p.DefaultChainFile = filepath.Join(p.Dir, "certs", "default.pem")
		if err := atomicfile.WriteFile(p.DefaultChainFile, p.opts.Default.CombinedPEM(), 0o600); err != nil {
			return fmt.Errorf("postfix: %w", err)
		}
	}
	sniMaps := p.opts.SNIMaps
	if sniMaps == "" {
		p.SNIMapFile = filepath.Join(p.ConfigDir, "sni")
		sniMaps = p.opts.SNIMapType + ":" + p.SNIMapFile
	}
	main := map[string]string{
		"compatibility_level":      "3.6",
		"queue_directory":          filepath.Join(p.Dir, "queue"),
		"data_directory":           filepath.Join(p.Dir, "data"),
		"inet_interfaces":          "127.0.0.1", // see the package doc: the IP is in master.cf
		"inet_protocols":           "ipv4",
		"myhostname":               "server.main-domain.test",
		"mydestination":            "",
		"relayhost":                "",
		"smtpd_banner":             "$myhostname ESMTP certplan-test",
		"smtpd_tls_chain_files":    p.DefaultChainFile,
		"smtpd_tls_security_level": "may",
		"tls_server_sni_maps":      sniMaps,
		"maillog_file":             p.LogFile,
		"maillog_file_prefixes":    p.Dir,
		"biff":                     "no",
	}
	for k, v := range p.opts.Main {
		main[k] = v
	}
	keys := make([]string, 0, len(main))
	for k := range main {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# private test instance (internal/realmail)\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, main[k])
	}
	if err := writeConfigFile(filepath.Join(p.ConfigDir, "main.cf"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	if p.SNIMapFile != "" {
		// After main.cf: postmap reads it.
		return p.writeSNI(ctx, p.opts.SNI)
	}
	return nil
}

// queueDirs are the queue and data directories of Debian's
// /etc/postfix/postfix-files, with their owners and modes ("postfix" is
// mail_owner, "postdrop" setgid_group).
var queueDirs = []struct {
	path, owner, group string
	mode               os.FileMode
}{
	{"queue", "root", "", 0o755},
	{"queue/active", "postfix", "", 0o700},
	{"queue/bounce", "postfix", "", 0o700},
	{"queue/corrupt", "postfix", "", 0o700},
	{"queue/defer", "postfix", "", 0o700},
	{"queue/deferred", "postfix", "", 0o700},
	{"queue/flush", "postfix", "", 0o700},
	{"queue/hold", "postfix", "", 0o700},
	{"queue/incoming", "postfix", "", 0o700},
	{"queue/private", "postfix", "", 0o700},
	{"queue/maildrop", "postfix", "postdrop", 0o730},
	{"queue/public", "postfix", "postdrop", 0o710},
	{"queue/pid", "root", "", 0o755},
	{"queue/saved", "postfix", "", 0o700},
	{"queue/trace", "postfix", "", 0o700},
	{"data", "postfix", "", 0o700},
}

// makeQueue creates the queue and data directories the way `postfix
// post-install create-missing` would, which `postfix start` runs through
// `postfix check` and which costs about three seconds (hundreds of postconf
// and chown calls); with the directories in place a "quick-start" file
// lets `postfix start` skip those checks.
func makeQueue(dir string) error {
	ids := map[string]int{}
	for _, name := range []string{"root", "postfix"} {
		u, err := user.Lookup(name)
		if err != nil {
			return err
		}
		ids["u:"+name], _ = strconv.Atoi(u.Uid)
	}
	g, err := user.LookupGroup("postdrop")
	if err != nil {
		return err
	}
	ids["g:postdrop"], _ = strconv.Atoi(g.Gid)
	for _, d := range queueDirs {
		path := filepath.Join(dir, d.path)
		if err := os.Mkdir(path, d.mode); err != nil {
			return err
		}
		gid := -1
		if d.group != "" {
			gid = ids["g:"+d.group]
		}
		if err := os.Chown(path, ids["u:"+d.owner], gid); err != nil {
			return err
		}
		// Mkdir applies the umask; chown may clear set-id bits.
		if err := os.Chmod(path, d.mode); err != nil {
			return err
		}
	}
	return nil
}

// masterCF is Debian's master.cf reduced to what an SMTP server needs, with
// chroot off (a chroot under a temporary directory would need copies of
// /etc files) and the postlog service that maillog_file requires. The
// listeners are added per instance.
const masterCF = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

func (p *Postfix) start(ctx context.Context) error {
	n := 1
	if p.opts.Submission {
		n++
	}
	if p.opts.SMTPS {
		n++
	}
	ports, err := freePorts(p.IP, n)
	if err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	var b strings.Builder
	b.WriteString("# private test instance (internal/realmail)\n")
	p.SMTPPort, ports = ports[0], ports[1:]
	fmt.Fprintf(&b, "%s:%d inet n - n - - smtpd\n", p.IP, p.SMTPPort)
	if p.opts.Submission {
		p.SubmissionPort, ports = ports[0], ports[1:]
		fmt.Fprintf(&b, "%s:%d inet n - n - - smtpd\n  -o syslog_name=postfix/submission\n  -o smtpd_tls_security_level=encrypt\n", p.IP, p.SubmissionPort)
	}
	if p.opts.SMTPS {
		p.SMTPSPort = ports[0]
		fmt.Fprintf(&b, "%s:%d inet n - n - - smtpd\n  -o syslog_name=postfix/smtps\n  -o smtpd_tls_wrappermode=yes\n", p.IP, p.SMTPSPort)
	}
	b.WriteString(masterCF)
	if err := writeConfigFile(filepath.Join(p.ConfigDir, "master.cf"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	if err := os.WriteFile(filepath.Join(p.Dir, "queue", "quick-start"), nil, 0o644); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	if _, err := runTTY(ctx, "postfix", "-c", p.ConfigDir, "start"); err != nil {
		return fmt.Errorf("postfix: %w\n%s", err, tail(p.LogFile, 10))
	}
	if err := waitListening(p.IP, p.Ports(), commandTimeout); err != nil {
		return fmt.Errorf("postfix: %w\n%s", err, tail(p.LogFile, 10))
	}
	return nil
}

// writeConfigFile writes a file that Postfix reads as a configuration or
// text table, atomically, and backdates it.
func writeConfigFile(path string, data []byte, perm os.FileMode) error {
	if err := atomicfile.WriteFile(path, data, perm); err != nil {
		return err
	}
	return backdate(path)
}

// backdate sets a file's modification time a minute into the past. Postfix
// will not read a configuration file or text table modified within the last
// second (it might still be being written): it sleeps and reads it again,
// about two seconds per command for a file written just before.
func backdate(path string) error {
	old := time.Now().Add(-time.Minute)
	return os.Chtimes(path, old, old)
}

// Ports returns the instance's listening ports.
func (p *Postfix) Ports() []int {
	var ports []int
	for _, port := range []int{p.SMTPPort, p.SubmissionPort, p.SMTPSPort} {
		if port != 0 {
			ports = append(ports, port)
		}
	}
	return ports
}

// SMTPAddr is IP:SMTPPort.
func (p *Postfix) SMTPAddr() string {
	return net.JoinHostPort(p.IP, strconv.Itoa(p.SMTPPort))
}

// SetDefault replaces the default certificate and reloads Postfix. With
// PostfixOptions.DefaultChainFile it overwrites that file.
func (p *Postfix) SetDefault(ctx context.Context, c Cert) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := atomicfile.WriteFile(p.DefaultChainFile, c.CombinedPEM(), 0o600); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	return p.reload(ctx)
}

// SetSNI replaces the instance's own SNI map and reloads Postfix.
func (p *Postfix) SetSNI(ctx context.Context, m map[string]Cert) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.SNIMapFile == "" {
		return fmt.Errorf("postfix: SetSNI: the SNI map is %q, maintained elsewhere", p.opts.SNIMaps)
	}
	if err := p.writeSNI(ctx, m); err != nil {
		return err
	}
	return p.reload(ctx)
}

// writeSNI writes each chain to its own file (new names every time, so a
// process still reading the old map never sees a new file's contents under
// an old name), then the map source, atomically, then the indexed table.
func (p *Postfix) writeSNI(ctx context.Context, m map[string]Cert) error {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		p.nSNI++
		file := filepath.Join(p.Dir, "certs", fmt.Sprintf("sni-%d.pem", p.nSNI))
		if err := atomicfile.WriteFile(file, m[name].CombinedPEM(), 0o600); err != nil {
			return fmt.Errorf("postfix: %w", err)
		}
		fmt.Fprintf(&b, "%s %s\n", name, file)
	}
	if err := writeConfigFile(p.SNIMapFile, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	switch p.opts.SNIMapType {
	case "texthash", "inline", "static", "regexp", "pcre":
		return nil
	}
	// -F: the table stores the files' contents (base64), not their names.
	if _, err := run(ctx, "postmap", "-c", p.ConfigDir, "-F", p.opts.SNIMapType+":"+p.SNIMapFile); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	// The table holds private keys.
	matches, _ := filepath.Glob(p.SNIMapFile + ".*")
	for _, f := range matches {
		os.Chmod(f, 0o600)
	}
	return nil
}

// SetServices replaces the instance's own smtpd listeners in master.cf
// with services (master.cf lines, such as "certplan emit postfix --part
// master" prints; they may name other loopback IPs) and reloads Postfix.
// The instance's ports stay those of its listeners.
func (p *Postfix) SetServices(ctx context.Context, services string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	conf := "# private test instance (internal/realmail)\n" + services + masterCF
	if err := writeConfigFile(filepath.Join(p.ConfigDir, "master.cf"), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	return p.reload(ctx)
}

// Postconf sets main.cf parameters (`postconf -e`); call Reload after.
func (p *Postfix) Postconf(ctx context.Context, params map[string]string) error {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{"-c", p.ConfigDir, "-e"}
	for _, k := range keys {
		args = append(args, k+" = "+params[k])
	}
	if _, err := run(ctx, "postconf", args...); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	return backdate(filepath.Join(p.ConfigDir, "main.cf"))
}

// Reload makes Postfix re-read its configuration (`postfix reload`): new
// smtpd processes load the certificates and tables afresh; old ones finish
// their session and exit.
func (p *Postfix) Reload(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reload(ctx)
}

func (p *Postfix) reload(ctx context.Context) error {
	if _, err := runTTY(ctx, "postfix", "-c", p.ConfigDir, "reload"); err != nil {
		return fmt.Errorf("postfix: %w\n%s", err, tail(p.LogFile, 10))
	}
	return nil
}

// Log returns the instance's maillog, for failure messages.
func (p *Postfix) Log() string { return readLog(p.LogFile) }

// Stop stops the instance and removes its directory. It is safe to call
// more than once.
func (p *Postfix) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	p.stopped = true
	err := p.stopMaster(context.Background())
	if rerr := os.RemoveAll(p.Dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// stopMaster stops the instance's master (see stopDaemon).
func (p *Postfix) stopMaster(ctx context.Context) error {
	return stopDaemon("postfix", filepath.Join(p.Dir, "queue", "pid", "master.pid"), postfixMaster, 5*time.Second)
}

// postfixMaster is the master daemon's executable on Debian.
const postfixMaster = "/usr/lib/postfix/sbin/master"

// stopPostfixDir stops a leftover instance found by sweep.
func stopPostfixDir(dir string) {
	p := &Postfix{Dir: dir, ConfigDir: filepath.Join(dir, "etc")}
	p.stopMaster(context.Background())
}
