// Package fastdns is the benchmark's DNS responder and its ceiling client.
//
// The responder answers from pre-packed messages: every positive answer of
// the synthetic world is packed once at start, and at query time the server
// only looks the question up, copies the bytes, patches the ID, the RD bit
// and the question's case, and writes. Negative answers are assembled from a
// pre-packed SOA per zone. UDP is served by several SO_REUSEPORT sockets, each
// read and written in batches (recvmmsg/sendmmsg), so the responder is not
// the bottleneck; answers too large for the client's UDP size come back
// truncated and are served over TCP on the same port.
//
// The general-purpose test server is internal/dnstest; this one trades
// features (no zone files, no updates) for speed.
package fastdns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"

	"github.com/certplan/certplan/bench/internal/synth"
)

// Wire limits.
const (
	maxUDPNoEDNS = 512
	maxUDPEDNS   = 1232 // what this server accepts to send over UDP (DNS flag day 2020)
	batch        = 64
	soReusePort  = 0xf // SO_REUSEPORT on Linux (the syscall package lacks it)
)

// Qtype buckets counted per query, for comparing query mixes.
var countedTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeSRV, dns.TypeTXT, dns.TypeCAA, dns.TypeTLSA, dns.TypeCNAME}

func typeIndex(t uint16) int {
	for i, x := range countedTypes {
		if x == t {
			return i
		}
	}
	return len(countedTypes)
}

// Stats counts what the server did.
type Stats struct {
	Queries   int64 `json:"queries"`
	UDP       int64 `json:"udp"`
	TCP       int64 `json:"tcp"`
	Prepacked int64 `json:"prepacked"` // answered from a pre-packed positive answer
	Negative  int64 `json:"negative"`  // NXDOMAIN or NODATA from a pre-packed SOA
	Slow      int64 `json:"slow"`      // packed at query time (unusual questions)
	Dropped   int64 `json:"dropped"`   // never answered (dead zones)
	Truncated int64 `json:"truncated"` // UDP answers sent with TC
	// UDPReads is how many recvmmsg calls returned queries: UDP ÷ UDPReads
	// is the batch the responder gets, larger when it is busy.
	UDPReads int64            `json:"udp_reads"`
	ByType   map[string]int64 `json:"by_type"`
}

type counters struct {
	queries, udp, tcp, prepacked, negative, slow, dropped, truncated, reads int64
	byType                                                                  [9]int64
	_                                                                       [64]byte // keep workers' counters on separate cache lines
}

type zoneInfo struct {
	soa  []byte // the SOA record, owner uncompressed
	dead bool
}

// Server is a running responder.
type Server struct {
	world  *synth.World
	pos    map[string][]byte // wire qname (lowercase) + qtype -> packed response, ID 0
	exists map[string]bool   // wire names that exist
	zones  map[string]zoneInfo

	udp   []*net.UDPConn
	tcp   net.Listener
	addr  string
	wg    sync.WaitGroup
	done  atomic.Bool
	cmu   sync.Mutex
	cs    []*counters
	tcpCs counters // under cmu
	conns map[net.Conn]bool
}

// Options configure Start.
type Options struct {
	// Addr is the listen address; default 127.0.0.1:0.
	Addr string
	// Sockets is the number of UDP sockets sharing the port; default 4.
	Sockets int
}

// Start packs the world's answers and serves them.
func Start(w *synth.World, opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Sockets <= 0 {
		opts.Sockets = 4
	}
	s := &Server{world: w, conns: map[net.Conn]bool{}}
	if err := s.pack(); err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
			if serr == nil {
				// Room for bursts: a full socket buffer drops queries.
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<20)
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 8<<20)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	// With port 0, the UDP port the kernel picks may be taken over TCP by
	// another process: try again with another.
	var err error
	for try := 0; try < 20; try++ {
		if err = s.listen(lc, opts); err == nil {
			break
		}
		for _, c := range s.udp {
			c.Close()
		}
		s.udp = nil
		if _, port, _ := net.SplitHostPort(opts.Addr); port != "0" {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	for _, uc := range s.udp {
		c := &counters{}
		s.cs = append(s.cs, c)
		s.wg.Add(1)
		go s.serveUDP(uc, c)
	}
	s.wg.Add(1)
	go s.serveTCP()
	return s, nil
}

// listen opens the UDP sockets and the TCP listener on one port.
func (s *Server) listen(lc net.ListenConfig, opts Options) error {
	addr := opts.Addr
	for i := 0; i < opts.Sockets; i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp4", addr)
		if err != nil {
			return err
		}
		uc := pc.(*net.UDPConn)
		s.udp = append(s.udp, uc)
		addr = uc.LocalAddr().String() // the others share its port
	}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	s.addr, s.tcp = addr, ln
	return nil
}

