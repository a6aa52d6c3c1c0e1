// Package dnstest is a small authoritative DNS server for tests, the lab and
// benchmarks: it serves BIND zone files over UDP and TCP on loopback, chases
// CNAMEs inside its zones, synthesises answers from wildcard records
// (RFC 4592), answers NXDOMAIN and NODATA with the SOA, accepts RFC 2136
// updates, signed with a TSIG key when one is set (so the dnsupdate
// provider can publish DNS-01 records), and injects faults per name:
// SERVFAIL, REFUSED, silence, delay, and truncation that forces a TCP
// retry.
//
// It is a real server on a real socket, not an interface with canned
// answers: the code under test speaks DNS to it exactly as to any other.
package dnstest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Fault is an injected failure for queries of one name.
type Fault int

const (
	FaultNone     Fault = iota
	FaultServfail       // answer SERVFAIL
	FaultRefused        // answer REFUSED
	FaultDrop           // never answer (the client times out)
	FaultTruncate       // over UDP, answer with TC set and no records (the client must retry over TCP)
)

// Server is an authoritative DNS server. The zero value is not usable; call New.
type Server struct {
	mu     sync.RWMutex
	zones  map[string]*dns.SOA            // origin (fqdn, lowercase) -> SOA
	rrs    map[string]map[uint16][]dns.RR // owner (fqdn, lowercase) -> type -> records
	exists map[string]bool                // every owner and its ancestors inside a zone (empty non-terminals)
	faults map[string]Fault               // qname (fqdn, lowercase) -> fault
	tfault map[string]Fault               // "qname TYPE" -> fault, before faults
	delay  map[string]time.Duration       // qname -> delay before answering
	entNX  bool                           // NXDOMAIN for empty non-terminals (SetENTNXDOMAIN)
	tsig   map[string]string              // update key name (canonical) -> base64 secret (SetUpdateKey)

	queries atomic.Int64
	qmu     sync.Mutex
	perName map[string]int // "name TYPE" -> count

	udp, tcp *dns.Server
	addr     string
}

// New returns a server with no zones.
func New() *Server {
	return &Server{
		zones:   map[string]*dns.SOA{},
		rrs:     map[string]map[uint16][]dns.RR{},
		exists:  map[string]bool{},
		faults:  map[string]Fault{},
		tfault:  map[string]Fault{},
		delay:   map[string]time.Duration{},
		perName: map[string]int{},
	}
}

// AddZone parses a zone in BIND format with the given origin. The zone must
// contain a SOA record at the origin; if it has none, a default one is added.
func (s *Server) AddZone(origin, text string) error {
	origin = dns.CanonicalName(origin)
	zp := dns.NewZoneParser(strings.NewReader(text), origin, origin)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return fmt.Errorf("zone %s: %w", origin, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.zones[origin]; !ok {
		s.zones[origin] = defaultSOA(origin)
	}
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok && dns.CanonicalName(soa.Hdr.Name) == origin {
			s.zones[origin] = soa
			continue
		}
		s.addLocked(rr)
	}
	s.exists[origin] = true
	return nil
}

// AddZoneFile reads a zone file. Its origin is the file's $ORIGIN if it has
// one, otherwise the file name without a trailing ".db" or ".zone".
func (s *Server) AddZoneFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return s.AddZone(ZoneFileOrigin(path, string(b)), string(b))
}

// AddZoneDir adds every regular file in dir as a zone file.
func (s *Server) AddZoneDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			if err := s.AddZoneFile(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// ZoneFileOrigin returns the origin of a zone file: its first $ORIGIN
// directive, else its base name without ".db" or ".zone".
func ZoneFileOrigin(path, text string) string {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.EqualFold(f[0], "$ORIGIN") {
			return dns.CanonicalName(f[1])
		}
	}
	base := filepath.Base(path)
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".db"), ".zone")
	return dns.CanonicalName(base)
}

func defaultSOA(origin string) *dns.SOA {
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
		Ns:  "ns." + origin, Mbox: "hostmaster." + origin,
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60,
	}
}

