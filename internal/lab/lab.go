// Package lab runs certplan's built-in example on loopback: an authoritative
// DNS server for a shared mail host and its client domains, and (as the
// pipeline grows) the host's mail listeners, an MTA-STS policy server
// (mtasts.go), a DNSSEC-signed zone for DANE behind a validating resolver
// (dane.go) and an ACME CA. The lab program (examples/lab) and the tests
// use it; it sends traffic only to 127.0.0.0/8.
package lab

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/certplan/certplan/examples/lab/zones"
	"github.com/certplan/certplan/internal/dnssectest"
	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/internal/pebbletest"
)

// Server IPs of the lab's shared host, and an address that is not the host's.
const (
	IP1     = "127.0.0.2"
	IP2     = "127.0.0.3"
	Foreign = "127.0.0.77"
	// Hostname is the shared server's own name: today's default certificate.
	Hostname = "server.main-domain.test"
)

// ServerIPs are the lab host's addresses.
var ServerIPs = []string{IP1, IP2}

// Lab is a running lab.
type Lab struct {
	// Dir holds the lab's files: zones/ (the hosted domains' zone files, as
	// cPanel keeps them in /var/named), and whatever later stages write.
	Dir string
	// ZonesDir is Dir/zones.
	ZonesDir string
	// DNS is the authoritative server for every lab zone, plus the parent
	// zone "test." so that names outside the hosted zones get NXDOMAIN.
	DNS *dnstest.Server
	// CA is the lab's private CA, which signed the certificates the mail
	// server has today; CAFile holds it in PEM for --ca-file.
	CA     *mailtest.CA
	CAFile string
	// Mail is the shared host's mail listeners on ServerIPs.
	Mail *MailServer
	// MTASTS serves MTASTSDomain's MTA-STS policy on IP1 (mtasts.go);
	// MTASTSFlags gives certplan what it needs to fetch it.
	MTASTS *mailtest.PolicyServer
	// ACME is Pebble, when Options.ACME is set. ACMERootsFile is the PEM for
	// --ca-roots (the ACME server's TLS issuer); ACMEIssuerFile the root
	// Pebble issues under, for --issuer-roots; TrustFile holds the lab CA
	// and Pebble's issuing root, for --ca-file.
	ACME           *pebbletest.CA
	ACMERootsFile  string
	ACMEIssuerFile string
	TrustFile      string
	// DANE is the signed zone DANEDomain's rig (dane.go), when
	// Options.DANE is set and nsd, unbound and ldnsutils are installed;
	// DANESkipped says why not otherwise.
	DANE        *dnssectest.Rig
	DANESkipped error

	closers []func() error
}

// Options configure Start.
type Options struct {
	// Dir is where the lab writes its files; empty for a new temporary
	// directory that Close removes.
	Dir string
	// DNSAddr is the DNS listen address; default 127.0.0.1:0.
	DNSAddr string
	// RandomPorts makes the mail listeners use free ports instead of Ports,
	// so that tests can run beside a running lab.
	RandomPorts bool
	// ACME starts Pebble too.
	ACME bool
	// DANE starts the signed zone (dane.go) where its packages are
	// installed; Pebble and Resolver() then use its validating resolver.
	DANE bool
}

// Start starts the lab's DNS and mail listeners. Close stops everything.
func Start(opts Options) (_ *Lab, err error) {
	l := &Lab{Dir: opts.Dir}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.Dir == "" {
		d, err := os.MkdirTemp("", "certplan-lab-")
		if err != nil {
			return nil, err
		}
		l.Dir = d
		l.closers = append(l.closers, func() error { return os.RemoveAll(d) })
	}
	l.ZonesDir = filepath.Join(l.Dir, "zones")
	if err := os.MkdirAll(l.ZonesDir, 0o755); err != nil {
		return nil, err
	}
	l.DNS = dnstest.New()
	if err := l.DNS.AddZone("test.", ""); err != nil {
		return nil, err
	}
	files, err := fs.Glob(zones.FS, "*.db")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := fs.ReadFile(zones.FS, f)
		if err != nil {
			return nil, err
		}
		if err := l.DNS.AddZone(dnstest.ZoneFileOrigin(f, string(b)), string(b)); err != nil {
			return nil, err
		}
		if slices.Contains(zones.Foreign, f) {
			continue
		}
		if err := os.WriteFile(filepath.Join(l.ZonesDir, f), b, 0o644); err != nil {
			return nil, err
		}
	}
	for _, d := range zones.Broken {
		l.DNS.SetFault(d, dnstest.FaultServfail)
	}
	addr := opts.DNSAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := l.DNS.Start(addr); err != nil {
		return nil, fmt.Errorf("lab dns: %w", err)
	}
	l.closers = append(l.closers, l.DNS.Close)

	if l.CA, err = mailtest.NewCA("certplan lab CA"); err != nil {
		return nil, err
	}
	l.CAFile = filepath.Join(l.Dir, "lab-ca.pem")
	if err := l.CA.WriteCertPEM(l.CAFile); err != nil {
		return nil, err
	}
	if l.Mail, err = startMail(filepath.Join(l.Dir, "mail"), l.CA, opts.RandomPorts); err != nil {
		return nil, err
	}
	l.closers = append(l.closers, l.Mail.Close)
	if err := l.startMTASTS(opts.RandomPorts); err != nil {
		return nil, err
	}
	if opts.DANE {
		if err := l.startDANE(); err != nil {
			return nil, err
		}
	}
	if opts.ACME {
		if err := l.startACME(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// HostedDomains lists the lab's hosted domains (A-labels), sorted.
func HostedDomains() []string {
	files, _ := fs.Glob(zones.FS, "*.db")
	var out []string
	for _, f := range files {
		if !slices.Contains(zones.Foreign, f) {
			out = append(out, strings.TrimSuffix(f, ".db"))
		}
	}
	slices.Sort(out)
	return out
}

// Close stops the lab and removes what it created, in reverse order.
func (l *Lab) Close() error {
	var first error
	for i := len(l.closers) - 1; i >= 0; i-- {
		if err := l.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	l.closers = nil
	return first
}
