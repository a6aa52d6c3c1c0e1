package rollover

// This file asks DNS what [Step] decides on: the resolver (validated or
// not), the zone's apex and authoritative servers, and each of them
// directly.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/certplan/certplan/model"
)

// Observer asks DNS about TLSA records. The zero value is not usable: set
// Resolver.
type Observer struct {
	// Resolver is the validating resolver, "host:port".
	Resolver string
	// AuthPort is the port the authoritative servers are asked on (0: 53).
	// Only tests set it (see the package documentation).
	AuthPort int
	// Timeout bounds each question (0: 5 s).
	Timeout time.Duration
}

// Lookup is the TLSA set at [Owner](Name) as the resolver gives it.
type Lookup struct {
	Name    string
	Records []model.TLSA
	// AD: the resolver validated the answer (RFC 4035 section 3.2.3).
	AD  bool
	Err string
}

// DANEPin is what the lookup's records pin, by the inventory's one rule
// ([model.Name.DANEPin], [model.PortTLSA.DANEPin] for a submission
// port's owner).
func (l Lookup) DANEPin() (pin, reason string) {
	if port, host, ok := portOwner(l.Name); ok {
		m := l.Model()
		pt := model.PortTLSA{Port: port, Records: m.TLSA, DNSSEC: m.TLSADNSSEC, Error: m.TLSAError}
		return pt.DANEPin(host)
	}
	m := l.Model()
	return m.DANEPin()
}

// Model is the lookup as an inventory name, for [model.Name.DANEPin]: the
// one rule of what TLSA pins. Records without the AD bit are "unknown"
// (whether the resolver validates at all is not asked here), so they pin.
func (l Lookup) Model() model.Name {
	n := model.Name{Name: l.Name, TLSA: l.Records, TLSAError: l.Err, TLSADNSSEC: model.DNSSECUnknown}
	if l.AD {
		n.TLSADNSSEC = model.DNSSECSecure
	}
	return n
}

// Seen is what DNS says of one record: the "3 1 1" record of an SPKI at
// _25._tcp.<Name>.
type Seen struct {
	Name string `json:"name"`
	// Validated: the resolver answered with the record, and with the AD bit.
	Validated bool `json:"validated"`
	// Resolver says what the resolver answered when not Validated.
	Resolver string `json:"resolver,omitempty"`
	// Zone is the zone the record is in; Servers its authoritative
	// servers, one per address, as asked directly.
	Zone    string       `json:"zone,omitempty"`
	Servers []ServerSeen `json:"servers,omitempty"`
	// TTL is the largest TTL of the TLSA set on the servers.
	TTL uint32 `json:"ttl,omitempty"`
	// Err is why the zone or its servers could not be found.
	Err string `json:"error,omitempty"`
}

// ServerSeen is one authoritative server's answer.
type ServerSeen struct {
	NS   string `json:"ns"`
	Addr string `json:"addr"`
	Has  bool   `json:"has"`
	Err  string `json:"error,omitempty"`
}

// OnServers is how many of the servers have the record, of how many.
func (s Seen) OnServers() (n, of int) {
	for _, sv := range s.Servers {
		if sv.Has {
			n++
		}
	}
	return n, len(s.Servers)
}

// Everywhere reports whether the record is validated through the
// resolver and on every authoritative server.
func (s Seen) Everywhere() bool {
	n, of := s.OnServers()
	return s.Validated && s.Err == "" && of > 0 && n == of
}

// Nowhere reports whether no authoritative server has the record any
// more (every one answered, without it).
func (s Seen) Nowhere() bool {
	if s.Err != "" || len(s.Servers) == 0 {
		return false
	}
	for _, sv := range s.Servers {
		if sv.Has || sv.Err != "" {
			return false
		}
	}
	return true
}

// LookupTLSA asks the resolver for the TLSA set at [Owner](name), with
// DO set so that a validating resolver reports the AD bit.
func (o *Observer) LookupTLSA(ctx context.Context, name string) Lookup {
	l := Lookup{Name: strings.TrimSuffix(strings.ToLower(name), ".")}
	m := o.question(Owner(name), dns.TypeTLSA, true)
	r, err := o.exchange(ctx, m, o.Resolver)
	switch {
	case err != nil:
		l.Err = err.Error()
	case r.Rcode == dns.RcodeNameError:
		l.AD = r.AuthenticatedData
	case r.Rcode != dns.RcodeSuccess:
		l.Err = "resolver answered " + dns.RcodeToString[r.Rcode]
	default:
		l.AD = r.AuthenticatedData
		for _, rr := range r.Answer {
			if t, ok := rr.(*dns.TLSA); ok {
				l.Records = append(l.Records, model.TLSA{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType, Data: strings.ToLower(t.Certificate)})
			}
		}
	}
	return l
}

// Observe asks where the "3 1 1 spki" record of each name is seen.
func (o *Observer) Observe(ctx context.Context, names []string, spki string) []Seen {
	out := make([]Seen, 0, len(names))
	for _, n := range names {
		out = append(out, o.observe(ctx, n, spki))
	}
	return out
}

