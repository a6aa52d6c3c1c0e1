// Package detect finds out what a mail server runs from its own files under
// a root directory (/ on the server, a fixture tree in tests): the control
// panel (cPanel, DirectAdmin), the MTA (Postfix, Exim) and Dovecot, with the
// ports and addresses their configuration listens on; and which of the
// host's addresses are public. It reads files only, runs no program and
// sends nothing; "certplan init" turns its [Server] into a config file.
//
//	detect.go   Detect, Server: which software, which domain sources, ports, hooks
//	mta.go      Postfix (main.cf, master.cf), Exim (daemon_smtp_ports, local_interfaces)
//	dovecot.go  Dovecot (protocols, listen)
//	ips.go      PublicIPs: interface addresses without loopback and private ranges
package detect

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Software names, as [Server.Software] lists them.
const (
	CPanel      = "cpanel"
	DirectAdmin = "directadmin"
	Postfix     = "postfix"
	Exim        = "exim"
	Dovecot     = "dovecot"
)

// Server is what Detect found.
type Server struct {
	// Software found, in the order of the constants above.
	Software []string
	// Sources are the --source kinds that list the hosted domains.
	Sources []string
	// Ports are what the servers listen on, in --ports form: 25, 587, 465,
	// 993, 995, 143, 110, or PROTO:PORT for another port, sorted.
	Ports []string
	// Listen are the addresses the configuration names ("*" is all), by
	// software, as written.
	Listen map[string][]string
	// Hooks are the deploy hooks (examples/hooks names) for the software.
	Hooks []string
	// DefaultCert is "shared" on cPanel (one service certificate for
	// every IP), else "".
	DefaultCert string
	// Notes say what was inferred, or could not be.
	Notes []string
}

// Has reports whether s runs the software name.
func (s *Server) Has(name string) bool { return slices.Contains(s.Software, name) }

// Detect looks at the files under root.
func Detect(root string) *Server {
	s := &Server{Listen: map[string][]string{}}
	ports := map[string]bool{}
	switch {
	case exists(root, "usr/local/cpanel") || exists(root, "var/cpanel/users"):
		s.Software = append(s.Software, CPanel)
		s.Sources = append(s.Sources, "cpanel")
		s.DefaultCert = "shared"
		// cPanel's Exim and Dovecot serve these, with its own TLS setup.
		for _, p := range []string{"25", "465", "587", "993", "995", "143", "110"} {
			ports[p] = true
		}
		s.Hooks = append(s.Hooks, "cpanel.sh")
	case exists(root, "usr/local/directadmin"):
		s.Software = append(s.Software, DirectAdmin)
		s.Sources = append(s.Sources, "directadmin")
	}
	panel := len(s.Software) > 0
	if exists(root, "etc/postfix/main.cf") {
		s.Software = append(s.Software, Postfix)
		if !panel {
			s.Sources = append(s.Sources, "postfix")
		}
		s.Listen[Postfix] = postfix(root, ports)
		s.Hooks = append(s.Hooks, "postfix.sh")
	}
	if f := eximConfig(root); f != "" && !s.Has(CPanel) {
		s.Software = append(s.Software, Exim)
		if !panel && exists(root, "etc/exim4/update-exim4.conf.conf") {
			s.Sources = append(s.Sources, "exim")
		} else if !panel {
			s.Notes = append(s.Notes, "exim: no /etc/exim4/update-exim4.conf.conf to list the domains from: give them with --domains FILE")
		}
		s.Listen[Exim] = exim(root, f, ports)
		s.Hooks = append(s.Hooks, "exim.sh")
	}
	if exists(root, "etc/dovecot") && !s.Has(CPanel) {
		s.Software = append(s.Software, Dovecot)
		s.Listen[Dovecot] = dovecot(root, ports)
		s.Hooks = append(s.Hooks, "dovecot.sh")
	}
	s.Ports = sortPorts(ports)
	for sw, l := range s.Listen {
		s.Listen[sw] = uniq(l)
	}
	return s
}

// uniq keeps the first of each string, in order.
func uniq(l []string) []string {
	var out []string
	for _, s := range l {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// exists reports whether rel exists under root.
func exists(root, rel string) bool {
	_, err := os.Stat(filepath.Join(root, rel))
	return err == nil
}

// wellKnown are the ports --ports takes as plain numbers.
var wellKnown = []string{"25", "587", "465", "993", "143", "110", "995"}

// sortPorts lists the well-known ports first, in --ports' order, then the
// others as given.
func sortPorts(ports map[string]bool) []string {
	var out []string
	for _, p := range wellKnown {
		if ports[p] {
			out = append(out, p)
		}
	}
	var other []string
	for p := range ports {
		if !slices.Contains(wellKnown, p) {
			other = append(other, p)
		}
	}
	slices.Sort(other)
	return append(out, other...)
}

// smtpPort is the --ports form of an SMTP port number: 465 is SMTPS, a
// port other than 25, 587 and 465 is "smtp:PORT" (STARTTLS).
func smtpPort(p string) string {
	p = strings.TrimSpace(p)
	if p == "25" || p == "587" || p == "465" {
		return p
	}
	return "smtp:" + p
}
