// Package dnssectest runs, per test, a real DNSSEC-signed DNS: an
// authoritative NSD serving zones signed in the test with ldns-signzone, and
// two private unbound resolvers in front of it, one validating (trust anchor:
// the test's own root key) and one that does not validate. The AD bit a test
// sees is unbound's verdict, not a canned answer: a tampered signature gives
// SERVFAIL, a zone without DS in its parent is insecure.
//
// # The hierarchy
//
// The rig signs its own root zone "." (a KSK and a ZSK, ECDSA P-256) and
// delegates each zone of [Config.Zones] from it: NS ns1.<zone> with glue, and
// a DS record for every zone not listed in [Config.Insecure]. Insecure zones
// are served unsigned, so their records validate as insecure (the parent's
// NSEC proves there is no DS, RFC 4035 section 5.2). Zones are delegated from
// the root directly, whatever their depth ("example.test." below the empty
// non-terminal "test."). Records for the root itself may be given as
// Zones["."].
//
// unbound cannot be told a port for the servers a referral names, so it has a
// stub-zone for "." and one for each zone, all pointing to NSD; DS questions
// go to the parent's stub (unbound strips a label for them), so the chain of
// trust is checked as on the Internet.
//
// # Changes while running
//
// [Rig.Update] replaces a zone's records, raises its SOA serial, re-signs it
// with the same keys, makes NSD reload it (SIGHUP: NSD rereads zone files
// whose mtime changed), waits until NSD serves the new serial, and flushes
// both resolvers' caches (unbound-control over a local socket), so that the
// next question sees the change. [Rig.Flush] flushes alone.
//
// # Processes and requirements
//
// NSD and the unbounds run as children of the test, in the foreground, with
// configurations and zone files in the test's temporary directory; they listen
// on free ports of 127.0.0.1 and are stopped (their process groups killed) by
// t.Cleanup. Programs (the lab) use [Run] and [Rig.Close] instead, and
// [Config.Stubs] to have the resolvers answer for zones of another server
// too. Nothing of the system's nsd or unbound is used or touched: their
// services may run or not. Needed: Debian's nsd, unbound and ldnsutils
// packages ([Available] says what is missing). Without them a test skips,
// unless CERTPLAN_REQUIRE_INTEGRATION=1, when it fails.
package dnssectest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/proc"
	"github.com/miekg/dns"
)

// RequireEnv turns a missing nsd, unbound or ldnsutils from a skip into a
// failure (as in CI).
const RequireEnv = "CERTPLAN_REQUIRE_INTEGRATION"

// IP is the loopback address the rig's servers listen on, each on its own
// port (NSD elsewhere when Config.AuthAddr says so).
const IP = "127.0.0.1"

// Config is what a test serves.
type Config struct {
	// Zones maps a zone's origin ("example.test.") to its records in zone
	// file syntax, names relative to the origin allowed ("@", "mx", "_25._tcp.mx").
	// The rig adds the SOA, the apex NS ns1.<zone> and its address; a test
	// gives neither. Zones["."] adds records to the root zone.
	Zones map[string]string
	// Insecure lists zones delegated without DS and served unsigned.
	Insecure []string
	// Broken lists owner names (fqdn) whose RRSIGs are tampered with after
	// signing, in whatever zone holds them: a validating resolver answers
	// SERVFAIL for them (bogus, RFC 4035 section 5.5). "name TYPE" breaks
	// only the signature of that type: "name" alone breaks the NSEC's too,
	// which makes the names it proves absent SERVFAIL as well.
	Broken []string
	// TTL is the default TTL of the zones' records ($TTL) and of the SOA's
	// negative-caching field; 0 means 5 seconds.
	TTL uint32
	// CacheMaxTTL, when not 0, caps how long the resolvers cache anything
	// (unbound's cache-max-ttl; replies then carry TTLs no larger). 0 keeps
	// unbound's default, so replies carry the zones' TTLs; Update flushes
	// the caches either way.
	CacheMaxTTL uint32
	// AuthAddr, when set ("127.0.0.53:53"), is where NSD listens, for tests
	// that find the authoritative servers from NS records and ask them on
	// port 53 (root only). The NS records' addresses are its IP. "" picks
	// a free port on 127.0.0.1.
	AuthAddr string
	// Stubs maps zones served by another, unsigned server (origin ->
	// "ip:port") to that server: the resolvers get a stub-zone and a
	// domain-insecure for each, so that they answer for them too, without
	// AD (the lab's own zones beside its signed one).
	Stubs map[string]string
}

// Rig is a running signed hierarchy and its resolvers.
type Rig struct {
	// Resolver is the validating unbound, "127.0.0.1:PORT".
	Resolver string
	// PlainResolver is an unbound that does not validate (module-config
	// "iterator"): it never sets the AD bit.
	PlainResolver string
	// Auth is NSD, authoritative for "." and every zone, at Config.AuthAddr
	// when given.
	Auth string
	// TrustAnchor is the root's KSK as a DNSKEY record, the validating
	// resolver's trust anchor.
	TrustAnchor string

	t         testing.TB // nil for a rig from Run
	dir       string
	cfg       Config
	mu        sync.Mutex
	zones     map[string]*zone // origin -> zone, "." included
	nsd       *daemon
	resolvers []*daemon // validating, plain
}