func (o *Observer) observe(ctx context.Context, name, spki string) Seen {
	s := Seen{Name: strings.TrimSuffix(strings.ToLower(name), ".")}
	l := o.LookupTLSA(ctx, name)
	switch {
	case l.Err != "":
		s.Resolver = l.Err
	case !hasRecord(l.Records, spki):
		s.Resolver = "the resolver does not return the record yet"
	case !l.AD:
		s.Resolver = "the resolver returns the record but did not validate it (no AD bit): is the zone signed, and does the resolver validate?"
	default:
		s.Validated = true
	}
	zone, servers, err := o.Servers(ctx, Owner(name))
	if err != nil {
		s.Err = err.Error()
		return s
	}
	s.Zone = zone
	for _, sv := range servers {
		ss, ttl := o.askServer(ctx, sv, Owner(name), spki)
		s.Servers = append(s.Servers, ss)
		s.TTL = max(s.TTL, ttl)
	}
	return s
}

func hasRecord(recs []model.TLSA, spki string) bool {
	return slices.ContainsFunc(recs, func(t model.TLSA) bool {
		return t.Usage == 3 && t.Selector == 1 && t.MatchingType == 1 && strings.EqualFold(t.Data, spki)
	})
}

// askServer asks one authoritative server directly (no recursion) for
// the TLSA set at owner; it has the record when it answers with authority
// and the set holds it.
func (o *Observer) askServer(ctx context.Context, sv ServerSeen, owner, spki string) (ServerSeen, uint32) {
	m := o.question(owner, dns.TypeTLSA, false)
	m.RecursionDesired = false
	r, err := o.exchange(ctx, m, sv.Addr)
	switch {
	case err != nil:
		sv.Err = err.Error()
		return sv, 0
	case r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError:
		sv.Err = "answered " + dns.RcodeToString[r.Rcode]
		return sv, 0
	case !r.Authoritative:
		sv.Err = "answered without authority (AA not set): not a server of the zone"
		return sv, 0
	}
	var ttl uint32
	for _, rr := range r.Answer {
		if t, ok := rr.(*dns.TLSA); ok {
			ttl = max(ttl, t.Hdr.Ttl)
			if t.Usage == 3 && t.Selector == 1 && t.MatchingType == 1 && strings.EqualFold(t.Certificate, spki) {
				sv.Has = true
			}
		}
	}
	return sv, ttl
}

// Servers finds the zone that owner is in and the addresses of its
// authoritative servers, through the resolver.
func (o *Observer) Servers(ctx context.Context, owner string) (zone string, servers []ServerSeen, err error) {
	if zone, err = o.Zone(ctx, owner); err != nil {
		return "", nil, err
	}
	r, err := o.exchange(ctx, o.question(zone, dns.TypeNS, false), o.Resolver)
	if err != nil {
		return zone, nil, fmt.Errorf("NS %s: %w", zone, err)
	}
	var nss []string
	for _, rr := range r.Answer {
		if ns, ok := rr.(*dns.NS); ok {
			nss = append(nss, dns.CanonicalName(ns.Ns))
		}
	}
	if len(nss) == 0 {
		return zone, nil, fmt.Errorf("NS %s: no NS records (%s)", zone, dns.RcodeToString[r.Rcode])
	}
	slices.Sort(nss)
	port := strconv.Itoa(cmp.Or(o.AuthPort, 53))
	for _, ns := range nss {
		addrs, err := o.addresses(ctx, ns)
		if err != nil {
			servers = append(servers, ServerSeen{NS: ns, Err: err.Error()})
			continue
		}
		for _, a := range addrs {
			servers = append(servers, ServerSeen{NS: ns, Addr: net.JoinHostPort(a, port)})
		}
	}
	return zone, servers, nil
}

// Zone is the apex of the zone owner is in: the closest name at or above
// it with an SOA record (a NODATA or NXDOMAIN answer names it too, in its
// authority section).
func (o *Observer) Zone(ctx context.Context, owner string) (string, error) {
	for n := dns.CanonicalName(owner); ; {
		r, err := o.exchange(ctx, o.question(n, dns.TypeSOA, false), o.Resolver)
		if err != nil {
			return "", fmt.Errorf("zone of %s: SOA %s: %w", owner, n, err)
		}
		for _, rr := range append(slices.Clone(r.Answer), r.Ns...) {
			if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(dns.CanonicalName(soa.Hdr.Name), n) {
				return dns.CanonicalName(soa.Hdr.Name), nil
			}
		}
		i, end := dns.NextLabel(n, 0)
		if end || n == "." {
			return "", fmt.Errorf("zone of %s: no SOA found", owner)
		}
		n = n[i:]
	}
}

// addresses are ns's IPv4 and IPv6 addresses.
func (o *Observer) addresses(ctx context.Context, ns string) ([]string, error) {
	var out []string
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r, err := o.exchange(ctx, o.question(ns, t, false), o.Resolver)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", dns.TypeToString[t], ns, err)
		}
		for _, rr := range r.Answer {
			switch a := rr.(type) {
			case *dns.A:
				out = append(out, a.A.String())
			case *dns.AAAA:
				out = append(out, a.AAAA.String())
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no address for " + ns)
	}
	return out, nil
}

func (o *Observer) question(name string, t uint16, do bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), t)
	m.SetEdns0(1232, do)
	// RFC 6840 section 5.7: AD in a query asks for the AD bit in the answer.
	m.AuthenticatedData = do
	return m
}

// exchange asks server, over TCP when the UDP answer is truncated.
func (o *Observer) exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	if server == "" {
		return nil, errors.New("no resolver")
	}
	c := &dns.Client{Timeout: cmp.Or(o.Timeout, 5*time.Second)}
	r, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, server)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", server, err)
	}
	return r, nil
}