// Add adds records, given in presentation format ("mail.d.test. 300 IN A 127.0.0.2").
// The owner must be inside a zone.
func (s *Server) Add(records ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			return err
		}
		if s.zoneOfLocked(rr.Header().Name) == "" {
			return fmt.Errorf("%s: not inside any zone of this server", rr.Header().Name)
		}
		s.addLocked(rr)
	}
	return nil
}

// Remove deletes every record of type t at name (t == dns.TypeANY: all types).
func (s *Server) Remove(name string, t uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(dns.CanonicalName(name), t, nil)
}

func (s *Server) addLocked(rr dns.RR) {
	h := rr.Header()
	h.Name = dns.CanonicalName(h.Name)
	if h.Ttl == 0 {
		h.Ttl = 300
	}
	m := s.rrs[h.Name]
	if m == nil {
		m = map[uint16][]dns.RR{}
		s.rrs[h.Name] = m
	}
	for _, old := range m[h.Rrtype] {
		if dns.IsDuplicate(old, rr) {
			return
		}
	}
	m[h.Rrtype] = append(m[h.Rrtype], rr)
	zone := s.zoneOfLocked(h.Name)
	for n := h.Name; ; {
		s.exists[n] = true
		if n == zone || n == "." {
			break
		}
		i, _ := dns.NextLabel(n, 0)
		n = n[i:]
		if n == "" {
			break
		}
	}
}

// removeLocked deletes records at name: of type t (ANY: all), or only rr if non-nil.
func (s *Server) removeLocked(name string, t uint16, rr dns.RR) {
	m := s.rrs[name]
	if m == nil {
		return
	}
	for typ, list := range m {
		if t != dns.TypeANY && typ != t {
			continue
		}
		if rr == nil {
			delete(m, typ)
			continue
		}
		kept := list[:0]
		for _, x := range list {
			if !dns.IsDuplicate(x, rr) {
				kept = append(kept, x)
			}
		}
		if len(kept) == 0 {
			delete(m, typ)
		} else {
			m[typ] = kept
		}
	}
}

// SetFault makes queries for name fail with f (FaultNone clears it).
func (s *Server) SetFault(name string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = dns.CanonicalName(name)
	if f == FaultNone {
		delete(s.faults, name)
	} else {
		s.faults[name] = f
	}
}

// SetFaultType makes queries of type t for name fail with f (FaultNone
// clears it); queries of other types are answered (or fail as SetFault
// says). A name whose AAAA lookup fails while its A answers, say.
func (s *Server) SetFaultType(name string, t uint16, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := dns.CanonicalName(name) + " " + dns.TypeToString[t]
	if f == FaultNone {
		delete(s.tfault, key)
	} else {
		s.tfault[key] = f
	}
}

// SetDelay delays answers for name by d (0 clears it).
func (s *Server) SetDelay(name string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = dns.CanonicalName(name)
	if d == 0 {
		delete(s.delay, name)
	} else {
		s.delay[name] = d
	}
}

// SetENTNXDOMAIN makes the server answer NXDOMAIN for an empty
// non-terminal (a name with no records of its own but names below it), as
// some old servers do, against RFC 8020 and RFC 1034 §4.3.2.
func (s *Server) SetENTNXDOMAIN(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entNX = on
}

// SetUpdateKey makes the server accept only RFC 2136 updates signed with
// the TSIG key name and its base64 secret (RFC 8945; any HMAC algorithm),
// answering NOTAUTH to others, and sign its answers to them, as a primary
// server configured for DNS-01 updates does. Call it before Start.
func (s *Server) SetUpdateKey(name, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tsig == nil {
		s.tsig = map[string]string{}
	}
	s.tsig[dns.CanonicalName(name)] = secret
}

// Queries returns how many queries the server has received.
func (s *Server) Queries() int64 { return s.queries.Load() }

// QueryCount returns how many queries for name and type (such as dns.TypeMX)
// the server has received.
func (s *Server) QueryCount(name string, t uint16) int {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.perName[dns.CanonicalName(name)+" "+dns.TypeToString[t]]
}

