package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certplan/certplan/detect"
	"github.com/certplan/certplan/examples/hooks"
	"github.com/certplan/certplan/store"
	"github.com/spf13/cobra"
)

// installedHooks is where the package puts the deploy hooks; init copies
// them from there, else from the binary's own copies.
var installedHooks = "/usr/share/certplan/hooks"

type initOptions struct {
	root, hostname, email, ca, stateDir string
	serverIPs                           []string
	includePrivate, agreeTOS            bool
	dryRun, force                       bool
}

func newInitCmd(g *globals) *cobra.Command {
	o := &initOptions{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Set up certplan for this server: detect its mail software, write the config, install the hooks",
		Long: `init looks at the server's own files under --root (default /) and sets
certplan up for it:

  detects   cPanel (/usr/local/cpanel, /var/cpanel/users), DirectAdmin
            (/usr/local/directadmin), Postfix (main.cf, master.cf), Exim
            (daemon_smtp_ports, local_interfaces) and Dovecot (protocols,
            listen): the domain sources, the ports they listen on, the hooks
  IPs       --server-ip, else the public addresses of the host's interfaces
            (loopback and private ranges left out unless --include-private);
            a host behind NAT, with private addresses only, takes the A and
            AAAA records of its name (--hostname, default the host name)
            through --resolver, and says so. With a --root other than /,
            only --server-ip: the interfaces are not that root's
  writes    <root>/etc/certplan/certplan.yaml (0600; "certplan config check"
            accepts it) and the hooks in <root>/etc/certplan/hooks/ (from
            /usr/share/certplan/hooks when the package is installed, else
            certplan's own copies)
  prints    what to run next: the first issue, the one-time server changes
            (certplan emit) and the cron line

It never replaces an existing config without --force, and --dry-run prints
the config it would write and writes nothing. The contact address comes from
--email, or is asked for on a terminal.

After the first "certplan --config ... issue", renew needs no flags: issue
keeps the settings it applied in the state directory.

Exit codes:
  0  written (or, with --dry-run, shown)
  1  could not write, or a config exists already (--force)
  2  bad flags, or no --email and no terminal to ask on`,
		Example: `  # On the server, as root
  certplan init --email postmaster@example.net --agree-tos

  # See what it would write
  certplan init --dry-run --email postmaster@example.net`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, g)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.root, "root", "/", "the server's files are under this `dir` (a copy of a server's files, for tests)")
	fs.StringArrayVar(&o.serverIPs, "server-ip", nil, "an `IP` address of this server (repeatable; default: the interfaces' public addresses)")
	fs.BoolVar(&o.includePrivate, "include-private", false, "keep private addresses (RFC 1918, RFC 6598, RFC 4193) of the interfaces")
	fs.StringVar(&o.hostname, "hostname", "", "the server's own `name`, looked up behind NAT (default: the host name)")
	fs.StringVar(&o.email, "email", "", "account contact `address` (asked for on a terminal when not given)")
	fs.BoolVar(&o.agreeTOS, "agree-tos", false, "agree to the CA's terms of service in the config (needed to register an account)")
	fs.StringVar(&o.ca, "ca", "letsencrypt", "ACME CA: letsencrypt, letsencrypt-staging, zerossl, google, google-staging, or a directory `URL`")
	fs.StringVar(&o.stateDir, "state-dir", "", "state `dir` for the config (default "+store.DefaultDir+" under --root)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the config and the hooks it would write, and write nothing")
	fs.BoolVar(&o.force, "force", false, "replace an existing config and hooks")
	return cmd
}

// initPlan is what init found and will write.
type initPlan struct {
	srv      *detect.Server
	ips      []netip.Addr
	ipNote   string
	conf     string // the config file's path
	hooksDir string
	hooks    []string // hook file names
}

