package dnstest

import (
	"net"

	"github.com/miekg/dns"
)

// Resolver is a recursive resolver's stand-in on loopback for tests that
// need the AD bit without a signed zone: it forwards every question to a
// backend server and, when Validating, sets AD on the answers to
// questions that set DO, as a validating resolver does for a zone whose
// signatures verify (RFC 4035 section 3.2.3). It validates nothing: tests
// of DNSSEC itself use a real validating resolver (internal/dnssectest).
type Resolver struct {
	srv        *dns.Server
	addr       string
	Validating bool
}

// StartResolver starts a Resolver on 127.0.0.1 (UDP) forwarding to backend.
func StartResolver(backend string, validating bool) (*Resolver, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Resolver{addr: pc.LocalAddr().String(), Validating: validating}
	r.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		c := &dns.Client{Net: "tcp"}
		m, _, err := c.Exchange(req, backend)
		if err != nil {
			m = new(dns.Msg)
			m.SetRcode(req, dns.RcodeServerFailure)
		}
		m.Authoritative, m.RecursionAvailable = false, true
		o := req.IsEdns0()
		m.AuthenticatedData = r.Validating && o != nil && o.Do()
		if o != nil {
			m.Truncate(int(o.UDPSize()))
		} else {
			m.Truncate(dns.MinMsgSize)
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	r.srv.NotifyStartedFunc = func() { close(started) }
	go r.srv.ActivateAndServe()
	<-started
	return r, nil
}

// Addr is the resolver's "host:port".
func (r *Resolver) Addr() string { return r.addr }

// Close stops it.
func (r *Resolver) Close() error { return r.srv.Shutdown() }
