package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/certplan/certplan/internal/pebbletest"
)

// startACME starts Pebble, Let's Encrypt's test CA, in-process; its
// validation resolves through the lab's resolver (Resolver) and connects to HTTP-01 on
// l.ACME.HTTPPort of the names' addresses.
func (l *Lab) startACME() error {
	ctx, cancel := context.WithCancel(context.Background())
	ca, err := pebbletest.Start(ctx, pebbletest.Options{DNSAddr: l.Resolver()})
	if err != nil {
		cancel()
		return fmt.Errorf("lab acme: %w", err)
	}
	l.ACME = ca
	l.closers = append(l.closers, func() error { cancel(); return ca.Close() })
	l.ACMERootsFile = filepath.Join(l.Dir, "acme-roots.pem")
	if err := os.WriteFile(l.ACMERootsFile, ca.RootsPEM, 0o644); err != nil {
		return err
	}
	// certplan checks what it is issued against Pebble's issuing root
	// (--issuer-roots).
	l.ACMEIssuerFile = filepath.Join(l.Dir, "acme-issuer.pem")
	if err := os.WriteFile(l.ACMEIssuerFile, ca.IssuerRootsPEM(), 0o644); err != nil {
		return err
	}
	// Clients of the lab trust both the lab CA (today's certificates) and
	// Pebble's issuing root (the ones certplan issues).
	l.TrustFile = filepath.Join(l.Dir, "trust.pem")
	return os.WriteFile(l.TrustFile, append(append([]byte{}, l.CA.CertPEM...), ca.IssuerRootsPEM()...), 0o644)
}

// HTTPListen is the --http-listen value for the lab: the HTTP-01 port
// Pebble validates on, on each server IP.
func (l *Lab) HTTPListen() string {
	p := strconv.Itoa(l.ACME.HTTPPort)
	return IP1 + ":" + p + "," + IP2 + ":" + p
}

// NewClient is the zone of a client domain that the lab adds part-way, to
// show renewal covering a new domain.
const NewClient = "newclient.test"

const newClientZone = `$ORIGIN newclient.test.
$TTL 300
@	IN SOA ns1.main-domain.test. hostmaster.main-domain.test. 2026112701 3600 600 1209600 300
@	IN NS  ns1.main-domain.test.
@	IN MX  10 mail.newclient.test.
mail	IN A   127.0.0.2
smtp	IN A   127.0.0.2
_submission._tcp	IN SRV 0 1 587 smtp.newclient.test.
`

// AddNewClient adds NewClient's zone to the DNS server and to the zones
// directory, as a hosting panel does when a customer signs up.
func (l *Lab) AddNewClient() error {
	if err := l.DNS.AddZone(NewClient, newClientZone); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(l.ZonesDir, NewClient+".db"), []byte(newClientZone), 0o644)
}
