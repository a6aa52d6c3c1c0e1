package rollover

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// DefaultTTL is the TTL printed for a record when the zone gives none yet
// (no TLSA set was found on its authoritative servers).
const DefaultTTL = 3600

// Record is one TLSA "3 1 1" record (DANE-EE, SubjectPublicKeyInfo,
// SHA-256) at [Owner](Name).
type Record struct {
	// Name is a pinned entry: a host name (the record is at
	// _25._tcp.<host>), or the owner "_465._tcp.<host>" /
	// "_587._tcp.<host>" of a submission port's record; no final dot.
	Name string `json:"name"`
	TTL  uint32 `json:"ttl"`
	SPKI string `json:"spki_sha256"` // lowercase hex
}

// Owner is the record's owner name, fully qualified.
func (r Record) Owner() string { return Owner(r.Name) }

// String is the record in zone-file syntax (RFC 1035 section 5, RFC 6698
// section 2.2).
func (r Record) String() string {
	return fmt.Sprintf("%s %d IN TLSA 3 1 1 %s", r.Owner(), r.TTL, r.SPKI)
}

// Owner is the TLSA owner name of a pinned entry, fully qualified: a
// host name stands for SMTP at _25._tcp.<host> (RFC 7672); an entry that
// is an owner already ("_587._tcp.<host>", a submission port's record,
// RFC 7671 applies alike) stays as it is.
func Owner(entry string) string {
	e := strings.TrimSuffix(strings.ToLower(entry), ".")
	if strings.HasPrefix(e, "_") {
		return e + "."
	}
	return "_25._tcp." + e + "."
}

// SubmissionPorts are the ports besides 25 whose TLSA records pin a
// name's key, as the inventory asks them ([model.Name.PortTLSA]).
var SubmissionPorts = []int{465, 587}

// Entries are the pinned entries a host may have: the host itself (port
// 25) and the owner at each of [SubmissionPorts].
func Entries(host string) []string {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	out := []string{h}
	for _, p := range SubmissionPorts {
		out = append(out, "_"+strconv.Itoa(p)+"._tcp."+h)
	}
	return out
}

// Host is the host name of a pinned entry: the entry itself, or the
// host of a submission port's owner "_<port>._tcp.<host>".
func Host(entry string) string {
	if _, host, ok := portOwner(entry); ok {
		return host
	}
	return entry
}

// portOwner splits an entry "_<port>._tcp.<host>" into port and host.
func portOwner(entry string) (port int, host string, ok bool) {
	rest, found := strings.CutPrefix(entry, "_")
	if !found {
		return 0, "", false
	}
	ps, host, found := strings.Cut(rest, "._tcp.")
	if !found {
		return 0, "", false
	}
	port, err := strconv.Atoi(ps)
	return port, host, err == nil
}

// SPKIHash is the "3 1 1" value of pub: the hex SHA-256 of its DER
// SubjectPublicKeyInfo.
func SPKIHash(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("spki: %w", err)
	}
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:]), nil
}

// Records are the "3 1 1" records of spki at each of names.
func Records(names []string, ttl uint32, spki string) []Record {
	out := make([]Record, 0, len(names))
	for _, n := range names {
		out = append(out, Record{Name: strings.TrimSuffix(strings.ToLower(n), "."), TTL: ttl, SPKI: spki})
	}
	return out
}
