package dnscheck

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Config configures a [Resolver]. The zero value queries the system's
// resolvers with the defaults below.
type Config struct {
	// Servers are the resolvers to ask, "host:port" (the port defaults to
	// 53). Empty: the nameservers of /etc/resolv.conf.
	Servers []string
	// Timeout is how long one try waits for an answer; default 2s.
	Timeout time.Duration
	// Retries is how many more tries follow a try that timed out, each on
	// the next server; default 2, negative for none.
	Retries int
	// MaxInFlight bounds the queries under way at once; default 64.
	MaxInFlight int
	// QPS caps the queries sent per second (a token bucket); 0: no cap.
	QPS float64
	// Conns is how many UDP sockets each server gets; default 4.
	Conns int
	// UDPSize is the EDNS0 payload size advertised; default 1232 (the DNS
	// flag day 2020 value, which avoids IP fragmentation).
	UDPSize uint16
	// CacheSize is how many answers the cache keeps at least (and at most
	// twice as many); default DefaultCacheSize.
	CacheSize int
	// Logger receives debug diagnostics; nil: none.
	Logger *slog.Logger
}

// Resolver is a DNS client built for many queries: persistent UDP sockets
// (each with one reader that matches replies to queries by ID and
// question), bounded concurrency, retries on timeout, TCP when a reply is
// truncated, an optional rate cap, and a cache with in-flight merging so a
// name asked by a thousand domains is queried once.
//
// The bound on queries under way counts a query from its send until its
// reply, or until it has waited several times the server's usual answer
// time: a query that is presumably lost waits out its timeout without
// holding back the others, so silent name servers cost one timeout each, in
// parallel.
//
// The cache keeps the answers (not the messages) of the last
// Config.CacheSize to 2×CacheSize names asked, those asked again staying
// longest, so names shared between domains are asked once while the memory
// it holds stays bounded however many names a run asks.
//
// It is safe for concurrent use. Use one Resolver per run, and Close it.
type Resolver struct {
	cfg     Config
	servers []*server
	sem     chan struct{}
	limiter *limiter
	log     *slog.Logger
	queries atomic.Int64
	next    atomic.Uint32

	mu   sync.Mutex
	cur  map[qkey]*call // the cache: this generation,
	prev map[qkey]*call // and the one before, whose entries move to cur when asked
}

type qkey struct {
	name  string
	qtype uint16
}

type call struct {
	done chan struct{}
	resp Response
	err  error
}

// Response is the part of a reply that lookups use.
type Response struct {
	Rcode  int
	Answer []dns.RR
	// Server is the "host:port" that answered.
	Server string
}

// SystemResolvers returns the nameservers of a resolv.conf file
// ("/etc/resolv.conf" when path is empty) as "host:port".
func SystemResolvers(path string) ([]string, error) {
	if path == "" {
		path = "/etc/resolv.conf"
	}
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("resolvers: %w", err)
	}
	var out []string
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("resolvers: %s lists no nameserver", path)
	}
	return out, nil
}

// NewResolver returns a Resolver for cfg. It opens the UDP sockets (which
// sends nothing); Close releases them.
func NewResolver(cfg Config) (*Resolver, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Retries == 0 {
		cfg.Retries = 2
	} else if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 4
	}
	if cfg.UDPSize == 0 {
		cfg.UDPSize = 1232
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.QPS < 0 {
		return nil, fmt.Errorf("resolver: qps %v: must not be negative", cfg.QPS)
	}
	if len(cfg.Servers) == 0 {
		s, err := SystemResolvers("")
		if err != nil {
			return nil, err
		}
		cfg.Servers = s
	}
	r := &Resolver{
		cfg:  cfg,
		sem:  make(chan struct{}, cfg.MaxInFlight),
		log:  cfg.Logger,
		cur:  make(map[qkey]*call),
		prev: make(map[qkey]*call),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if cfg.QPS > 0 {
		r.limiter = newLimiter(cfg.QPS)
	}
	for _, s := range cfg.Servers {
		addr, err := serverAddr(s)
		if err != nil {
			r.Close()
			return nil, err
		}
		srv := &server{addr: addr}
		for i := 0; i < cfg.Conns; i++ {
			u, err := dialUDP(addr, r.sem, cfg.Timeout)
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("resolver %s: %w", addr, err)
			}
			srv.conns = append(srv.conns, u)
		}
		r.servers = append(r.servers, srv)
	}
	return r, nil
}

