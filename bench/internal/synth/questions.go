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
// certplan's inventory (dnscheck, after issue 20): per domain its MX (and
// nothing more when the domain does not exist), _tcp.D and, unless that
// answered NXDOMAIN, the seven SRV owners below it, _mta-sts TXT, A of
// the conventional names and AAAA of those whose A was not NXDOMAIN, and,
// when one of them answers and no name just under the domain answered
// NXDOMAIN itself, the wildcard probe; then, once per distinct name found,
// its A and AAAA (AAAA not after an A NXDOMAIN for the domain's own
// names), and for the names that point to a server IP the CAA climbing
// from the name towards the root until a CAA set is found (each owner
// asked once; an alias's own question asked at the end of its CNAME
// chain) and, for MX targets, TLSA at _25._tcp of the end of its
// CNAME chain, then of the name; and (issue 18) the DNSKEY of the root
// once, the probe of the resolver's validation, and for the names with a
// submission role (an SRV target of _submission._tcp or
// _submissions._tcp, or smtp.D) that point here, TLSA at _465._tcp and
// _587._tcp as at _25._tcp. It is the ceiling client's query mix: the
// same questions, without the inventory's work.
func (w *World) Questions(domains []string) []Question {
	q := &questions{w: w, asked: make(map[Question]bool, len(domains)*16), names: map[string]*found{}}
	if len(domains) > 0 {
		q.ask(".", dns.TypeDNSKEY)
	}
	for _, d := range domains {
		q.domain(dns.Fqdn(strings.ToLower(d)))
	}
	for _, n := range q.order {
		q.name(n)
	}
	return q.qs
}

// IsDANE reports whether q is one of the questions DANE added (issue 18):
// the root's DNSKEY (the validation probe) and TLSA at the submission
// ports. Issue 20's questions per domain leave them out.
func IsDANE(q Question) bool {
	return q.Type == dns.TypeDNSKEY ||
		q.Type == dns.TypeTLSA && (strings.HasPrefix(q.Name, "_465._tcp.") || strings.HasPrefix(q.Name, "_587._tcp."))
}

// questions gathers the questions of an inventory.
type questions struct {
	w     *World
	qs    []Question
	asked map[Question]bool
	names map[string]*found
	order []string
}

type found struct {
	mx  bool
	sub bool   // a submission role: TLSA at the submission ports
	own string // the domain the name is under, if any
}

func (q *questions) ask(name string, t uint16) ([]dns.RR, int) {
	k := Question{name, t}
	if !q.asked[k] {
		q.asked[k] = true
		q.qs = append(q.qs, k)
	}
	return q.w.Lookup(name, t)
}

func (q *questions) use(n, d string, mx, sub bool) {
	f := q.names[n]
	if f == nil {
		f = &found{}
		if n == d || strings.HasSuffix(n, "."+d) {
			f.own = d
		}
		q.names[n] = f
		q.order = append(q.order, n)
	}
	f.mx = f.mx || mx
	f.sub = f.sub || sub
}