func (o *initOptions) run(cmd *cobra.Command, g *globals) error {
	root, err := filepath.Abs(o.root)
	if err != nil {
		return usageError("--root %q: %v", o.root, err)
	}
	o.root = root
	p := &initPlan{srv: detect.Detect(root), conf: o.under("etc/certplan/certplan.yaml"), hooksDir: o.under("etc/certplan/hooks")}
	p.hooks = p.srv.Hooks
	if _, err := os.Stat(p.conf); err == nil && !o.force {
		return withHint(fmt.Errorf("%s exists already: not replaced", p.conf),
			"edit it (\"certplan config check "+p.conf+"\" checks it), or run init again with --force to replace it and the hooks")
	}
	if p.ips, p.ipNote, err = o.serverAddrs(cmd.Context(), g); err != nil {
		return err
	}
	if err := o.askEmail(g); err != nil {
		return err
	}
	conf := o.config(cmd.Root(), p, g.Now())
	if o.dryRun {
		fmt.Fprintf(g.Stdout, "--- %s (not written: --dry-run)\n%s", p.conf, conf)
	} else if err := o.write(p, conf); err != nil {
		return err
	}
	o.summary(g.Stdout, p)
	return nil
}

// under is rel under --root.
func (o *initOptions) under(rel string) string { return filepath.Join(o.root, filepath.FromSlash(rel)) }

// serverAddrs are --server-ip, or the host's public addresses, or, behind
// NAT, its name's; note says where they came from.
func (o *initOptions) serverAddrs(ctx context.Context, g *globals) ([]netip.Addr, string, error) {
	var ips []netip.Addr
	for _, s := range o.serverIPs {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, "", usageError("--server-ip %q: not an IP address", s)
		}
		ips = append(ips, ip.Unmap())
	}
	if len(ips) > 0 {
		return ips, "from --server-ip", nil
	}
	if o.root != "/" {
		return nil, "none: with --root, give them with --server-ip", nil
	}
	all, err := detect.InterfaceAddrs()
	if err != nil {
		return nil, "", fmt.Errorf("reading the network interfaces: %w", err)
	}
	if ips = detect.Public(all, o.includePrivate); len(ips) > 0 {
		return ips, "the interfaces' public addresses", nil
	}
	if len(detect.Public(all, true)) == 0 {
		return nil, "none: the interfaces have no address but loopback; give --server-ip", nil
	}
	return o.natAddrs(ctx, g)
}

// natAddrs are the A and AAAA records of the host's name, for a host whose
// interfaces hold private addresses only: the addresses clients reach it at.
func (o *initOptions) natAddrs(ctx context.Context, g *globals) ([]netip.Addr, string, error) {
	name := o.hostname
	if name == "" {
		var err error
		if name, err = os.Hostname(); err != nil {
			return nil, "", fmt.Errorf("host name: %w", err)
		}
	}
	r := net.DefaultResolver
	if len(g.Resolvers) > 0 {
		server := g.Resolvers[0]
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}}
	}
	ctx, cancel := context.WithTimeout(ctx, g.Timeout)
	defer cancel()
	found, err := r.LookupNetIP(ctx, "ip", strings.TrimSuffix(name, ".")+".")
	if err != nil {
		return nil, fmt.Sprintf("none: the interfaces hold private addresses only (NAT), and %s did not resolve (%v); give --server-ip", name, err), nil
	}
	ips := detect.Public(found, o.includePrivate)
	return ips, fmt.Sprintf("the interfaces hold private addresses only (NAT): the A/AAAA records of %s", name), nil
}

// askEmail asks for the contact address on a terminal when --email is
// not given; without a terminal, --email is required (but for --dry-run).
func (o *initOptions) askEmail(g *globals) error {
	if o.email != "" {
		return checkEmail(o.email)
	}
	f, ok := g.Stdin.(*os.File)
	if !ok || !isTerminal(f) {
		if o.dryRun {
			return nil
		}
		return withCode(ExitUsage, errors.New("no --email, and no terminal to ask for it on"),
			"give the CA's contact address for this server's account with --email ADDRESS")
	}
	fmt.Fprint(g.Stderr, "Contact address for the CA (expiry notices): ")
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the address: %w", err)
	}
	o.email = strings.TrimSpace(line)
	if o.email == "" {
		return usageError("no contact address given")
	}
	return checkEmail(o.email)
}

