package rollover

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
)

// DefaultTTL is the TTL printed for a record when the zone gives none yet
// (no TLSA set was found on its authoritative servers).
const DefaultTTL = 3600

// Record is one TLSA "3 1 1" record (DANE-EE, SubjectPublicKeyInfo,
// SHA-256) at _25._tcp.<Name>.
type Record struct {
	Name string `json:"name"` // the host name, without the _25._tcp prefix or a final dot
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

// Owner is the TLSA owner name for SMTP at host: _25._tcp.<host>.
func Owner(host string) string {
	return "_25._tcp." + strings.TrimSuffix(strings.ToLower(host), ".") + "."
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