// DefaultCacheSize is Config.CacheSize's default.
const DefaultCacheSize = 1 << 15

// serverAddr checks a "host:port" or bare host and adds port 53.
func serverAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// A bare address, IPv6 included.
		host, port = strings.Trim(s, "[]"), "53"
	}
	if host == "" {
		return "", fmt.Errorf("resolver %q: no host", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("resolver %q: bad port", s)
	}
	return net.JoinHostPort(host, port), nil
}

// Close releases the sockets. Queries under way fail.
func (r *Resolver) Close() error {
	for _, s := range r.servers {
		for _, u := range s.conns {
			u.c.Close()
		}
	}
	return nil
}

// Servers returns the resolvers in use, as "host:port".
func (r *Resolver) Servers() []string {
	out := make([]string, len(r.servers))
	for i, s := range r.servers {
		out[i] = s.addr
	}
	return out
}

// Queries returns how many queries the Resolver has sent, counting every
// try and TCP retry.
func (r *Resolver) Queries() int64 { return r.queries.Load() }

// Query asks for name and type once per Resolver: the first caller sends
// the query, callers that ask while it is under way wait for its result,
// and later callers get it from the cache (while it holds it). Errors are
// *QueryError: no answer after every try, or a malformed reply. A reply
// with an error rcode (SERVFAIL, NXDOMAIN, ...) is a Response, not an
// error.
func (r *Resolver) Query(ctx context.Context, name string, qtype uint16) (*Response, error) {
	k := qkey{canonical(name), qtype}
	for {
		r.mu.Lock()
		c := r.cur[k]
		if c == nil {
			if c = r.prev[k]; c != nil {
				// Asked again: keep it another generation.
				delete(r.prev, k)
				r.cur[k] = c
			}
		}
		if c != nil {
			r.mu.Unlock()
			select {
			case <-c.done:
			default:
				select {
				case <-c.done:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			if c.err != nil && isCanceled(c.err) && ctx.Err() == nil {
				// The caller who asked was cancelled; this one was not.
				continue
			}
			if c.err != nil {
				return nil, c.err
			}
			return &c.resp, nil
		}
		c = &call{done: make(chan struct{})}
		if len(r.cur) >= r.cfg.CacheSize {
			r.prev, r.cur = r.cur, make(map[qkey]*call, r.cfg.CacheSize)
		}
		r.cur[k] = c
		r.mu.Unlock()

		c.resp, _, c.err = r.exchange(ctx, k.name, qtype, false)
		if c.err != nil && ctx.Err() != nil {
			// A cancelled caller must not poison the cache for others.
			r.mu.Lock()
			if r.cur[k] == c {
				delete(r.cur, k)
			} else if r.prev[k] == c {
				delete(r.prev, k)
			}
			r.mu.Unlock()
		}
		close(c.done)
		if c.err != nil {
			return nil, c.err
		}
		return &c.resp, nil
	}
}

// queryOnce is Query without the cache: for names that only one caller
// asks.
func (r *Resolver) queryOnce(ctx context.Context, fqdn string, qtype uint16) (*Response, error) {
	resp, _, err := r.exchange(ctx, fqdn, qtype, false)
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// canonical returns name as a lowercase FQDN, without allocating when it is
// one already.
func canonical(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(dns.Fqdn(name))
		}
	}
	return dns.Fqdn(name)
}

// Exchange sends one query for name and type, without the cache, and
// returns the whole reply and the server that sent it. It retries on
// timeout and switches to TCP when the reply is truncated; with several
// servers, a SERVFAIL or REFUSED is tried on the next one.
func (r *Resolver) Exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, string, error) {
	resp, m, err := r.exchange(ctx, canonical(name), qtype, true)
	return m, resp.Server, err
}

