package synth

import (
	"strings"

	"github.com/miekg/dns"
)

// Question is one DNS question.
type Question struct {
	Name string // FQDN, lowercase
	Type uint16
}

// SRVServices are the SRV owners the inventory asks for under each domain
// (RFC 6186, RFC 8314, and Microsoft's autodiscover).
var SRVServices = []string{"_submission._tcp", "_submissions._tcp", "_imap._tcp", "_imaps._tcp", "_pop3._tcp", "_pop3s._tcp", "_autodiscover._tcp"}

// WildcardProbe is the label the inventory asks for under a domain whose
// conventional names answer, to detect a wildcard record
// (dnscheck.WildcardProbeLabel and a random suffix).
const WildcardProbe = "_certplan-wc-00000000."

// ConventionalPrefixes are the conventional names looked up under each domain.
var ConventionalPrefixes = []string{"mail", "smtp", "imap", "pop", "autoconfig", "autodiscover"}

// Questions returns the questions an inventory of domains asks, following
// certplan's inventory (issue 2): per domain its MX, the seven SRV owners,
// _mta-sts TXT, A and AAAA of the conventional names and, when one of them
// answers, the wildcard probe; then, once per
// distinct name found, its A and AAAA (when not asked already), CAA climbing
// from the name towards the root until a CAA set is found (each owner asked
// once), and TLSA at _25._tcp.<name> for MX targets. It is the ceiling
// client's query mix: the same questions, without the inventory's work.
func (w *World) Questions(domains []string) []Question {
	var qs []Question
	asked := make(map[Question]bool, len(domains)*24)
	ask := func(name string, t uint16) ([]dns.RR, int) {
		q := Question{name, t}
		if !asked[q] {
			asked[q] = true
			qs = append(qs, q)
		}
		return w.Lookup(name, t)
	}
	type found struct{ mx bool }
	names := map[string]*found{}
	var order []string
	use := func(n string, mx bool) {
		f := names[n]
		if f == nil {
			f = &found{}
			names[n] = f
			order = append(order, n)
		}
		f.mx = f.mx || mx
	}
	has := func(ans []dns.RR, t uint16) bool {
		for _, rr := range ans {
			if rr.Header().Rrtype == t {
				return true
			}
		}
		return false
	}
	for _, d := range domains {
		D := dns.Fqdn(strings.ToLower(d))
		ans, rc := ask(D, dns.TypeMX)
		if rc == Dropped {
			continue // the domain fails; its other questions time out too
		}
		for _, rr := range ans {
			if mx, ok := rr.(*dns.MX); ok && mx.Mx != "." {
				use(dns.CanonicalName(mx.Mx), true)
			}
		}
		for _, s := range SRVServices {
			ans, _ := ask(s+"."+D, dns.TypeSRV)
			for _, rr := range ans {
				if srv, ok := rr.(*dns.SRV); ok && srv.Target != "." {
					use(dns.CanonicalName(srv.Target), false)
				}
			}
		}
		if ans, _ := ask("_mta-sts."+D, dns.TypeTXT); has(ans, dns.TypeTXT) {
			use("mta-sts."+D, false)
		}
		v4, v6 := false, false
		for _, p := range ConventionalPrefixes {
			n := p + "." + D
			a, _ := ask(n, dns.TypeA)
			aaaa, _ := ask(n, dns.TypeAAAA)
			v4, v6 = v4 || has(a, dns.TypeA), v6 || has(aaaa, dns.TypeAAAA)
			if has(a, dns.TypeA) || has(aaaa, dns.TypeAAAA) {
				use(n, false)
			}
		}
		// The wildcard probe: a name that cannot exist, of the family the
		// conventional names answered with (the inventory's label has a
		// random suffix; any suffix gets the same NXDOMAIN here).
		switch wc := WildcardProbe + D; {
		case v4:
			ask(wc, dns.TypeA)
		case v6:
			ask(wc, dns.TypeAAAA)
		}
	}
	for _, n := range order {
		ask(n, dns.TypeA)
		ask(n, dns.TypeAAAA)
		for o := n; o != ""; {
			ans, _ := ask(o, dns.TypeCAA)
			if has(ans, dns.TypeCAA) {
				break
			}
			i := strings.IndexByte(o, '.')
			if i < 0 || i == len(o)-1 {
				break
			}
			o = o[i+1:]
		}
		if names[n].mx {
			ask("_25._tcp."+n, dns.TypeTLSA)
		}
	}
	return qs
}
