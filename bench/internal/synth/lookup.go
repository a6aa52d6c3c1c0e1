package synth

import (
	"strings"

	"github.com/miekg/dns"
)

// Rcode of a lookup, plus the silence of a dead name server.
const (
	Dropped = -1 // the name server never answers
)

// Zone returns the closest enclosing zone apex of name (FQDN, lowercase) and
// whether there is one.
func (w *World) Zone(name string) (string, bool) {
	name = dns.CanonicalName(name)
	for {
		if _, ok := w.Zones[name]; ok {
			return name, true
		}
		i := strings.IndexByte(name, '.')
		if i < 0 || i == len(name)-1 {
			return "", false
		}
		name = name[i+1:]
	}
}

// Exists reports whether name owns records, or is an empty non-terminal
// (an ancestor of an owner inside its zone), or is a zone apex.
func (w *World) Exists(name string) bool {
	if w.exists == nil {
		w.exists = make(map[string]bool, len(w.RRs)*2)
		for o := range w.RRs {
			z, ok := w.Zone(o)
			for n := o; ok; {
				w.exists[n] = true
				if n == z {
					break
				}
				n = n[strings.IndexByte(n, '.')+1:]
			}
		}
		for z := range w.Zones {
			w.exists[z] = true
		}
	}
	return w.exists[dns.CanonicalName(name)]
}

// Lookup answers (name, qtype) as a recursive resolver would from the world:
// the answer records (a CNAME chain followed inside the world, then the
// records of its end), and the rcode: NOERROR (NODATA when ans is empty),
// NXDOMAIN, REFUSED (outside every zone) or Dropped (a dead zone).
func (w *World) Lookup(name string, qtype uint16) (ans []dns.RR, rcode int) {
	name = dns.CanonicalName(name)
	for hop := 0; hop < 8; hop++ {
		z, ok := w.Zone(name)
		if !ok {
			if hop > 0 {
				return ans, dns.RcodeSuccess
			}
			return nil, dns.RcodeRefused
		}
		if w.Dead[z] {
			return nil, Dropped
		}
		rrs := w.RRs[name]
		var cname *dns.CNAME
		for _, rr := range rrs {
			if rr.Header().Rrtype == qtype {
				ans = append(ans, rr)
			}
			if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if cname == nil || qtype == dns.TypeCNAME {
			if len(rrs) == 0 && !w.Exists(name) {
				return ans, dns.RcodeNameError
			}
			return ans, dns.RcodeSuccess
		}
		ans = append(ans, cname)
		name = dns.CanonicalName(cname.Target)
	}
	return ans, dns.RcodeServerFailure
}

// Types returns the record types name owns.
func (w *World) Types(name string) []uint16 {
	var ts []uint16
	seen := map[uint16]bool{}
	for _, rr := range w.RRs[dns.CanonicalName(name)] {
		t := rr.Header().Rrtype
		if !seen[t] {
			seen[t] = true
			ts = append(ts, t)
		}
	}
	return ts
}