// Available returns nil when the rig can start here, or an error naming
// the missing commands and their packages.
func Available() error {
	var missing []string
	for _, n := range []struct{ cmd, pkg string }{
		{"nsd", "nsd"}, {"unbound", "unbound"}, {"unbound-control", "unbound"},
		{"ldns-keygen", "ldnsutils"}, {"ldns-signzone", "ldnsutils"},
	} {
		if _, err := proc.LookPath(n.cmd); err != nil {
			missing = append(missing, fmt.Sprintf("command %s (package %s)", n.cmd, n.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("dnssec integration: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// Required reports whether integration tests must run rather than skip.
func Required() bool {
	v := os.Getenv(RequireEnv)
	return v != "" && v != "0" && v != "false"
}

// Require skips the test when the rig cannot start here, or fails it when
// CERTPLAN_REQUIRE_INTEGRATION=1. Start calls it.
func Require(t testing.TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	if Required() {
		t.Fatalf("%v (%s=1: integration tests must run; apt-get install nsd unbound ldnsutils, as .ci/run does)", err, RequireEnv)
	}
	t.Skipf("%v (set %s=1 to make this a failure)", err, RequireEnv)
}

// Start signs the zones, starts NSD and the two resolvers in a temporary
// directory of the test, and registers their stop with t.Cleanup. It skips
// or fails the test as [Require] does, and fails it on any error.
func Start(t testing.TB, cfg Config) *Rig {
	t.Helper()
	Require(t)
	r, err := Run(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err) // "dnssectest: ..."
	}
	r.t = t
	t.Cleanup(r.Close)
	return r
}

// Run is Start for programs (the lab): it signs the zones and starts the
// daemons with their files in dir, and returns an error instead of failing
// a test. Close stops them; dir is the caller's to remove.
func Run(dir string, cfg Config) (*Rig, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5
	}
	if cfg.AuthAddr == "" {
		cfg.AuthAddr = net.JoinHostPort(IP, "0")
	}
	r := &Rig{dir: dir, cfg: cfg}
	if err := r.start(); err != nil {
		r.Close()
		return nil, fmt.Errorf("dnssectest: %w", err)
	}
	return r, nil
}

// start builds the zones and starts the daemons.
func (r *Rig) start() error {
	if err := r.buildZones(); err != nil {
		return err
	}
	nsd, err := start(r.dir, "nsd", r.cfg.AuthAddr, r.nsdConfig)
	if err != nil {
		return fmt.Errorf("nsd: %w", err)
	}
	r.nsd, r.Auth = nsd, nsd.addr
	if err := r.waitServed(); err != nil {
		return err
	}
	for _, validate := range []bool{true, false} {
		name := "unbound-plain"
		if validate {
			name = "unbound"
		}
		u, err := start(r.dir, name, net.JoinHostPort(IP, "0"), func(ip string, port int) string {
			return r.unboundConfig(name, ip, port, validate)
		})
		if err != nil {
			return fmt.Errorf("unbound: %w", err)
		}
		r.resolvers = append(r.resolvers, u)
	}
	r.Resolver, r.PlainResolver = r.resolvers[0].addr, r.resolvers[1].addr
	return nil
}

// Update replaces the records of zone (as in Config.Zones), re-signs it with
// its keys, has NSD reload it and flushes the resolvers' caches. It fails
// the test on error; a rig from Run has only UpdateZone.
func (r *Rig) Update(origin, records string) {
	r.t.Helper()
	if err := r.UpdateZone(origin, records); err != nil {
		r.t.Fatalf("%v", err)
	}
}

// UpdateZone is Update returning its error.
func (r *Rig) UpdateZone(origin, records string) error {
	if err := r.update(origin, records); err != nil {
		return fmt.Errorf("dnssectest: update %s: %w", origin, err)
	}
	return nil
}

func (r *Rig) update(origin, records string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	z, ok := r.zones[dns.CanonicalName(origin)]
	if !ok {
		return errors.New("no such zone in the rig")
	}
	z.records = records
	z.serial++
	if err := r.write(z); err != nil {
		return err
	}
	if err := r.reload(); err != nil {
		return err
	}
	return r.flush()
}

// Flush empties both resolvers' caches (records, negative answers, keys,
// bogus verdicts, and what unbound knows of the servers). It fails the
// test on error: for a rig from Start only.
func (r *Rig) Flush() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.flush(); err != nil {
		r.t.Fatalf("dnssectest: flush: %v", err)
	}
}

func (r *Rig) flush() error {
	for _, u := range r.resolvers {
		for _, args := range [][]string{{"flush_zone", "."}, {"flush_bogus"}, {"flush_negative"}, {"flush_infra", "all"}} {
			if err := u.control(args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// reload makes NSD reread changed zone files and waits until it serves
// every zone's current serial.
func (r *Rig) reload() error {
	if err := r.nsd.signal(syscall.SIGHUP); err != nil {
		return err
	}
	return r.waitServed()
}

// waitServed waits until NSD serves every zone's current serial.
func (r *Rig) waitServed() error {
	deadline := time.Now().Add(10 * time.Second)
	for _, z := range r.zones {
		for {
			got, err := soaSerial(r.Auth, z.origin)
			if err == nil && got == z.serial {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("nsd did not serve serial %d of %s (got %d, %v); log: %s", z.serial, z.origin, got, err, r.nsd.logTail())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// Close ends the daemons (Start's t.Cleanup calls it); their files stay
// in the directory.
func (r *Rig) Close() {
	for _, u := range r.resolvers {
		u.stop()
	}
	if r.nsd != nil {
		r.nsd.stop()
	}
}

// soaSerial asks server for origin's SOA serial.
func soaSerial(server, origin string) (uint32, error) {
	m := new(dns.Msg)
	m.SetQuestion(origin, dns.TypeSOA)
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	in, _, err := c.Exchange(m, server)
	if err != nil {
		return 0, err
	}
	for _, rr := range in.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, nil
		}
	}
	return 0, fmt.Errorf("no SOA (rcode %s)", dns.RcodeToString[in.Rcode])
}
