// Package dane matches a served certificate chain against TLSA records the
// way an SMTP client doing DANE does (RFC 6698, RFC 7671, RFC 7672), and
// computes the record that pins a certificate.
//
// It is pure: no DNS, no network, no clock of its own. Which records count
// (only those from a DNSSEC-validated answer, RFC 7672 §2.2) is decided by
// [model.Name.DANEPin]; callers pass [Match] only such a set.
//
// # What counts as a match, for SMTP
//
//   - usage 3 (DANE-EE) is compared with the leaf alone; neither its names
//     nor its dates are checked (RFC 7672 §3.1.1);
//   - usage 2 (DANE-TA) is compared with each certificate the server sent
//     above the leaf; the leaf must then chain to the matching certificate,
//     be valid now, and carry the host's name (RFC 7672 §3.1.2, §3.2.2);
//   - usages 0 (PKIX-TA) and 1 (PKIX-EE) are unusable for SMTP (RFC 7672
//     §3.1.3), as are unknown usages, selectors and matching types, and
//     data that is not a digest of the right length (RFC 7671 §4);
//   - a set with no usable record authenticates nothing: senders still
//     require TLS but accept any certificate (RFC 7672 §2.2), so it is no
//     refusal.
package dane

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/certplan/certplan/model"
)

// Certificate usages (RFC 6698 §2.1.1, acronyms from RFC 7218).
const (
	PKIXTA = 0 // unusable for SMTP (RFC 7672 §3.1.3)
	PKIXEE = 1 // unusable for SMTP (RFC 7672 §3.1.3)
	DANETA = 2 // a trust anchor the server sends above the leaf
	DANEEE = 3 // the leaf itself
)

// Selectors (RFC 6698 §2.1.2).
const (
	SelectorCert = 0 // the whole certificate (DER)
	SelectorSPKI = 1 // its SubjectPublicKeyInfo (DER): survives a renewal with the same key
)

// Matching types (RFC 6698 §2.1.3).
const (
	MatchFull   = 0 // the selected bytes themselves
	MatchSHA256 = 1
	MatchSHA512 = 2
)

// Record returns the TLSA record of cert for usage, selector and matching
// type: Record(leaf, DANEEE, SelectorSPKI, MatchSHA256) is the "3 1 1"
// record that pins leaf's key. An unknown selector or matching type gives
// a record with empty Data.
func Record(cert *x509.Certificate, usage, selector, matching uint8) model.TLSA {
	r := model.TLSA{Usage: usage, Selector: selector, MatchingType: matching}
	if d, ok := model.TLSADigest(cert, selector, matching); ok {
		r.Data = hex.EncodeToString(d)
	}
	return r
}

// String is the record in zone-file presentation format, without the
// owner: "3 1 1 <hex>".
func String(r model.TLSA) string {
	return fmt.Sprintf("%d %d %d %s", r.Usage, r.Selector, r.MatchingType, strings.ToLower(r.Data))
}

// unusable says why an SMTP client ignores r, or "" when it uses it.
func unusable(r model.TLSA) string {
	switch {
	case r.Usage == PKIXTA || r.Usage == PKIXEE:
		return "usages 0 and 1 are unusable for SMTP (RFC 7672 §3.1.3)"
	case r.Usage != DANETA && r.Usage != DANEEE:
		return fmt.Sprintf("unknown usage %d", r.Usage)
	case r.Selector != SelectorCert && r.Selector != SelectorSPKI:
		return fmt.Sprintf("unknown selector %d", r.Selector)
	case r.MatchingType > MatchSHA512:
		return fmt.Sprintf("unknown matching type %d", r.MatchingType)
	}
	b, err := hex.DecodeString(r.Data)
	switch {
	case err != nil || len(b) == 0:
		return "data is not hex"
	case r.MatchingType == MatchSHA256 && len(b) != sha256.Size,
		r.MatchingType == MatchSHA512 && len(b) != sha512.Size:
		return fmt.Sprintf("a %d-byte digest for matching type %d", len(b), r.MatchingType)
	}
	return ""
}

// Match reports whether an SMTP client doing DANE authenticates a server
// that sent chain (leaf first, as sent) under the TLSA record set rrs of
// host (the TLSA base domain: the MX host), at now. detail says which
// record matched, or why none did and the "3 1 1" record the leaf would
// need, for people. host and now matter only to usage 2 records; an empty
// host skips their name check. An empty chain never matches; an rrs with
// no usable record always does (see the package doc).
func Match(chain []*x509.Certificate, rrs []model.TLSA, host string, now time.Time) (ok bool, detail string) {
	if len(chain) == 0 {
		return false, "no certificate served"
	}
	var usable []model.TLSA
	var ignored []string
	for _, r := range rrs {
		if why := unusable(r); why != "" {
			ignored = append(ignored, String(r)+": "+why)
			continue
		}
		usable = append(usable, r)
	}
	if len(usable) == 0 {
		if len(rrs) == 0 {
			return true, "no TLSA records"
		}
		return true, "no usable TLSA record (" + strings.Join(ignored, "; ") + "): senders require TLS but authenticate nothing"
	}
	var problems []string
	for _, r := range usable {
		if r.Usage == DANEEE {
			if r.Matches(chain[0]) {
				return true, "the leaf matches " + String(r)
			}
			continue
		}
		ok, why := matchTA(chain, r, host, now)
		if ok {
			return true, why
		}
		if why != "" {
			problems = append(problems, why)
		}
	}
	detail = fmt.Sprintf("no TLSA record matches the served chain (%d usable of %d); the leaf's record would be %s",
		len(usable), len(rrs), String(Record(chain[0], DANEEE, SelectorSPKI, MatchSHA256)))
	if len(problems) > 0 {
		detail += "; " + strings.Join(problems, "; ")
	}
	return false, detail
}

// matchTA matches a usage 2 record against the certificates above the
// leaf; a certificate that matches must also be where the leaf's chain
// ends, and the leaf must be valid for host at now (RFC 7672 §3.1.2).
// why is the match, or the problem with a certificate that matched, or ""
// when none did.
func matchTA(chain []*x509.Certificate, r model.TLSA, host string, now time.Time) (ok bool, why string) {
	for i := 1; i < len(chain); i++ {
		if !r.Matches(chain[i]) {
			continue
		}
		anchor := x509.NewCertPool()
		anchor.AddCert(chain[i])
		inter := x509.NewCertPool()
		for _, c := range chain[1:i] {
			inter.AddCert(c)
		}
		_, err := chain[0].Verify(x509.VerifyOptions{
			DNSName: host, Roots: anchor, Intermediates: inter, CurrentTime: now,
			// RFC 7672 asks for no extended key usage.
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		name := chain[i].Subject.CommonName
		if err != nil {
			return false, fmt.Sprintf("%s matches %q, but the leaf does not verify under it: %v", String(r), name, err)
		}
		return true, fmt.Sprintf("%s matches %q, which the leaf chains to", String(r), name)
	}
	return false, ""
}
