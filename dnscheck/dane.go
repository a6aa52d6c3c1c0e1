package dnscheck

import (
	"context"
	"slices"
	"strconv"

	"github.com/certplan/certplan/model"
	"github.com/miekg/dns"
)

// DANE: the TLSA records of the names that may go on a certificate, with
// their DNSSEC status, which decides whether senders trust them (RFC 7672
// §2.2: only validated records count).

// submissionRoles are the roles whose names DANE-aware mail clients may
// reach on the submission ports, 465 (RFC 8314) and 587 (RFC 6409), and
// check against TLSA records there (RFC 7673, for SRV targets).
var submissionRoles = []string{model.RoleSubmission, model.RoleSubmissions, model.RoleSMTP}

// submissionPorts are the ports whose TLSA records are asked for names
// with a submission role, in order.
var submissionPorts = []int{465, 587}

// tlsaSet is a TLSA lookup's outcome: the records, sorted, the AD bit of
// the answer that gave them (or of the last negative one), and its TTL.
type tlsaSet struct {
	records []model.TLSA
	ad      bool
	ttl     uint32
}

// tlsaOwner is _<port>._tcp.<name>.
func tlsaOwner(port int, name string) string {
	return "_" + strconv.Itoa(port) + "._tcp." + name
}

// validates asks the resolver, once per run, whether it validates DNSSEC:
// the root's DNSKEY set, signed since 2010, comes with the AD bit from a
// validating resolver (asked with DO, RFC 3225) and without it from any
// other. A failed question counts as not validating: the TLSA records are
// then of unknown status, which keeps keys as if pinned.
func validates(ctx context.Context, q Querier) bool {
	resp, err := q.Ask(withDANE(ctx), ".", dns.TypeDNSKEY, true)
	return err == nil && resp.Rcode == dns.RcodeSuccess && resp.AD
}

// resolverStatus is the run's [model.Inventory.Resolver].
func (rn *run) resolverStatus() string {
	if rn.validating {
		return model.ResolverValidating
	}
	return model.ResolverNotValidating
}

// dnssecStatus is the DNSSEC status of an answer with or without the AD
// bit: without it, a validating resolver says the zone is unsigned
// (insecure, RFC 4035 §4.3); any other says nothing.
func (rn *run) dnssecStatus(ad bool) string {
	switch {
	case ad:
		return model.DNSSECSecure
	case rn.validating:
		return model.DNSSECInsecure
	default:
		return model.DNSSECUnknown
	}
}

// dane fills in the TLSA records of nm, a name that may go on a
// certificate with roles for the domain: at _25._tcp for an MX target,
// and at the submission ports for a name with a submission role, kept
// when records exist or the lookup failed. A failed TLSA lookup leaves
// the name's addresses fine: it is the name's DANE problem
// (model.Name.TLSAError, PortTLSA.Error), not a failed name or domain.
func (d *dom) dane(nm *model.Name, roles, chain []string) {
	if slices.Contains(roles, model.RoleMX) {
		set, err := d.tlsa(25, nm.Name, chain)
		nm.TLSA, nm.TLSATTL, nm.TLSADNSSEC = set.records, set.ttl, d.rn.dnssecStatus(set.ad)
		if err != nil {
			nm.TLSAError, nm.TLSADNSSEC = err.Error(), model.DNSSECUnknown
		}
	}
	if !slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(submissionRoles, r) }) {
		return
	}
	for _, port := range submissionPorts {
		set, err := d.tlsa(port, nm.Name, chain)
		switch {
		case err != nil:
			nm.PortTLSA = append(nm.PortTLSA, model.PortTLSA{Port: port, DNSSEC: model.DNSSECUnknown, Error: err.Error()})
		case len(set.records) > 0:
			nm.PortTLSA = append(nm.PortTLSA, model.PortTLSA{Port: port, Records: set.records,
				DNSSEC: d.rn.dnssecStatus(set.ad), TTL: set.ttl})
		}
	}
}