// exchange sends a query with its retries. The reply comes parsed in the
// Response; with whole, also as a message.
func (r *Resolver) exchange(ctx context.Context, fqdn string, qtype uint16, whole bool) (Response, *dns.Msg, error) {
	tries := 1 + r.cfg.Retries
	start := int(r.next.Add(1))
	var lastErr error
	var last reply
	var lastSrv string
	for i := 0; i < tries; i++ {
		srv := r.servers[(start+i)%len(r.servers)]
		if err := r.acquire(ctx); err != nil {
			return Response{}, nil, err
		}
		if err := r.limiter.wait(ctx); err != nil {
			<-r.sem
			return Response{}, nil, err
		}
		// The slot goes with the query: the socket frees it at the reply,
		// or when the query is presumed lost.
		rep := srv.exchangeUDP(ctx, r, fqdn, qtype, whole)
		if rep.err == nil && rep.tc {
			r.log.Debug("truncated reply, retrying over TCP", "name", fqdn, "type", dns.TypeToString[qtype], "server", srv.addr)
			if err := r.acquire(ctx); err != nil {
				return Response{}, nil, err
			}
			rep = srv.exchangeTCP(ctx, r, fqdn, qtype)
			<-r.sem
		}
		if rep.err != nil {
			if ctx.Err() != nil {
				return Response{}, nil, ctx.Err()
			}
			r.log.Debug("query failed", "name", fqdn, "type", dns.TypeToString[qtype], "server", srv.addr, "try", i+1, "err", rep.err)
			lastErr = rep.err
			continue
		}
		if (rep.rcode == dns.RcodeServerFailure || rep.rcode == dns.RcodeRefused) && len(r.servers) > 1 && i+1 < tries {
			last, lastSrv = rep, srv.addr
			continue
		}
		return Response{Rcode: rep.rcode, Answer: rep.answer, Server: srv.addr}, rep.msg, nil
	}
	if lastSrv != "" {
		return Response{Rcode: last.rcode, Answer: last.answer, Server: lastSrv}, last.msg, nil
	}
	return Response{}, nil, &QueryError{Name: fqdn, Type: qtype, Rcode: -1,
		Err: fmt.Errorf("no answer from %s after %d tries of %s: %w", strings.Join(r.Servers(), ", "), tries, r.cfg.Timeout, lastErr)}
}

// acquire takes a slot of the MaxInFlight bound.
func (r *Resolver) acquire(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrTimeout is wrapped by errors for queries that got no answer in time.
var ErrTimeout = errors.New("timeout")

// server is one resolver: a pool of connected UDP sockets, and TCP on demand.
type server struct {
	addr  string
	conns []*udpConn
	next  atomic.Uint32
}

func (s *server) exchangeUDP(ctx context.Context, r *Resolver, fqdn string, qtype uint16, whole bool) reply {
	u := s.conns[int(s.next.Add(1))%len(s.conns)]
	rep := u.exchange(ctx, fqdn, qtype, r.cfg.UDPSize, whole, &r.queries)
	if rep.err != nil && rep.malformed {
		rep.err = fmt.Errorf("malformed reply from %s: %w", s.addr, rep.err)
	}
	return rep
}

func (s *server) exchangeTCP(ctx context.Context, r *Resolver, fqdn string, qtype uint16) reply {
	c := &dns.Client{Net: "tcp", Timeout: r.cfg.Timeout}
	q := new(dns.Msg)
	q.SetQuestion(fqdn, qtype)
	q.RecursionDesired = true
	q.SetEdns0(r.cfg.UDPSize, false)
	r.queries.Add(1)
	m, _, err := c.ExchangeContext(ctx, q, s.addr)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return reply{err: fmt.Errorf("tcp %s: %w", s.addr, ErrTimeout)}
		}
		return reply{err: fmt.Errorf("tcp %s: %w", s.addr, err)}
	}
	// miekg/dns checks the ID; check the question too.
	if !m.Response || len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, q.Question[0].Name) ||
		m.Question[0].Qtype != q.Question[0].Qtype || m.Question[0].Qclass != q.Question[0].Qclass {
		return reply{err: fmt.Errorf("tcp %s: reply does not match the question", s.addr)}
	}
	return reply{rcode: m.Rcode, answer: m.Answer, msg: m}
}