// isTerminal reports whether f is a character device, as a terminal is
// (so is /dev/null: it reads as an empty address, a usage error).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func checkEmail(s string) error {
	if at := strings.LastIndex(s, "@"); at < 1 || at == len(s)-1 || strings.ContainsAny(s, " \t,<>") {
		return usageError("--email %q: want an address such as postmaster@example.net", s)
	}
	return nil
}

// config is the config file's text: every key a long flag name of issue
// and renew, so that "certplan config check" accepts it.
func (o *initOptions) config(root *cobra.Command, p *initPlan, now time.Time) string {
	issue, _, _ := root.Find([]string{"issue"})
	line := func(key string, vals ...string) string {
		return yamlLine(key, vals, issue.Flags().Lookup(key))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# certplan configuration, written by \"certplan init\" on %s.\n", now.UTC().Format("2006-01-02"))
	b.WriteString("# Keys are the long flag names of \"certplan <command> --help\"; check the file\n")
	fmt.Fprintf(&b, "# with \"certplan config check %s\".\n#\n", p.conf)
	fmt.Fprintf(&b, "# Found under %s: %s.\n", o.root, describe(p.srv))
	for _, n := range p.srv.Notes {
		fmt.Fprintf(&b, "# Note: %s\n", n)
	}
	b.WriteString("\n# The hosted domains: this server's own lists.\n")
	if len(p.srv.Sources) > 0 {
		b.WriteString(line("source", p.srv.Sources...))
	} else {
		b.WriteString("# (no domain source found: name a file of domains, one a line)\n#domains: /etc/certplan/domains.txt\n")
	}
	if o.root != "/" {
		b.WriteString(line("root", o.root))
	}
	fmt.Fprintf(&b, "\n# This server's addresses (%s).\n", p.ipNote)
	if len(p.ips) > 0 {
		b.WriteString(line("server-ip", addrStrings(p.ips)...))
	} else {
		b.WriteString("#server-ip: []\n")
	}
	o.serverLines(&b, root, p, line)
	b.WriteString("\n# The CA and the account.\n")
	b.WriteString(line("ca", o.ca))
	if o.email != "" {
		b.WriteString(line("email", o.email))
	} else {
		b.WriteString("#email: postmaster@example.net\n")
	}
	if o.agreeTOS {
		b.WriteString(line("agree-tos", "true"))
	} else {
		b.WriteString("# agree to the CA's terms of service (read them first):\n#agree-tos: true\n")
	}
	b.WriteString("\n# Certificates, keys and the applied plan.\n")
	b.WriteString(line("state-dir", o.stateDirOr()))
	return b.String()
}

// serverLines are the keys about the mail servers: ports, hooks, and
// --default-cert on cPanel.
func (o *initOptions) serverLines(b *strings.Builder, root *cobra.Command, p *initPlan, line func(string, ...string) string) {
	if len(p.srv.Ports) > 0 {
		b.WriteString("\n# What the mail servers listen on: verification and check probe these.\n")
		b.WriteString(line("ports", p.srv.Ports...))
	}
	if len(p.hooks) > 0 {
		b.WriteString("\n# Deploy hooks, run for each new, renewed or retired certificate (each\n# documents its settings at its top).\n")
		var paths []string
		for _, h := range p.hooks {
			paths = append(paths, filepath.Join(p.hooksDir, h))
		}
		b.WriteString(line("deploy-hook", paths...))
	}
	if p.srv.DefaultCert == "" {
		return
	}
	b.WriteString("\n# cPanel serves one certificate for every IP of a service.\n")
	if allFlagNames(root)["default-cert"] {
		b.WriteString("default-cert: " + p.srv.DefaultCert + "\n")
	} else {
		fmt.Fprintf(b, "# (this certplan has no --default-cert yet; when it has: default-cert: %s)\n", p.srv.DefaultCert)
	}
}

func (o *initOptions) stateDirOr() string {
	if o.stateDir != "" {
		return o.stateDir
	}
	return o.under(strings.TrimPrefix(store.DefaultDir, "/"))
}

// describe says in words what Detect found.
func describe(s *detect.Server) string {
	if len(s.Software) == 0 {
		return "no mail software certplan knows (cPanel, DirectAdmin, Postfix, Exim, Dovecot)"
	}
	var parts []string
	for _, sw := range s.Software {
		if l := s.Listen[sw]; len(l) > 0 {
			sw += " (listening on " + strings.Join(l, ", ") + ")"
		}
		parts = append(parts, sw)
	}
	return strings.Join(parts, ", ")
}

func addrStrings(ips []netip.Addr) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// write writes the config (0600: it holds the contact address, and may
// get EAB credentials) and the hooks (0755), each atomically.
func (o *initOptions) write(p *initPlan, conf string) error {
	if err := os.MkdirAll(p.hooksDir, 0o755); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if err := writeFileAtomic(p.conf, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	for _, h := range p.hooks {
		data, err := hookText(h)
		if err != nil {
			return fmt.Errorf("init: hook %s: %w", h, err)
		}
		dst := filepath.Join(p.hooksDir, h)
		if old, err := os.ReadFile(dst); err == nil && !bytes.Equal(old, data) && !o.force {
			continue // the admin's edits stay; --force replaces them
		}
		if err := writeFileAtomic(dst, data, 0o755); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	return nil
}

// hookText is a hook from the installed package, else the embedded copy.
func hookText(name string) ([]byte, error) {
	if b, err := os.ReadFile(filepath.Join(installedHooks, name)); err == nil {
		return b, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return hooks.FS.ReadFile(name)
}

// summary says what init did and what to run next.
func (o *initOptions) summary(w io.Writer, p *initPlan) {
	verb := "wrote"
	if o.dryRun {
		verb = "would write"
	}
	if o.dryRun {
		fmt.Fprintln(w) // after the config
	}
	fmt.Fprintf(w, "Found: %s.\n", describe(p.srv))
	fmt.Fprintf(w, "Server IPs: %s (%s).\n", orNone(addrStrings(p.ips)), p.ipNote)
	fmt.Fprintf(w, "certplan init %s %s", verb, p.conf)
	if len(p.hooks) > 0 {
		fmt.Fprintf(w, " and %s in %s", strings.Join(p.hooks, ", "), p.hooksDir)
	}
	fmt.Fprintf(w, ".\n\nNext:\n")
	conf := "--config " + shellWord(p.conf)
	fmt.Fprintf(w, "  1. See what would be issued:  certplan %s issue --dry-run\n", conf)
	fmt.Fprintf(w, "  2. Issue and deploy:          certplan %s issue\n", conf)
	if emits := emitCommands(p.srv); len(emits) > 0 {
		fmt.Fprintf(w, "  3. Once, after the first issue, the server configuration that serves the\n     certificates through stable paths (see each command's output):\n")
		for _, e := range emits {
			fmt.Fprintf(w, "       certplan %s %s\n", conf, e)
		}
	}
	fmt.Fprintf(w, "  Then renew from cron, hourly (issue remembers its settings in the state dir):\n")
	fmt.Fprintf(w, "       17 * * * *  root  certplan %s renew\n", conf)
	fmt.Fprintf(w, "     or the systemd timer: systemctl enable --now certplan-renew.timer\n")
}

// emitCommands are the "certplan emit" commands for the servers found; on
// cPanel the hook installs the service certificates instead.
func emitCommands(s *detect.Server) []string {
	if s.Has(detect.CPanel) {
		return nil
	}
	var out []string
	for _, sw := range []string{detect.Postfix, detect.Dovecot, detect.Exim} {
		if s.Has(sw) {
			out = append(out, "emit "+sw)
		}
	}
	return out
}

func orNone(v []string) string {
	if len(v) == 0 {
		return "none"
	}
	return strings.Join(v, ", ")
}

func shellWord(s string) string {
	if strings.ContainsAny(s, " \t'\"$\\") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
