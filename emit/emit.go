// Package emit prints the mail server configuration that serves a plan
// through the store's stable serving paths (the live tree, see package
// store: <live>/default-<ip>/ and <live>/sni/<name>/), and compares it
// with a running server's configuration.
//
// The configuration names no certificate ID: a plan that changes IDs, or
// a renewal, switches the files under the same paths, so it is written
// once and changes only when the plan's IPs or names do.
//
//   - Postfix ([RenderPostfix]): smtpd_tls_chain_files, in main.cf when
//     every IP has the same default certificate, else per listener in a
//     master.cf service per IP and port; tls_server_sni_maps, a texthash
//     table of every planned name (a wildcard *.d as ".d", which Postfix
//     tries for every name under d).
//   - Dovecot ([RenderDovecot]): a `local <ip>` block per IP with its
//     default, and the local_name blocks of the SNI names served on that
//     IP nested inside (Dovecot 2.3 rejects local and local_name side by
//     side); ssl_cert/ssl_key for 2.3, ssl_server_cert_file and
//     ssl_server_key_file for 2.4.
//   - Exim ([RenderExim]): tls_certificate as an expansion on $tls_in_sni
//     and $received_ip_address, evaluated at each TLS start, naming
//     combined.pem (key, then chain), with tls_privatekey unset: one file
//     opened once, so no connection sees a new certificate with an old key.
//
// The Check functions run postconf, doveconf and exim -bP and return what
// differs ([Diff]). Flags and output are internal/cli's (certplan emit).
package emit

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
)

// Options are what the rendering needs besides the plan.
type Options struct {
	// LiveDir is the live tree (store.LiveDirFor(state dir) by default).
	LiveDir string
	// Ports are the Postfix listeners of a per-IP master.cf (default
	// DefaultPorts).
	Ports Ports
	// SNIMapFile is the Postfix SNI table (default DefaultSNIMapFile).
	SNIMapFile string
	// DovecotVersion is "2.3" or "2.4" (default "2.3"); any 2.4.x or later
	// gets 2.4's setting names.
	DovecotVersion string
}

// Ports are the SMTP, submission and SMTPS ports of Postfix's per-IP
// services.
type Ports struct{ SMTP, Submission, SMTPS int }

// DefaultPorts are 25, 587 and 465 (RFC 5321, RFC 6409, RFC 8314).
var DefaultPorts = Ports{SMTP: 25, Submission: 587, SMTPS: 465}

// DefaultSNIMapFile is where the Postfix SNI table goes by default.
const DefaultSNIMapFile = "/etc/postfix/certplan-sni"

func (o Options) withDefaults() Options {
	if o.Ports == (Ports{}) {
		o.Ports = DefaultPorts
	}
	if o.SNIMapFile == "" {
		o.SNIMapFile = DefaultSNIMapFile
	}
	if o.DovecotVersion == "" {
		o.DovecotVersion = "2.3"
	}
	return o
}

// serving is a plan reduced to what a server configuration names.
type serving struct {
	live string
	// defaults: each IP's default certificate, by IP (sorted in ips).
	ips      []string
	defaults map[string]model.PlannedCert
	// names: every planned name, sorted, with the certificate that has it
	// (the first in ID order, as the live tree).
	names  []string
	certOf map[string]model.PlannedCert
}

func newServing(p *model.Plan, live string) *serving {
	certs := slices.Clone(p.Certificates)
	sort.Slice(certs, func(i, j int) bool { return certs[i].ID < certs[j].ID })
	s := &serving{live: live, defaults: map[string]model.PlannedCert{}, certOf: map[string]model.PlannedCert{}}
	for _, pc := range certs {
		if pc.Default {
			for _, ip := range pc.IPs {
				ip = strings.ToLower(ip)
				if _, ok := s.defaults[ip]; !ok {
					s.defaults[ip] = pc
					s.ips = append(s.ips, ip)
				}
			}
		}
		for _, n := range pc.Names {
			n = strings.ToLower(n)
			if _, ok := s.certOf[n]; !ok {
				s.certOf[n] = pc
				s.names = append(s.names, n)
			}
		}
	}
	sort.Strings(s.ips)
	sort.Strings(s.names)
	return s
}

// file is the path of a live entry's file.
func (s *serving) file(entry, name string) string { return path.Join(s.live, entry, name) }

// oneDefault reports whether every IP has the same default certificate
// (or there is none), so that one server-wide setting serves it.
func (s *serving) oneDefault() bool {
	for _, ip := range s.ips {
		if s.defaults[ip].ID != s.defaults[s.ips[0]].ID {
			return false
		}
	}
	return true
}

// sniNames are the names served on ip by SNI: those of certificates on ip
// that its default certificate does not have.
func (s *serving) sniNames(ip string) []string {
	def := s.defaults[ip]
	var out []string
	for _, n := range s.names {
		pc := s.certOf[n]
		if pc.ID == def.ID || !containsFold(pc.IPs, ip) || containsFold(def.Names, n) {
			continue
		}
		out = append(out, n)
	}
	return out
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

// Diff is one difference between the running configuration and the plan's.
type Diff struct {
	// Where: a parameter, section path or table key.
	Where string `json:"where"`
	Want  string `json:"want"`
	Have  string `json:"have"`
}

func (d Diff) String() string {
	have := d.Have
	if have == "" {
		have = "(not set)"
	}
	want := d.Want
	if want == "" {
		want = "(not set)"
	}
	return d.Where + ": have " + have + ", want " + want
}

// entries are the live entries a plan's configuration names, for a check
// that the files exist.
func entries(s *serving) []string {
	var out []string
	for _, ip := range s.ips {
		out = append(out, store.LiveDefault(ip))
	}
	for _, n := range s.names {
		out = append(out, store.LiveSNI(n))
	}
	return out
}

// CheckLive lists the live entries plan p's configuration names that do
// not exist under liveDir (not issued yet, or issue and renew keep
// another live directory).
func CheckLive(p *model.Plan, liveDir string) []Diff {
	var diffs []Diff
	for _, e := range entries(newServing(p, liveDir)) {
		f := filepath.Join(liveDir, e, store.FileCombined)
		if _, err := os.Stat(f); err != nil {
			have := "missing"
			if !errors.Is(err, fs.ErrNotExist) {
				have = err.Error()
			}
			diffs = append(diffs, Diff{"serving path " + f, "present", have})
		}
	}
	return diffs
}