// udpConn is a connected UDP socket shared by many queries. One reader
// goroutine hands each reply to the query with its ID and question; a reply
// that matches no query under way (late, duplicated or spoofed) is dropped.
// The kernel already drops datagrams from any other address or port.
//
// Queries have no timer each: a sweep, every few milliseconds while queries
// are under way, fails those past their timeout or whose context ended, and
// frees the MaxInFlight slot of those presumed lost (no reply after several
// times the socket's smoothed reply time).
type udpConn struct {
	c       *net.UDPConn
	sem     chan struct{} // the Resolver's bound; a waiter holding a slot frees it once
	timeout time.Duration
	tick    time.Duration
	sweeper *time.Timer

	mu       sync.Mutex
	pending  map[uint16]*waiter
	dead     error
	sweeping bool
	srtt     time.Duration // smoothed reply time, and its variation (RFC 6298)
	rttvar   time.Duration
}

type waiter struct {
	q      []byte // the packed query: its question section is compared to the reply's
	qend   int    // where the question section ends
	whole  bool   // keep the whole message, not only the answers
	ch     chan reply
	ctx    context.Context
	done   <-chan struct{} // ctx.Done()
	sent   time.Time
	expire time.Time // sent + timeout
	hold   time.Time // when the slot is freed without a reply
	slot   bool      // holds a MaxInFlight slot
}

// reply is a parsed answer, or the error of one try.
type reply struct {
	rcode     int
	tc        bool
	answer    []dns.RR
	msg       *dns.Msg // with waiter.whole
	err       error
	malformed bool
}

// minHold is the least time a query holds its slot without a reply; it is
// also the hold before the first reply gives a measure.
const minHold = 10 * time.Millisecond

func dialUDP(addr string, sem chan struct{}, timeout time.Duration) (*udpConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, err
	}
	u := &udpConn{c: c, sem: sem, timeout: timeout, pending: map[uint16]*waiter{},
		tick: min(5*time.Millisecond, max(timeout/4, time.Millisecond)), rttvar: minHold / 4}
	u.sweeper = time.AfterFunc(time.Hour, u.sweep)
	u.sweeper.Stop()
	go u.read()
	return u, nil
}

var (
	packPool   = sync.Pool{New: func() any { b := make([]byte, 512); return &b }}
	waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan reply, 1)} }}
)

// packQuery writes a query for fqdn and qtype, with the RD bit and an EDNS0
// OPT record advertising udpSize, into b, ID 0.
func packQuery(b []byte, fqdn string, qtype, udpSize uint16) ([]byte, int, error) {
	b = b[:cap(b)]
	clear(b[:12])
	b[2] = 0x01                           // RD
	binary.BigEndian.PutUint16(b[4:], 1)  // QDCOUNT
	binary.BigEndian.PutUint16(b[10:], 1) // ARCOUNT: the OPT record
	off, err := dns.PackDomainName(fqdn, b, 12, nil, false)
	if err != nil {
		return nil, 0, err
	}
	if off+4+11 > len(b) {
		return nil, 0, errors.New("query too long")
	}
	binary.BigEndian.PutUint16(b[off:], qtype)
	binary.BigEndian.PutUint16(b[off+2:], dns.ClassINET)
	qend := off + 4
	opt := b[qend : qend+11]
	clear(opt)
	binary.BigEndian.PutUint16(opt[1:], dns.TypeOPT)
	binary.BigEndian.PutUint16(opt[3:], udpSize)
	return b[:qend+11], qend, nil
}

