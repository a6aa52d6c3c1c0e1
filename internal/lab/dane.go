package lab

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/certplan/certplan/examples/lab/zones"
	"github.com/certplan/certplan/internal/dnssectest"
	"github.com/certplan/certplan/internal/dnstest"
)

// DANEDomain is the lab's signed zone (issue 18): a client domain whose
// zone NSD serves signed with ldns-signzone, behind a validating unbound
// (internal/dnssectest), its MX DANEMX on IP1. It joins the hosted
// domains only when the lab's DANE part adds it (AddDANEClient), so the
// stages before are the same with or without the DNSSEC packages.
const (
	DANEDomain = "dane-lab.test"
	DANEMX     = "mail." + DANEDomain
	// DANETTL is the signed zone's TTL: a rollover waits two of them
	// after the next key's record is seen (the lab moves its clock with
	// CERTPLAN_NOW rather than wait).
	DANETTL = 60
)

// daneRecords are the signed zone's records before any TLSA record (the
// rig adds the SOA and NS).
const daneRecords = "@ IN MX 10 mail\nmail IN A " + IP1 + "\n"

// daneZoneFile is the zone file the hosting panel keeps for DANEDomain:
// what the zones directory gets (certplan reads its origin).
const daneZoneFile = `$ORIGIN dane-lab.test.
$TTL 60
@	IN SOA ns1.dane-lab.test. hostmaster.dane-lab.test. 1 60 60 600 60
@	IN NS  ns1.dane-lab.test.
@	IN MX  10 mail.dane-lab.test.
mail	IN A   127.0.0.2
; signed by the DNS provider; the TLSA records at _25._tcp.mail are
; published as the lab's DANE part goes
`

// startDANE starts the signed zone's rig when nsd, unbound and ldnsutils
// are installed; without them it records why in DANESkipped, or fails
// under CERTPLAN_REQUIRE_INTEGRATION=1. The rig's resolvers answer for
// every zone of the lab DNS too (stub zones, insecure), so that one
// validating resolver serves certplan and Pebble.
func (l *Lab) startDANE() error {
	if err := dnssectest.Available(); err != nil {
		if dnssectest.Required() {
			return fmt.Errorf("lab dane: %w (%s=1; apt-get install nsd unbound ldnsutils)", err, dnssectest.RequireEnv)
		}
		l.DANESkipped = err
		return nil
	}
	stubs := map[string]string{NewClient: l.DNS.Addr()}
	files, err := fs.Glob(zones.FS, "*.db")
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := fs.ReadFile(zones.FS, f)
		if err != nil {
			return err
		}
		stubs[dnstest.ZoneFileOrigin(f, string(b))] = l.DNS.Addr()
	}
	dir := filepath.Join(l.Dir, "dnssec")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	rig, err := dnssectest.Run(dir, dnssectest.Config{Zones: map[string]string{DANEDomain + ".": daneRecords},
		TTL: DANETTL, Stubs: stubs})
	if err != nil {
		return fmt.Errorf("lab dane: %w", err)
	}
	l.DANE = rig
	l.closers = append(l.closers, func() error { rig.Close(); return nil })
	return nil
}

// Resolver is the resolver certplan and Pebble ask: the rig's validating
// unbound when the DANE part runs, else the lab DNS.
func (l *Lab) Resolver() string {
	if l.DANE != nil {
		return l.DANE.Resolver
	}
	return l.DNS.Addr()
}

// DANEAuthPort is the port of the signed zone's authoritative server (NSD
// on 127.0.0.1, its NS's address), for CERTPLAN_AUTH_PORT.
func (l *Lab) DANEAuthPort() string {
	_, port, _ := net.SplitHostPort(l.DANE.Auth)
	return port
}

// AddDANEClient adds DANEDomain's zone file to the zones directory, as a
// hosting panel does when a customer signs up.
func (l *Lab) AddDANEClient() error {
	return os.WriteFile(filepath.Join(l.ZonesDir, DANEDomain+".db"), []byte(daneZoneFile), 0o644)
}

// PublishTLSA makes the TLSA set at _25._tcp.DANEMX exactly one "3 1 1"
// record per SPKI SHA-256 in hexes, signed, and flushes the resolvers.
func (l *Lab) PublishTLSA(hexes ...string) error {
	var b strings.Builder
	b.WriteString(daneRecords)
	for _, h := range hexes {
		fmt.Fprintf(&b, "_25._tcp.mail IN TLSA 3 1 1 %s\n", h)
	}
	return l.DANE.UpdateZone(DANEDomain+".", b.String())
}

// ServedSPKI is the SHA-256 of the key the mail listeners serve on ip to
// clients sending SNI sni (hex, as in a "3 1 1" record): from the file
// they load, sni/<sni>.pem, else default-<ip>.pem.
func (m *MailServer) ServedSPKI(ip, sni string) (string, error) {
	path := filepath.Join(m.Dir, "sni", sni+".pem")
	if _, err := os.Stat(path); err != nil {
		path = filepath.Join(m.Dir, "default-"+ip+".pem")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return "", errors.New("no certificate in " + path)
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		return hex.EncodeToString(h[:]), nil
	}
}