func has(ans []dns.RR, t uint16) bool {
	for _, rr := range ans {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

// nxdomain reports whether a lookup's answer is an NXDOMAIN of the name
// itself (not of the end of a CNAME chain).
func nxdomain(ans []dns.RR, rc int) bool { return rc == dns.RcodeNameError && len(ans) == 0 }

// domain asks a domain's own questions.
func (q *questions) domain(D string) {
	ans, rc := q.ask(D, dns.TypeMX)
	if rc == Dropped || rc == dns.RcodeNameError {
		return // the domain fails, or does not exist: nothing more is asked
	}
	for _, rr := range ans {
		if mx, ok := rr.(*dns.MX); ok && mx.Mx != "." {
			q.use(dns.CanonicalName(mx.Mx), D, true, false)
		}
	}
	noWildcard := false
	if ans, rc := q.ask("_tcp."+D, dns.TypeSRV); nxdomain(ans, rc) {
		noWildcard = true
	} else {
		for _, s := range SRVServices {
			ans, _ := q.ask(s+"."+D, dns.TypeSRV)
			sub := s == "_submission._tcp" || s == "_submissions._tcp"
			for _, rr := range ans {
				if srv, ok := rr.(*dns.SRV); ok && srv.Target != "." {
					q.use(dns.CanonicalName(srv.Target), D, false, sub)
				}
			}
		}
	}
	if ans, _ := q.ask("_mta-sts."+D, dns.TypeTXT); has(ans, dns.TypeTXT) {
		q.use("mta-sts."+D, D, false, false)
	}
	v4, v6 := false, false
	for _, p := range ConventionalPrefixes {
		n := p + "." + D
		a, rc := q.ask(n, dns.TypeA)
		if rc == dns.RcodeNameError {
			noWildcard = noWildcard || len(a) == 0
			continue
		}
		aaaa, _ := q.ask(n, dns.TypeAAAA)
		v4, v6 = v4 || has(a, dns.TypeA), v6 || has(aaaa, dns.TypeAAAA)
		if has(a, dns.TypeA) || has(aaaa, dns.TypeAAAA) {
			q.use(n, D, false, p == "smtp")
		}
	}
	if noWildcard {
		return
	}
	// The wildcard probe: a name that cannot exist, of the family the
	// conventional names answered with (the inventory's label has a
	// random suffix; any suffix gets the same NXDOMAIN here).
	switch wc := WildcardProbe + D; {
	case v4:
		q.ask(wc, dns.TypeA)
	case v6:
		q.ask(wc, dns.TypeAAAA)
	}
}

// name asks the questions of a name found: its addresses, and for a name
// that points here its CAA and, for an MX target, its TLSA.
func (q *questions) name(n string) {
	f := q.names[n]
	a, rc := q.ask(n, dns.TypeA)
	var aaaa []dns.RR
	if f.own == "" || rc != dns.RcodeNameError {
		aaaa, _ = q.ask(n, dns.TypeAAAA)
	}
	if rc == Dropped || !q.here(a) && !q.here(aaaa) {
		return
	}
	// The name's own CAA question goes to the end of its CNAME chain.
	end := chainEnd(a)
	for o := n; o != ""; {
		ask := o
		if end != "" {
			ask, end = end, ""
		}
		ans, _ := q.ask(ask, dns.TypeCAA)
		if has(ans, dns.TypeCAA) {
			break
		}
		i := strings.IndexByte(o, '.')
		if i < 0 || i == len(o)-1 {
			break
		}
		o = o[i+1:]
	}
	if f.mx {
		q.tlsa("_25._tcp.", n, a)
	}
	if f.sub {
		q.tlsa("_465._tcp.", n, a)
		q.tlsa("_587._tcp.", n, a)
	}
}

// tlsa asks the TLSA records at prefix of the end of n's CNAME chain (a is
// its A answer), then, without records there, of n.
func (q *questions) tlsa(prefix, n string, a []dns.RR) {
	if end := chainEnd(a); end != "" {
		if ans, _ := q.ask(prefix+end, dns.TypeTLSA); has(ans, dns.TypeTLSA) {
			return
		}
	}
	q.ask(prefix+n, dns.TypeTLSA)
}

// here reports whether an answer holds one of the server IPs.
func (q *questions) here(ans []dns.RR) bool {
	for _, rr := range ans {
		var ip string
		switch rr := rr.(type) {
		case *dns.A:
			ip = rr.A.String()
		case *dns.AAAA:
			ip = rr.AAAA.String()
		}
		for _, s := range q.w.Config.ServerIPs {
			if ip == s {
				return true
			}
		}
	}
	return false
}

// chainEnd returns the last CNAME target of an answer, or "".
func chainEnd(ans []dns.RR) string {
	end := ""
	for _, rr := range ans {
		if c, ok := rr.(*dns.CNAME); ok {
			end = dns.CanonicalName(c.Target)
		}
	}
	return end
}