// Addr is the host:port served over UDP and TCP.
func (s *Server) Addr() string { return s.addr }

// Close stops the server.
func (s *Server) Close() error {
	s.done.Store(true)
	for _, c := range s.udp {
		c.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	s.cmu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.cmu.Unlock()
	s.wg.Wait()
	return nil
}

// Stats returns the counters summed over every socket and TCP connection
// (a TCP connection's counts are added when it closes).
func (s *Server) Stats() Stats {
	var sum counters
	add := func(c *counters) {
		sum.queries += atomic.LoadInt64(&c.queries)
		sum.udp += atomic.LoadInt64(&c.udp)
		sum.tcp += atomic.LoadInt64(&c.tcp)
		sum.prepacked += atomic.LoadInt64(&c.prepacked)
		sum.negative += atomic.LoadInt64(&c.negative)
		sum.slow += atomic.LoadInt64(&c.slow)
		sum.dropped += atomic.LoadInt64(&c.dropped)
		sum.truncated += atomic.LoadInt64(&c.truncated)
		sum.reads += atomic.LoadInt64(&c.reads)
		for i := range c.byType {
			sum.byType[i] += atomic.LoadInt64(&c.byType[i])
		}
	}
	for _, c := range s.cs {
		add(c)
	}
	s.cmu.Lock()
	add(&s.tcpCs)
	s.cmu.Unlock()
	st := Stats{Queries: sum.queries, UDP: sum.udp, TCP: sum.tcp, Prepacked: sum.prepacked, Negative: sum.negative,
		Slow: sum.slow, Dropped: sum.dropped, Truncated: sum.truncated, UDPReads: sum.reads, ByType: map[string]int64{}}
	for i, n := range sum.byType {
		name := "other"
		if i < len(countedTypes) {
			name = dns.TypeToString[countedTypes[i]]
		}
		if n > 0 {
			st.ByType[name] = n
		}
	}
	return st
}

// wireName returns the uncompressed wire form of a lowercase FQDN.
func wireName(fqdn string) []byte {
	var b []byte
	if fqdn == "." {
		return []byte{0}
	}
	for _, l := range strings.Split(strings.TrimSuffix(fqdn, "."), ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

func key(fqdn string, t uint16) string {
	b := wireName(fqdn)
	return string(binary.BigEndian.AppendUint16(b, t))
}

// pack builds every positive answer, and the SOA of every zone.
func (s *Server) pack() error {
	w := s.world
	s.pos = make(map[string][]byte, len(w.RRs)*2)
	s.exists = make(map[string]bool, len(w.RRs)*2)
	s.zones = make(map[string]zoneInfo, len(w.Zones))
	// Answers for a CNAME owner follow the chain whatever the type asked.
	chased := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCAA, dns.TypeMX, dns.TypeTXT, dns.TypeSRV, dns.TypeTLSA}
	for owner := range w.RRs {
		types := w.Types(owner)
		for _, t := range types {
			if t == dns.TypeCNAME {
				types = append(types, chased...)
				break
			}
		}
		for _, t := range types {
			k := key(owner, t)
			if _, ok := s.pos[k]; ok {
				continue
			}
			ans, rc := w.Lookup(owner, t)
			if rc != dns.RcodeSuccess && rc != dns.RcodeNameError || len(ans) == 0 {
				continue
			}
			m := new(dns.Msg)
			m.SetQuestion(owner, t)
			m.Response = true
			m.RecursionAvailable = true
			m.Rcode = rc
			m.Answer = ans
			// A chain that ends without the records asked, in one of
			// the world's zones, is a NODATA or NXDOMAIN of its end: the
			// SOA of the end's zone goes with it (RFC 2308 §2.1, §2.2).
			if c, ok := ans[len(ans)-1].(*dns.CNAME); ok && t != dns.TypeCNAME {
				if z, ok := w.Zone(dns.CanonicalName(c.Target)); ok && !w.Dead[z] {
					m.Ns = []dns.RR{w.Zones[z]}
				}
			}
			m.Compress = true
			b, err := m.Pack()
			if err != nil {
				return fmt.Errorf("pack %s %s: %w", owner, dns.TypeToString[t], err)
			}
			s.pos[k] = b
		}
	}
	for z, soa := range w.Zones {
		b := make([]byte, dns.Len(soa)+16)
		n, err := dns.PackRR(soa, b, 0, nil, false)
		if err != nil {
			return fmt.Errorf("pack soa %s: %w", z, err)
		}
		s.zones[string(wireName(z))] = zoneInfo{soa: b[:n], dead: w.Dead[z]}
	}
	for o := range w.RRs {
		for n := o; n != ""; {
			if !w.Exists(n) {
				break
			}
			s.exists[string(wireName(n))] = true
			i := strings.IndexByte(n, '.')
			if i < 0 || i == len(n)-1 {
				break
			}
			n = n[i+1:]
		}
	}
	for z := range w.Zones {
		s.exists[string(wireName(z))] = true
	}
	return nil
}

// query is a parsed question: positions inside the query message.
type query struct {
	qend  int    // end of the question section
	key   []byte // lowercase wire name + qtype
	nlen  int    // length of the wire name
	qtype uint16
	edns  bool
	size  int // the client's UDP size
}

// parse reads the question of q into qq, using kb for the key. It reports
// false when the message needs the slow path.
func parse(q []byte, kb []byte, qq *query) bool {
	if len(q) < 12+5 || binary.BigEndian.Uint16(q[4:]) != 1 || q[2]&0x78 != 0 {
		return false // not exactly one question, or not a QUERY
	}
	i := 12
	k := kb[:0]
	for {
		if i >= len(q) {
			return false
		}
		l := int(q[i])
		if l == 0 {
			k = append(k, 0)
			i++
			break
		}
		if l&0xc0 != 0 || i+1+l > len(q) || len(k)+l+1 > 255 {
			return false
		}
		k = append(k, byte(l))
		for _, c := range q[i+1 : i+1+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			k = append(k, c)
		}
		i += 1 + l
	}
	if i+4 > len(q) || binary.BigEndian.Uint16(q[i+2:]) != dns.ClassINET {
		return false
	}
	qq.nlen = len(k)
	qq.qtype = binary.BigEndian.Uint16(q[i:])
	k = append(k, q[i], q[i+1])
	qq.key = k
	qq.qend = i + 4
	qq.edns = false
	qq.size = maxUDPNoEDNS
	if binary.BigEndian.Uint16(q[10:]) >= 1 && qq.qend+11 <= len(q) && q[qq.qend] == 0 && binary.BigEndian.Uint16(q[qq.qend+1:]) == dns.TypeOPT {
		qq.edns = true
		qq.size = max(maxUDPNoEDNS, min(int(binary.BigEndian.Uint16(q[qq.qend+3:])), maxUDPEDNS))
	}
	return true
}

var opt = []byte{0, 0, 41, maxUDPEDNS >> 8, maxUDPEDNS & 0xff, 0, 0, 0, 0, 0, 0}

// answer writes the response to q into out and returns it, or nil to stay
// silent (a dead zone, or a query it cannot parse). Over UDP, an answer
// larger than the client's UDP size goes out truncated (TC, no records).
func (s *Server) answer(q, out, kb []byte, udp bool, c *counters) []byte {
	atomic.AddInt64(&c.queries, 1)
	var qq query
	if !parse(q, kb, &qq) {
		atomic.AddInt64(&c.slow, 1)
		return s.slowAnswer(q, out, udp)
	}
	atomic.AddInt64(&c.byType[typeIndex(qq.qtype)], 1)
	var r []byte
	if p, ok := s.pos[string(qq.key)]; ok {
		atomic.AddInt64(&c.prepacked, 1)
		r = append(out[:0], p...)
		copy(r[12:], q[12:qq.qend]) // the question as asked (0x20 case)
	} else {
		// Negative: find the closest zone.
		name := qq.key[:qq.nlen]
		var z zoneInfo
		found := false
		for off := 0; off < len(name); off += int(name[off]) + 1 {
			if z, found = s.zones[string(name[off:])]; found {
				break
			}
			if name[off] == 0 {
				break
			}
		}
		r = append(out[:0], q[:qq.qend]...)
		r[2] = 0x80 | q[2]&0x01 // QR, RD as asked
		binary.BigEndian.PutUint16(r[6:], 0)
		binary.BigEndian.PutUint16(r[8:], 0)
		binary.BigEndian.PutUint16(r[10:], 0)
		switch {
		case !found:
			r[3] = 0x80 | dns.RcodeRefused
		case z.dead:
			atomic.AddInt64(&c.dropped, 1)
			return nil
		default:
			atomic.AddInt64(&c.negative, 1)
			r[3] = 0x80
			if !s.exists[string(name)] {
				r[3] |= dns.RcodeNameError
			}
			binary.BigEndian.PutUint16(r[8:], 1)
			r = append(r, z.soa...)
		}
	}
	r[0], r[1] = q[0], q[1]
	r[2] = r[2]&^0x01 | q[2]&0x01
	if qq.edns {
		binary.BigEndian.PutUint16(r[10:], 1)
		r = append(r, opt...)
	}
	if udp && len(r) > qq.size {
		atomic.AddInt64(&c.truncated, 1)
		r = r[:qq.qend]
		r[2] |= 0x02 // TC
		binary.BigEndian.PutUint16(r[6:], 0)
		binary.BigEndian.PutUint16(r[8:], 0)
		binary.BigEndian.PutUint16(r[10:], 0)
		if qq.edns {
			binary.BigEndian.PutUint16(r[10:], 1)
			r = append(r, opt...)
		}
	}
	return r
}

// slowAnswer handles what the fast path does not: any question form, packed
// at query time.
func (s *Server) slowAnswer(q, out []byte, udp bool) []byte {
	var m dns.Msg
	if err := m.Unpack(q); err != nil || m.Response {
		return nil
	}
	r := new(dns.Msg)
	r.SetReply(&m)
	r.RecursionAvailable = true
	if m.Opcode != dns.OpcodeQuery || len(m.Question) != 1 {
		r.Rcode = dns.RcodeNotImplemented
	} else {
		ans, rc := s.world.Lookup(m.Question[0].Name, m.Question[0].Qtype)
		if rc == synth.Dropped {
			return nil
		}
		r.Rcode = rc
		r.Answer = ans
	}
	size := maxUDPNoEDNS
	if o := m.IsEdns0(); o != nil {
		size = max(maxUDPNoEDNS, min(int(o.UDPSize()), maxUDPEDNS))
		r.SetEdns0(maxUDPEDNS, false)
	}
	if udp {
		r.Truncate(size)
	}
	b, err := r.PackBuffer(out)
	if err != nil {
		return nil
	}
	return b
}

func (s *Server) serveUDP(uc *net.UDPConn, c *counters) {
	defer s.wg.Done()
	pc := ipv4.NewPacketConn(uc)
	in := make([]ipv4.Message, batch)
	outMsgs := make([]ipv4.Message, batch)
	outBufs := make([][]byte, batch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 4096)}
		outBufs[i] = make([]byte, maxUDPEDNS+1024)
		outMsgs[i].Buffers = [][]byte{nil}
	}
	kb := make([]byte, 0, 260)
	for {
		n, err := pc.ReadBatch(in, 0)
		if err != nil {
			if s.done.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		k := 0
		atomic.AddInt64(&c.reads, 1)
		for i := 0; i < n; i++ {
			atomic.AddInt64(&c.udp, 1)
			r := s.answer(in[i].Buffers[0][:in[i].N], outBufs[k], kb, true, c)
			if r == nil {
				continue
			}
			outMsgs[k].Buffers[0] = r
			outMsgs[k].Addr = in[i].Addr
			k++
		}
		for off := 0; off < k; {
			m, err := pc.WriteBatch(outMsgs[off:k], 0)
			if err != nil {
				if s.done.Load() {
					return
				}
				break // drop the rest of the batch: the client retries
			}
			off += m
		}
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	for {
		conn, err := s.tcp.Accept()
		if err != nil {
			if s.done.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		s.cmu.Lock()
		s.conns[conn] = true
		s.cmu.Unlock()
		s.wg.Add(1)
		go s.serveConn(conn)
	}
}

func (s *Server) serveConn(conn net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.cmu.Lock()
		delete(s.conns, conn)
		s.cmu.Unlock()
		conn.Close()
	}()
	var c counters
	defer func() {
		s.cmu.Lock()
		t := &s.tcpCs
		t.queries += c.queries
		t.tcp += c.tcp
		t.prepacked += c.prepacked
		t.negative += c.negative
		t.slow += c.slow
		t.dropped += c.dropped
		for i := range c.byType {
			t.byType[i] += c.byType[i]
		}
		s.cmu.Unlock()
	}()
	q := make([]byte, 65535)
	out := make([]byte, 65537)
	kb := make([]byte, 0, 260)
	var lb [2]byte
	for {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(conn, lb[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(conn, q[:n]); err != nil {
			return
		}
		atomic.AddInt64(&c.tcp, 1)
		r := s.answer(q[:n], out[2:], kb, false, &c)
		if r == nil {
			continue
		}
		binary.BigEndian.PutUint16(out, uint16(len(r)))
		if _, err := conn.Write(out[:2+len(r)]); err != nil {
			return
		}
	}
}
