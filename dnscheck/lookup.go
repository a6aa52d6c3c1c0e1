package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// MaxCNAMEChain is the longest CNAME chain a lookup follows.
const MaxCNAMEChain = 8

// QueryError is a lookup that got no usable answer: no reply after every
// try, a reply with an error rcode, or a broken CNAME chain. Its message
// names the query and the cause, such as
// "MX broken-dns.test: SERVFAIL from 127.0.0.1:53".
type QueryError struct {
	Name string // the name asked, as sent (an FQDN)
	Type uint16
	// Rcode is the reply's rcode, or -1 when there was no usable reply.
	Rcode  int
	Server string
	// Err is the cause when Rcode is -1 (it wraps ErrTimeout on timeout).
	Err error
}

func (e *QueryError) Error() string {
	q := dns.TypeToString[e.Type] + " " + strings.TrimSuffix(e.Name, ".")
	if e.Rcode >= 0 {
		s := fmt.Sprintf("%s: %s", q, rcodeString(e.Rcode))
		if e.Rcode == dns.RcodeNameError {
			s += " (no such name)"
		}
		if e.Server != "" {
			s += " from " + e.Server
		}
		return s
	}
	return fmt.Sprintf("%s: %v", q, e.Err)
}

func (e *QueryError) Unwrap() error { return e.Err }

// Timeout reports whether the query got no answer in time.
func (e *QueryError) Timeout() bool { return errors.Is(e.Err, ErrTimeout) }

func rcodeString(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("rcode %d", rc)
}

// Answer is the outcome of a lookup with CNAMEs followed.
type Answer struct {
	// Chain lists the CNAME targets followed, in order, lowercase FQDNs.
	Chain []string
	// Records are the records of the type asked at the end of the chain.
	// They are shared with the cache: do not modify them.
	Records []dns.RR
	// NXDomain is true when the name, or the end of its chain, does not
	// exist. An empty Records without NXDomain is NODATA.
	NXDomain bool
	// AD is true when every reply on the way had the AD bit: a validating
	// resolver found the answer, records or their absence, secure (RFC
	// 4035 §3.2.3). Only questions sent with the DO bit get it (TLSA and
	// DNSKEY, see [Response.AD]).
	AD bool
	// TTL is the least TTL of Records or, for a NODATA or NXDOMAIN to a
	// question with the DO bit, the TTL of the SOA that came with it
	// ([Response.NegTTL]).
	TTL uint32
}

// Target returns the FQDN at the end of the chain: the last CNAME target,
// or name when there is no CNAME.
func (a *Answer) Target(name string) string {
	if len(a.Chain) > 0 {
		return a.Chain[len(a.Chain)-1]
	}
	return strings.ToLower(dns.Fqdn(name))
}

// Lookup asks for records of qtype at name, following CNAMEs across zones
// (a server that is not authoritative for a target answers with the chain
// so far; the target is then asked itself), up to [MaxCNAMEChain] and
// refusing loops. NXDOMAIN is not an error: it sets Answer.NXDomain.
// Errors are *QueryError.
func (r *Resolver) Lookup(ctx context.Context, name string, qtype uint16) (Answer, error) {
	return lookup(ctx, r, name, qtype, true)
}

// lookup is Lookup through q; without shared, the name itself is asked as
// a question no one else asks (not through a cache), its CNAME targets as
// shared ones.
func lookup(ctx context.Context, q Querier, name string, qtype uint16, shared bool) (Answer, error) {
	var ans Answer
	ad := true // every reply so far had the AD bit
	cur := canonical(name)
	for {
		asked := cur
		resp, err := q.Ask(ctx, asked, qtype, shared || len(ans.Chain) > 0)
		if err != nil {
			return ans, err
		}
		if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
			return ans, &QueryError{Name: asked, Type: qtype, Rcode: resp.Rcode, Server: resp.Server}
		}
		ad = ad && resp.AD
		// Walk the answer from the name asked: its records, or its CNAME.
		for {
			recs := recordsAt(resp.Answer, cur, qtype)
			if len(recs) > 0 {
				ans.Records, ans.AD, ans.TTL = recs, ad, minTTL(recs)
				return ans, nil
			}
			if qtype == dns.TypeCNAME {
				break
			}
			cn := cnameAt(resp.Answer, cur)
			if cn == "" {
				break
			}
			if cn == canonical(name) || slices.Contains(ans.Chain, cn) {
				return ans, &QueryError{Name: strings.ToLower(dns.Fqdn(name)), Type: qtype, Rcode: -1,
					Err: fmt.Errorf("CNAME loop: %s points back to %s", strings.TrimSuffix(cur, "."), strings.TrimSuffix(cn, "."))}
			}
			if len(ans.Chain) >= MaxCNAMEChain {
				return ans, &QueryError{Name: strings.ToLower(dns.Fqdn(name)), Type: qtype, Rcode: -1,
					Err: fmt.Errorf("CNAME chain longer than %d", MaxCNAMEChain)}
			}
			ans.Chain = append(ans.Chain, cn)
			cur = cn
		}
		if resp.Rcode == dns.RcodeNameError {
			// RFC 6604: the rcode speaks of the last name of the chain.
			ans.NXDomain, ans.AD, ans.TTL = true, ad, resp.NegTTL
			return ans, nil
		}
		if cur == asked || resp.NegZone != "" && under(cur, strings.TrimSuffix(resp.NegZone, ".")) {
			// NODATA, of the name or of the end of its chain: the SOA
			// of the zone holding that end came with it (RFC 2308 §2.2).
			ans.AD, ans.TTL = ad, resp.NegTTL
			return ans, nil
		}
		// The reply stopped at a CNAME target without its data, outside
		// the server's zones: ask it.
	}
}

// minTTL is the least TTL of rrs (an RRset's records share one, RFC 2181
// §5.2, which a resolver's cache may not keep).
func minTTL(rrs []dns.RR) uint32 {
	ttl := rrs[0].Header().Ttl
	for _, rr := range rrs[1:] {
		ttl = min(ttl, rr.Header().Ttl)
	}
	return ttl
}

// recordsAt returns the records of rrs of type qtype at owner. When they
// are all of rrs (the usual answer, without CNAME), it is rrs itself.
func recordsAt(rrs []dns.RR, owner string, qtype uint16) []dns.RR {
	at := func(rr dns.RR) bool {
		h := rr.Header()
		return h.Rrtype == qtype && h.Class == dns.ClassINET && strings.EqualFold(h.Name, owner)
	}
	i := 0
	for i < len(rrs) && at(rrs[i]) {
		i++
	}
	if i == len(rrs) {
		if i == 0 {
			return nil
		}
		return rrs[:i:i]
	}
	var out []dns.RR
	if i > 0 {
		out = append(out, rrs[:i]...)
	}
	for _, rr := range rrs[i+1:] {
		if at(rr) {
			out = append(out, rr)
		}
	}
	return out
}

func cnameAt(rrs []dns.RR, owner string) string {
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, owner) {
			return strings.ToLower(dns.Fqdn(c.Target))
		}
	}
	return ""
}
