package probe

import (
	"cmp"
	"crypto/x509"
	"strings"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
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
//
// The detail names the certificate as [CertName] does, with server (the
// server's own name on ep's IP, from [ServerNames]; may be empty) as the
// name to prefer.
func Verdict(ep *model.Endpoint, name, server string, now time.Time) (verdict, detail string) {
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
	detail = CertName(leaf, server)
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

// CertName is how people recognise a certificate: by the server's own name
// when the certificate covers it (a default certificate's first SAN or CN
// may be any hosted domain's name, which would make the server's
// certificate look like a customer's), else by its subject CN, else by its
// first DNS name. server may be empty.
func CertName(ci *model.CertInfo, server string) string {
	switch {
	case ci == nil:
		return "no certificate"
	case server != "" && MatchesName(ci.DNSNames, server):
		return server
	case ci.SubjectCN != "":
		return ci.SubjectCN
	case len(ci.DNSNames) > 0:
		return ci.DNSNames[0]
	}
	return "a certificate without names"
}

// ServerNames maps each IP of endpoints to the server's own name there:
// hostname when given, else the first name an SMTP greeting on that IP
// announces ("220 mx.example.net ESMTP", RFC 5321 section 4.2; IMAP and
// POP3 greetings carry none). Every port of an IP then names the same
// certificate alike. An IP without either is absent.
func ServerNames(endpoints []model.Endpoint, hostname string) map[string]string {
	m := map[string]string{}
	for i := range endpoints {
		ip := endpoints[i].IP
		if _, ok := m[ip]; ok {
			continue
		}
		if n := cmp.Or(hostname, greetingName(endpoints[i].Banner)); n != "" {
			m[ip] = n
		}
	}
	return m
}

// greetingName is the name in an SMTP greeting, or "".
func greetingName(banner string) string {
	rest, ok := strings.CutPrefix(banner, "220")
	if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '-') {
		return ""
	}
	fields := strings.Fields(rest[1:])
	if len(fields) == 0 {
		return ""
	}
	n, err := names.Normalize(fields[0])
	if err != nil {
		return ""
	}
	return n
}
