package probe

import (
	"crypto/x509"
	"strings"
	"time"

	"github.com/certplan/certplan/model"
)

// Verdict says whether a client dialling name gets a certificate from ep
// that it accepts at now, and why not. verdict is a model.Verdict* value;
// detail names the certificate seen and every problem found, for people:
// "server.main-domain.test: name mismatch; untrusted: x509: certificate
// signed by unknown authority", or just "mail.domain2.test" when ok, or the
// endpoint's error.
//
// Name matching follows [x509.Certificate.VerifyHostname] (DNS SANs only,
// wildcards match one left-most label; the Common Name is ignored, as by
// every current client).
//
// # Precedence
//
// A certificate can fail several ways at once; the verdict is the first of
//
//	error > mismatch > expired > untrusted
//
// and the detail lists them all. Mismatch comes first because it is the one
// problem that only a different certificate fixes, and the one certplan
// exists to fix: the name must be added to the certificate this (IP, SNI)
// serves. Renewing the same names (expired) or fixing the issuer or the
// intermediates (untrusted) would still leave the client failing. Expired
// comes before untrusted because an expired certificate from a trusted CA
// is the common case (a renewal that did not run) and its fix is routine,
// while "untrusted" on an expired certificate would send the admin after the
// wrong problem; when both hold, the detail says so.
func Verdict(ep *model.Endpoint, name string, now time.Time) (verdict, detail string) {
	if ep == nil {
		return model.VerdictError, "not probed"
	}
	if ep.Error != "" || ep.Leaf == nil {
		if ep.Error == "" {
			return model.VerdictError, "no certificate"
		}
		return model.VerdictError, ep.Error
	}
	leaf := ep.Leaf
	var problems []string
	verdict = model.VerdictOK
	set := func(v, problem string) {
		if verdict == model.VerdictOK {
			verdict = v
		}
		problems = append(problems, problem)
	}
	if !MatchesName(leaf.DNSNames, name) {
		set(model.VerdictMismatch, "name mismatch")
	}
	nb, errB := time.Parse(time.RFC3339, leaf.NotBefore)
	na, errA := time.Parse(time.RFC3339, leaf.NotAfter)
	switch {
	case errB != nil || errA != nil:
		set(model.VerdictExpired, "unreadable validity dates")
	case now.Before(nb):
		set(model.VerdictExpired, "not valid before "+nb.UTC().Format(time.RFC3339))
	case now.After(na):
		set(model.VerdictExpired, "expired on "+na.UTC().Format(time.RFC3339))
	}
	if !ep.IssuerTrusted {
		msg := "untrusted"
		if ep.TrustError != "" {
			msg += ": " + ep.TrustError
		}
		set(model.VerdictUntrusted, msg)
	}
	detail = CertName(leaf)
	if len(problems) > 0 {
		detail += ": " + strings.Join(problems, "; ")
	}
	return verdict, detail
}

// MatchesName reports whether a certificate with these DNS SANs is valid for
// name, by [x509.Certificate.VerifyHostname] rules.
func MatchesName(dnsNames []string, name string) bool {
	c := x509.Certificate{DNSNames: dnsNames}
	return c.VerifyHostname(name) == nil
}

// CertName is how people recognise a certificate: its subject CN, else its
// first DNS name.
func CertName(ci *model.CertInfo) string {
	switch {
	case ci == nil:
		return "no certificate"
	case ci.SubjectCN != "":
		return ci.SubjectCN
	case len(ci.DNSNames) > 0:
		return ci.DNSNames[0]
	}
	return "a certificate without names"
}
