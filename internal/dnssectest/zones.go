package dnssectest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/certplan/certplan/internal/proc"
	"github.com/miekg/dns"
)

// zone is one zone the rig serves, and its keys when it is signed.
type zone struct {
	origin  string // fqdn, lowercase
	records string // as the test gave them
	serial  uint32
	signed  bool
	ksk     string // key file base names (no .key/.private), in the keys directory
	zsk     string
	ds      string // the KSK's DS record, for the parent
}

// file is the zone file NSD reads, relative to the rig's directory.
func (z *zone) file() string {
	if z.origin == "." {
		return "root.zone"
	}
	return strings.TrimSuffix(z.origin, ".") + ".zone"
}

// buildZones makes the zones, generates the keys of the signed ones and
// writes every zone file.
func (r *Rig) buildZones() error {
	r.zones = map[string]*zone{".": {origin: ".", signed: true, serial: 1}}
	insecure := map[string]bool{}
	for _, o := range r.cfg.Insecure {
		insecure[dns.CanonicalName(o)] = true
	}
	for o, text := range r.cfg.Zones {
		o = dns.CanonicalName(o)
		if o == "." {
			r.zones["."].records = text
			continue
		}
		if _, ok := dns.IsDomainName(o); !ok {
			return fmt.Errorf("zone %q: not a domain name", o)
		}
		r.zones[o] = &zone{origin: o, records: text, serial: 1, signed: !insecure[o]}
	}
	for o := range insecure {
		if _, ok := r.zones[o]; !ok {
			return fmt.Errorf("insecure zone %s is not in Zones", o)
		}
	}
	keys := filepath.Join(r.dir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return err
	}
	for _, z := range r.zones {
		if z.signed {
			if err := z.makeKeys(keys); err != nil {
				return err
			}
		}
	}
	ta, err := os.ReadFile(filepath.Join(keys, r.zones["."].ksk+".key"))
	if err != nil {
		return err
	}
	r.TrustAnchor = strings.TrimSpace(string(ta))
	return r.writeAll()
}

// makeKeys generates a KSK and a ZSK for z with ldns-keygen.
func (z *zone) makeKeys(dir string) error {
	gen := func(args ...string) (string, error) {
		args = append([]string{"-a", "ECDSAP256SHA256"}, append(args, z.origin)...)
		out, err := run(dir, "ldns-keygen", args...)
		return strings.TrimSpace(string(out)), err
	}
	var err error
	if z.ksk, err = gen("-k"); err != nil {
		return err
	}
	if z.zsk, err = gen(); err != nil {
		return err
	}
	ds, err := os.ReadFile(filepath.Join(dir, z.ksk+".ds"))
	z.ds = strings.TrimSpace(string(ds))
	return err
}

// writeAll writes every zone file, children first (the root needs no
// change from them but is written last for order's sake).
func (r *Rig) writeAll() error {
	for _, o := range r.origins() {
		if err := r.write(r.zones[o]); err != nil {
			return err
		}
	}
	return nil
}

// origins lists the zones, sorted, the root last.
func (r *Rig) origins() []string {
	var os []string
	for o := range r.zones {
		if o != "." {
			os = append(os, o)
		}
	}
	sort.Strings(os)
	return append(os, ".")
}

// text is z's zone file before signing: SOA, apex NS and its address, the
// test's records, and for the root the delegations with glue and DS.
func (r *Rig) text(z *zone) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL %d\n", z.origin, r.cfg.TTL)
	fmt.Fprintf(&b, "@ IN SOA ns1 hostmaster %d 60 60 600 %d\n", z.serial, r.cfg.TTL)
	ip, _, _ := net.SplitHostPort(r.cfg.AuthAddr)
	fmt.Fprintf(&b, "@ IN NS ns1\nns1 IN A %s\n", ip)
	b.WriteString(z.records)
	b.WriteString("\n")
	if z.origin != "." {
		return b.String()
	}
	for _, o := range r.origins() {
		c := r.zones[o]
		if o == "." {
			continue
		}
		fmt.Fprintf(&b, "%s IN NS ns1.%s\nns1.%s IN A %s\n", o, o, o, ip)
		if c.signed {
			b.WriteString(c.ds + "\n")
		}
	}
	return b.String()
}

// write writes z's zone file, signed and tampered with as configured,
// replacing the old one at once (NSD notices the new mtime on SIGHUP).
func (r *Rig) write(z *zone) error {
	out := []byte(r.text(z))
	if z.signed {
		var err error
		if out, err = r.sign(z, out); err != nil {
			return err
		}
	}
	path := filepath.Join(r.dir, z.file())
	tmp := path + ".new"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// sign signs text with z's keys (ldns-signzone, NSEC), valid from an hour
// ago (clock skew) for 30 days, and breaks the RRSIGs of Config.Broken.
func (r *Rig) sign(z *zone, text []byte) ([]byte, error) {
	keys := filepath.Join(r.dir, "keys")
	in := filepath.Join(keys, z.file())
	if err := os.WriteFile(in, text, 0o644); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	stamp := func(t time.Time) string { return t.Format("20060102150405") }
	if _, err := run(keys, "ldns-signzone", "-i", stamp(now.Add(-time.Hour)), "-e", stamp(now.Add(30*24*time.Hour)),
		"-o", z.origin, "-f", in+".signed", in, z.ksk, z.zsk); err != nil {
		return nil, err
	}
	signed, err := os.ReadFile(in + ".signed")
	if err != nil {
		return nil, err
	}
	return r.tamper(z, signed)
}

// tamper flips a bit in the signature of every RRSIG owned by a name of
// Config.Broken (of the type given there, or of any), leaving everything
// else as signed.
func (r *Rig) tamper(z *zone, signed []byte) ([]byte, error) {
	broken := map[string]bool{} // "owner." or "owner. TYPE"
	for _, n := range r.cfg.Broken {
		f := strings.Fields(n)
		if len(f) == 0 {
			continue
		}
		f[0] = dns.CanonicalName(f[0])
		if len(f) > 1 {
			f[1] = strings.ToUpper(f[1])
		}
		broken[strings.Join(f, " ")] = true
	}
	if len(broken) == 0 {
		return signed, nil
	}
	zp := dns.NewZoneParser(bytes.NewReader(signed), z.origin, "")
	var b bytes.Buffer
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		sig, isSig := rr.(*dns.RRSIG)
		if isSig && (broken[dns.CanonicalName(sig.Hdr.Name)] ||
			broken[dns.CanonicalName(sig.Hdr.Name)+" "+dns.TypeToString[sig.TypeCovered]]) {
			raw, err := base64.StdEncoding.DecodeString(sig.Signature)
			if err != nil {
				return nil, fmt.Errorf("rrsig of %s: %w", sig.Hdr.Name, err)
			}
			raw[len(raw)/2] ^= 0x01
			sig.Signature = base64.StdEncoding.EncodeToString(raw)
		}
		b.WriteString(rr.String() + "\n")
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("read signed %s: %w", z.origin, err)
	}
	return b.Bytes(), nil
}

// run runs a command in dir and returns its standard output; the error
// carries its standard error.
func run(dir, name string, args ...string) ([]byte, error) {
	bin, err := proc.LookPath(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