func (u *udpConn) exchange(ctx context.Context, fqdn string, qtype, udpSize uint16, whole bool, count *atomic.Int64) reply {
	bp := packPool.Get().(*[]byte)
	defer packPool.Put(bp)
	b, qend, err := packQuery(*bp, fqdn, qtype, udpSize)
	if err != nil {
		<-u.sem
		return reply{err: err}
	}
	w := waiterPool.Get().(*waiter)
	w.q, w.qend, w.whole, w.ctx, w.done = b, qend, whole, ctx, ctx.Done()

	u.mu.Lock()
	if u.dead != nil {
		err := u.dead
		u.mu.Unlock()
		<-u.sem
		u.put(w)
		return reply{err: err}
	}
	var id uint16
	for {
		id = uint16(rand.Uint32())
		if _, busy := u.pending[id]; !busy {
			break
		}
	}
	binary.BigEndian.PutUint16(b, id)
	w.sent = time.Now()
	w.expire = w.sent.Add(u.timeout)
	w.hold = w.sent.Add(min(u.timeout, max(minHold, u.srtt+4*u.rttvar)))
	w.slot = true
	u.pending[id] = w
	if !u.sweeping {
		u.sweeping = true
		u.sweeper.Reset(u.tick)
	}
	u.mu.Unlock()

	count.Add(1)
	if _, err := u.c.Write(b); err != nil {
		u.mu.Lock()
		mine := u.pending[id] == w
		if mine {
			delete(u.pending, id)
			u.free(w)
		}
		u.mu.Unlock()
		if !mine {
			<-w.ch // delivered meanwhile: drop it
		}
		u.put(w)
		return reply{err: err}
	}
	rep := <-w.ch
	u.put(w)
	return rep
}

// put returns a waiter, out of pending and with its reply taken, to the pool.
func (u *udpConn) put(w *waiter) {
	w.q, w.ctx, w.done = nil, nil, nil
	waiterPool.Put(w)
}

// free gives back w's slot if it still holds it. Call with u.mu held.
func (u *udpConn) free(w *waiter) {
	if w.slot {
		w.slot = false
		<-u.sem
	}
}

// sweep fails the queries past their timeout or whose context ended, and
// frees the slots of those presumed lost.
func (u *udpConn) sweep() {
	now := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	for id, w := range u.pending {
		var err error
		if !now.Before(w.expire) {
			err = fmt.Errorf("udp %s: %w", u.c.RemoteAddr(), ErrTimeout)
		} else if w.done != nil {
			select {
			case <-w.done:
				err = w.ctx.Err()
			default:
			}
		}
		if err != nil {
			delete(u.pending, id)
			u.free(w)
			w.ch <- reply{err: err}
			continue
		}
		if w.slot && !now.Before(w.hold) {
			u.free(w)
		}
	}
	if len(u.pending) > 0 {
		u.sweeper.Reset(u.tick)
	} else {
		u.sweeping = false
	}
}

func (u *udpConn) read() {
	buf := make([]byte, 65535)
	for {
		n, err := u.c.Read(buf)
		if err != nil {
			closed := errors.Is(err, net.ErrClosed)
			u.mu.Lock()
			// An ICMP error (connection refused) fails the queries under
			// way at once rather than after their timeout.
			for id, w := range u.pending {
				delete(u.pending, id)
				u.free(w)
				w.ch <- reply{err: fmt.Errorf("udp %s: %w", u.c.RemoteAddr(), err)}
			}
			if closed {
				u.dead = fmt.Errorf("udp %s: %w", u.c.RemoteAddr(), net.ErrClosed)
			}
			u.mu.Unlock()
			if closed {
				u.sweeper.Stop()
				return
			}
			continue
		}
		if n < 12 {
			continue
		}
		id := binary.BigEndian.Uint16(buf)
		u.mu.Lock()
		w := u.pending[id]
		if w == nil || !sameQuestion(w.q, buf[:n]) {
			u.mu.Unlock()
			continue
		}
		delete(u.pending, id)
		u.free(w)
		// RFC 6298's smoothed round-trip time and variation.
		rtt := time.Since(w.sent)
		if d := u.srtt - rtt; d < 0 {
			u.rttvar += (-d - u.rttvar) / 4
		} else {
			u.rttvar += (d - u.rttvar) / 4
		}
		u.srtt += (rtt - u.srtt) / 8
		u.mu.Unlock()
		w.ch <- parseReply(buf[:n], w.qend, w.whole)
	}
}

