package probe

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certplan/certplan/dane"
	"github.com/certplan/certplan/model"
)

// MX is what validating senders require of an MX host: its DANE state
// (RFC 7672) and the MTA-STS policies (RFC 8461) of the hosted domains
// whose MX it is.
type MX struct {
	// Pin and PinReason are the name's [model.Name.DANEPin]: the one rule
	// of which TLSA records count.
	Pin, PinReason string
	// TLSA are the records at _25._tcp.<name>.
	TLSA []model.TLSA
	// Policies are the MTA-STS states of the domains whose MX it is,
	// sorted by domain; domains without an _mta-sts record are left out.
	Policies []DomainPolicy
}

// DomainPolicy is one hosted domain's MTA-STS state.
type DomainPolicy struct {
	Domain string
	// Policy is nil when the domain's policy could not be fetched; Error
	// then says why.
	Policy *model.MTASTSPolicy
	Error  string
}

// MXHosts returns, by name, what validating senders require of each name
// of inv with the MX role.
func MXHosts(inv *model.Inventory) map[string]MX {
	domains := make(map[string]*model.Domain, len(inv.Domains))
	for i := range inv.Domains {
		domains[inv.Domains[i].Domain] = &inv.Domains[i]
	}
	hosts := map[string]MX{}
	for i := range inv.Names {
		n := &inv.Names[i]
		if !n.HasRole(model.RoleMX) {
			continue
		}
		mx := MX{TLSA: n.TLSA}
		mx.Pin, mx.PinReason = n.DANEPin()
		for _, d := range mxDomains(n) {
			dom := domains[d]
			if dom == nil || dom.MTASTS == nil {
				continue
			}
			mx.Policies = append(mx.Policies, DomainPolicy{Domain: d, Policy: dom.MTASTS.Policy, Error: dom.MTASTS.PolicyError})
		}
		hosts[strings.ToLower(n.Name)] = mx
	}
	return hosts
}

// mxDomains are the hosted domains whose MX n is, sorted: those its MX
// sources name, or all its domains in an inventory without sources.
func mxDomains(n *model.Name) []string {
	var ds []string
	for _, s := range n.Sources {
		if s.Role == model.RoleMX {
			ds = append(ds, s.Domain)
		}
	}
	if len(n.Sources) == 0 {
		ds = append(ds, n.Domains...)
	}
	slices.Sort(ds)
	return slices.Compact(ds)
}

// DANEVerdict says what a DANE sender does with name's MX host when ep is
// its handshake with SNI (RFC 7672 §8.1: DANE senders send SNI), judged
// by [dane.Match] at now: a model.Sender* value and why, for people. With
// secure usable records, TLS is mandatory (RFC 7672 §2.2): a handshake
// that failed is a refusal.
func DANEVerdict(ep *model.Endpoint, name string, mx MX, now time.Time) (verdict, detail string) {
	switch mx.Pin {
	case model.PinNone:
		return model.SenderNone, "no secure TLSA records at _25._tcp." + name
	case model.PinUnknown:
		return model.SenderUnknown, mx.PinReason
	}
	switch {
	case ep == nil:
		return model.SenderUnknown, "not probed"
	case ep.Error != "":
		return model.SenderFail, "no TLS session, which the TLSA records make mandatory: " + ep.Error
	}
	chain := make([]*x509.Certificate, 0, len(ep.Chain))
	for _, ci := range ep.Chain {
		if ci.Cert == nil {
			return model.SenderUnknown, "the served certificates are not at hand (a probe report read back)"
		}
		chain = append(chain, ci.Cert)
	}
	ok, d := dane.Match(chain, mx.TLSA, name, now)
	if !ok {
		return model.SenderFail, d
	}
	return model.SenderOK, d
}

// senderRank orders the sender verdicts from best to worst for MTA-STS.
var senderRank = map[string]int{model.SenderNone: 0, model.SenderOK: 1, model.SenderWarn: 2, model.SenderFail: 3}

// MTASTSVerdict says what MTA-STS senders do with name's MX host, given
// the coverage verdicts of the certificate served there with and without
// SNI (RFC 8461 §4.1: the host must match the policy's mx patterns, and
// its certificate must verify for it, PKIX; senders that send no SNI get
// the default certificate): the worst over the policies. A mismatch is a
// refusal under "enforce" and a warning under "testing"; a domain with
// mode "none" or no policy at hand counts for nothing.
func MTASTSVerdict(name, withSNI, withoutSNI string, policies []DomainPolicy) (verdict, detail string) {
	verdict = model.SenderNone
	var details []string
	for _, dp := range policies {
		v, d := domainMTASTS(name, withSNI, withoutSNI, dp)
		if senderRank[v] > senderRank[verdict] {
			verdict = v
		}
		details = append(details, d)
	}
	return verdict, strings.Join(details, "; ")
}

// domainMTASTS judges one domain's policy for name.
func domainMTASTS(name, withSNI, withoutSNI string, dp DomainPolicy) (verdict, detail string) {
	p := dp.Policy
	switch {
	case p == nil && dp.Error != "":
		return model.SenderNone, dp.Domain + ": policy not fetched: " + dp.Error
	case p == nil:
		return model.SenderNone, dp.Domain + ": policy not fetched"
	case p.Mode != model.MTASTSEnforce && p.Mode != model.MTASTSTesting:
		return model.SenderNone, fmt.Sprintf("%s: mode %q", dp.Domain, p.Mode)
	}
	var problems []string
	if !p.MatchesMX(name) {
		problems = append(problems, fmt.Sprintf("the policy's mx patterns (%s) do not match %s", strings.Join(p.MX, ", "), name))
	}
	if withSNI != model.VerdictOK {
		problems = append(problems, "certificate with SNI: "+withSNI)
	}
	if withoutSNI != model.VerdictOK {
		problems = append(problems, "certificate without SNI: "+withoutSNI)
	}
	prefix := dp.Domain + " (" + p.Mode + "): "
	switch {
	case len(problems) == 0:
		return model.SenderOK, prefix + "ok"
	case p.Mode == model.MTASTSEnforce:
		return model.SenderFail, prefix + strings.Join(problems, "; ")
	}
	return model.SenderWarn, prefix + strings.Join(problems, "; ")
}