// QueryCounts returns a copy of the per-name counters: "name TYPE" (name
// an FQDN, lowercase) -> queries received.
func (s *Server) QueryCounts() map[string]int {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	out := make(map[string]int, len(s.perName))
	for k, v := range s.perName {
		out[k] = v
	}
	return out
}

// ResetCounts clears the query counters.
func (s *Server) ResetCounts() {
	s.queries.Store(0)
	s.qmu.Lock()
	s.perName = map[string]int{}
	s.qmu.Unlock()
}

// Start listens on addr (such as "127.0.0.1:0") over UDP and TCP on the same
// port and serves until Close.
func (s *Server) Start(addr string) error {
	var pc net.PacketConn
	var ln net.Listener
	var err error
	// With port 0, pick a UDP port and take the same TCP port; retry on clashes.
	for try := 0; try < 20; try++ {
		pc, err = net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if !strings.HasSuffix(addr, ":0") {
			return err
		}
	}
	if err != nil {
		return err
	}
	s.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h, MsgAcceptFunc: acceptUpdates, TsigSecret: s.tsig}
	s.tcp = &dns.Server{Listener: ln, Handler: h, MsgAcceptFunc: acceptUpdates, TsigSecret: s.tsig}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	<-started
	<-started
	return nil
}

// acceptUpdates is miekg/dns's default filter, but lets RFC 2136 UPDATE
// messages (which carry records in the authority section) through.
func acceptUpdates(dh dns.Header) dns.MsgAcceptAction {
	if int(dh.Bits>>11)&0xF == dns.OpcodeUpdate {
		return dns.MsgAccept
	}
	return dns.DefaultMsgAcceptFunc(dh)
}

// Addr is the "host:port" the server listens on (UDP and TCP).
func (s *Server) Addr() string { return s.addr }

// Close stops the server.
func (s *Server) Close() error {
	var err error
	if s.udp != nil {
		err = s.udp.Shutdown()
	}
	if s.tcp != nil {
		if e := s.tcp.Shutdown(); err == nil {
			err = e
		}
	}
	return err
}