// parseReply reads a reply whose question (ending at qend) has been checked:
// the rcode (with EDNS0's extended bits), the TC bit and the answer
// section. The authority section is skipped; with whole, the message is
// unpacked too.
func parseReply(b []byte, qend int, whole bool) reply {
	var rep reply
	rep.tc = b[2]&0x02 != 0
	rep.rcode = int(b[3] & 0x0f)
	if rep.tc {
		return rep
	}
	if whole {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			return reply{err: err, malformed: true}
		}
		rep.msg, rep.rcode, rep.answer = m, m.Rcode, m.Answer
		return rep
	}
	an := int(binary.BigEndian.Uint16(b[6:]))
	ns := int(binary.BigEndian.Uint16(b[8:]))
	ar := int(binary.BigEndian.Uint16(b[10:]))
	off := qend
	if an > 0 {
		rep.answer = make([]dns.RR, 0, min(an, 16))
	}
	for range an {
		if off == len(b) {
			break // fewer records than counted, as dns.Msg tolerates
		}
		rr, next, err := dns.UnpackRR(b, off)
		if err != nil {
			return reply{err: err, malformed: true}
		}
		off = next
		rep.answer = append(rep.answer, rr)
	}
	for range ns {
		if off = skipRR(b, off); off < 0 {
			return rep
		}
	}
	for range ar {
		start := off
		if off = skipRR(b, off); off < 0 {
			return rep
		}
		// The OPT record's owner is the root: its type is right after.
		if b[start] == 0 && binary.BigEndian.Uint16(b[start+1:]) == dns.TypeOPT {
			rep.rcode |= int(b[start+5]) << 4
		}
	}
	return rep
}

// skipRR returns the offset after the record at off, or -1 when it does not
// fit in b.
func skipRR(b []byte, off int) int {
	for {
		if off >= len(b) {
			return -1
		}
		l := int(b[off])
		if l == 0 {
			off++
			break
		}
		if l&0xc0 == 0xc0 {
			off += 2
			break
		}
		if l&0xc0 != 0 {
			return -1
		}
		off += 1 + l
	}
	if off+10 > len(b) {
		return -1
	}
	off += 10 + int(binary.BigEndian.Uint16(b[off+8:]))
	if off > len(b) {
		return -1
	}
	return off
}

// sameQuestion reports whether resp is a reply (QR set, same opcode) whose
// one question equals q's, the name compared without regard to ASCII case.
// Both are wire format; the question starts at byte 12 and, being first in
// the message, is never compressed.
func sameQuestion(q, resp []byte) bool {
	if len(resp) < 12 || resp[2]&0x80 == 0 || resp[2]&0x78 != q[2]&0x78 {
		return false
	}
	if binary.BigEndian.Uint16(resp[4:]) != 1 {
		return false
	}
	// Length of q's question: the name's labels, then type and class.
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	end := i + 1 + 4
	if end > len(q) || end > len(resp) {
		return false
	}
	for j := 12; j < end; j++ {
		a, b := q[j], resp[j]
		if a != b && lower(a) != lower(b) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// limiter is a token bucket in its GCRA form: each query takes the next
// slot of 1/qps; up to a twentieth of a second of queries may go at once.
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	burst    time.Duration
	tat      time.Time // theoretical arrival time of the next query
}

func newLimiter(qps float64) *limiter {
	iv := time.Duration(float64(time.Second) / qps)
	burst := 50 * time.Millisecond
	if burst < iv {
		burst = 0
	}
	return &limiter{interval: iv, burst: burst}
}

func (l *limiter) wait(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	if l.tat.Before(now) {
		l.tat = now
	}
	d := l.tat.Sub(now) - l.burst
	l.tat = l.tat.Add(l.interval)
	l.mu.Unlock()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