// zoneOfLocked returns the longest zone origin that name is in, or "".
func (s *Server) zoneOfLocked(name string) string {
	name = dns.CanonicalName(name)
	for n := name; ; {
		if _, ok := s.zones[n]; ok {
			return n
		}
		i, end := dns.NextLabel(n, 0)
		if end || n == "." {
			return ""
		}
		n = n[i:]
	}
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	qname := dns.CanonicalName(q.Name)
	s.qmu.Lock()
	s.perName[qname+" "+dns.TypeToString[q.Qtype]]++
	s.qmu.Unlock()

	if req.Opcode == dns.OpcodeUpdate {
		w.WriteMsg(s.update(req, w.TsigStatus()))
		return
	}

	s.mu.RLock()
	fault, ok := s.tfault[qname+" "+dns.TypeToString[q.Qtype]]
	if !ok {
		fault = s.faults[qname]
	}
	delay := s.delay[qname]
	s.mu.RUnlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	_, isUDP := w.RemoteAddr().(*net.UDPAddr)
	switch fault {
	case FaultDrop:
		return
	case FaultServfail, FaultRefused:
		m := new(dns.Msg)
		rc := dns.RcodeServerFailure
		if fault == FaultRefused {
			rc = dns.RcodeRefused
		}
		m.SetRcode(req, rc)
		w.WriteMsg(m)
		return
	case FaultTruncate:
		if isUDP {
			m := new(dns.Msg)
			m.SetReply(req)
			m.Authoritative = true
			m.Truncated = true
			w.WriteMsg(m)
			return
		}
	}

	m := s.answer(req)
	if isUDP {
		size := dns.MinMsgSize
		if o := req.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// answer builds an authoritative answer: records of the type asked, CNAMEs
// chased inside this server's zones, NXDOMAIN or NODATA with the SOA.
func (s *Server) answer(req *dns.Msg) *dns.Msg {
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetReply(req)
	if o := req.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), false)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	name := dns.CanonicalName(q.Name)
	zone := s.zoneOfLocked(name)
	if zone == "" {
		m.SetRcode(req, dns.RcodeRefused)
		return m
	}
	m.Authoritative = true
	seen := map[string]bool{}
	for hops := 0; hops < 16; hops++ {
		if seen[name] {
			break // CNAME loop: return what we have
		}
		seen[name] = true
		set := s.rrs[name]
		// RFC 4592: a name that does not exist takes the records of the
		// wildcard at its closest encloser, with its own name as owner.
		wild := false
		if !s.exists[name] {
			if src := s.wildcardLocked(name, zone); src != "" {
				set, wild = s.rrs[src], true
			}
		}
		cp := func(rr dns.RR) dns.RR {
			c := dns.Copy(rr)
			if wild {
				c.Header().Name = name
			}
			return c
		}
		if q.Qtype == dns.TypeSOA && name == zone {
			m.Answer = append(m.Answer, dns.Copy(s.zones[zone]))
			return m
		}
		if rrs := set[q.Qtype]; len(rrs) > 0 {
			for _, rr := range rrs {
				m.Answer = append(m.Answer, cp(rr))
			}
			return m
		}
		if q.Qtype == dns.TypeANY && len(set) > 0 {
			for _, rrs := range set {
				for _, rr := range rrs {
					m.Answer = append(m.Answer, cp(rr))
				}
			}
			sort.Slice(m.Answer, func(i, j int) bool { return m.Answer[i].String() < m.Answer[j].String() })
			return m
		}
		if c := set[dns.TypeCNAME]; len(c) > 0 && q.Qtype != dns.TypeCNAME {
			m.Answer = append(m.Answer, cp(c[0]))
			target := dns.CanonicalName(c[0].(*dns.CNAME).Target)
			z := s.zoneOfLocked(target)
			if z == "" {
				return m // the resolver follows the chain elsewhere
			}
			zone, name = z, target
			continue
		}
		// NODATA or NXDOMAIN for the current name.
		m.Ns = append(m.Ns, dns.Copy(s.zones[zone]))
		if !s.exists[name] && !wild || s.entNX && len(set) == 0 && !wild && name != zone {
			m.Rcode = dns.RcodeNameError
		}
		return m
	}
	return m
}

// wildcardLocked returns the owner of the wildcard that answers for name,
// a name that does not exist in zone, or "" (RFC 4592 §3.3.1): "*." and
// name's closest encloser, its longest ancestor that exists (an empty
// non-terminal counts: it blocks a wildcard above it).
func (s *Server) wildcardLocked(name, zone string) string {
	for n := name; n != zone; {
		i, end := dns.NextLabel(n, 0)
		if end {
			return ""
		}
		n = n[i:]
		if s.exists[n] {
			if src := "*." + n; s.exists[src] {
				return src
			}
			return ""
		}
	}
	return ""
}

// update applies an RFC 2136 UPDATE (no prerequisites). With an update
// key (SetUpdateKey) it must be signed with it: tsigErr is the server's
// check of the signature.
func (s *Server) update(req *dns.Msg, tsigErr error) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tsig) > 0 {
		t := req.IsTsig()
		if t == nil || tsigErr != nil {
			m.Rcode = dns.RcodeNotAuth
			return m
		}
		defer m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	zone := dns.CanonicalName(req.Question[0].Name)
	if _, ok := s.zones[zone]; !ok {
		m.Rcode = dns.RcodeNotAuth
		return m
	}
	for _, rr := range req.Ns {
		h := rr.Header()
		name := dns.CanonicalName(h.Name)
		if s.zoneOfLocked(name) == "" {
			m.Rcode = dns.RcodeNotZone
			return m
		}
		switch h.Class {
		case dns.ClassANY: // delete an RRset (or all RRsets)
			s.removeLocked(name, h.Rrtype, nil)
		case dns.ClassNONE: // delete one RR
			c := dns.Copy(rr)
			c.Header().Class = dns.ClassINET
			s.removeLocked(name, h.Rrtype, c)
		default:
			s.addLocked(dns.Copy(rr))
		}
	}
	return m
}
