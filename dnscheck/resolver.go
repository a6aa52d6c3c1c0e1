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
	// Logger receives debug diagnostics; nil: none.
	Logger *slog.Logger
}

// Resolver is a DNS client built for many queries: persistent UDP sockets
// (each with one reader that matches replies to queries by ID and
// question), bounded concurrency, retries on timeout, TCP when a reply is
// truncated, an optional rate cap, and a cache with in-flight merging so a
// name asked by a thousand domains is queried once.
//
// It is safe for concurrent use. Its cache lives as long as it does: use one
// Resolver per run, and Close it.
type Resolver struct {
	cfg     Config
	servers []*server
	sem     chan struct{}
	limiter *limiter
	log     *slog.Logger
	queries atomic.Int64
	next    atomic.Uint32

	mu    sync.Mutex
	cache map[qkey]*call
}

type qkey struct {
	name  string
	qtype uint16
}

type call struct {
	done chan struct{}
	resp *Response
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
		cfg:   cfg,
		sem:   make(chan struct{}, cfg.MaxInFlight),
		log:   cfg.Logger,
		cache: map[qkey]*call{},
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
			u, err := dialUDP(addr)
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
// and later callers get it from the cache. Errors are *QueryError: no
// answer after every try, or a malformed reply. A reply with an error rcode
// (SERVFAIL, NXDOMAIN, ...) is a Response, not an error.
func (r *Resolver) Query(ctx context.Context, name string, qtype uint16) (*Response, error) {
	k := qkey{strings.ToLower(dns.Fqdn(name)), qtype}
	r.mu.Lock()
	if c, ok := r.cache[k]; ok {
		r.mu.Unlock()
		select {
		case <-c.done:
			return c.resp, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &call{done: make(chan struct{})}
	r.cache[k] = c
	r.mu.Unlock()

	m, srv, err := r.exchange(ctx, k.name, qtype)
	if err == nil {
		c.resp = &Response{Rcode: m.Rcode, Answer: m.Answer, Server: srv}
	} else {
		c.err = err
	}
	if err != nil && ctx.Err() != nil {
		// A cancelled caller must not poison the cache for others.
		r.mu.Lock()
		delete(r.cache, k)
		r.mu.Unlock()
	}
	close(c.done)
	return c.resp, c.err
}

// Exchange sends one query for name and type, without the cache, and
// returns the whole reply and the server that sent it. It retries on
// timeout and switches to TCP when the reply is truncated; with several
// servers, a SERVFAIL or REFUSED is tried on the next one.
func (r *Resolver) Exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, string, error) {
	return r.exchange(ctx, strings.ToLower(dns.Fqdn(name)), qtype)
}

func (r *Resolver) exchange(ctx context.Context, fqdn string, qtype uint16) (*dns.Msg, string, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	defer func() { <-r.sem }()

	q := new(dns.Msg)
	q.SetQuestion(fqdn, qtype)
	q.RecursionDesired = true
	q.SetEdns0(r.cfg.UDPSize, false)

	tries := 1 + r.cfg.Retries
	start := int(r.next.Add(1))
	var lastErr error
	var last *dns.Msg
	var lastSrv string
	for i := 0; i < tries; i++ {
		srv := r.servers[(start+i)%len(r.servers)]
		if err := r.limiter.wait(ctx); err != nil {
			return nil, "", err
		}
		m, err := srv.exchangeUDP(ctx, r, q)
		if err == nil && m.Truncated {
			r.log.Debug("truncated reply, retrying over TCP", "name", fqdn, "type", dns.TypeToString[qtype], "server", srv.addr)
			m, err = srv.exchangeTCP(ctx, r, q)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, "", ctx.Err()
			}
			r.log.Debug("query failed", "name", fqdn, "type", dns.TypeToString[qtype], "server", srv.addr, "try", i+1, "err", err)
			lastErr = err
			continue
		}
		if (m.Rcode == dns.RcodeServerFailure || m.Rcode == dns.RcodeRefused) && len(r.servers) > 1 && i+1 < tries {
			last, lastSrv = m, srv.addr
			continue
		}
		return m, srv.addr, nil
	}
	if last != nil {
		return last, lastSrv, nil
	}
	return nil, "", &QueryError{Name: fqdn, Type: qtype, Rcode: -1,
		Err: fmt.Errorf("no answer from %s after %d tries of %s: %w", strings.Join(r.Servers(), ", "), tries, r.cfg.Timeout, lastErr)}
}

// ErrTimeout is wrapped by errors for queries that got no answer in time.
var ErrTimeout = errors.New("timeout")

// server is one resolver: a pool of connected UDP sockets, and TCP on demand.
type server struct {
	addr  string
	conns []*udpConn
	next  atomic.Uint32
}

func (s *server) exchangeUDP(ctx context.Context, r *Resolver, q *dns.Msg) (*dns.Msg, error) {
	u := s.conns[int(s.next.Add(1))%len(s.conns)]
	b, err := u.exchange(ctx, q, r.cfg.Timeout, &r.queries)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return nil, fmt.Errorf("malformed reply from %s: %w", s.addr, err)
	}
	return m, nil
}

func (s *server) exchangeTCP(ctx context.Context, r *Resolver, q *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: "tcp", Timeout: r.cfg.Timeout}
	q = q.Copy()
	q.Id = dns.Id()
	r.queries.Add(1)
	m, _, err := c.ExchangeContext(ctx, q, s.addr)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("tcp %s: %w", s.addr, ErrTimeout)
		}
		return nil, fmt.Errorf("tcp %s: %w", s.addr, err)
	}
	// miekg/dns checks the ID; check the question too.
	if !m.Response || len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, q.Question[0].Name) ||
		m.Question[0].Qtype != q.Question[0].Qtype || m.Question[0].Qclass != q.Question[0].Qclass {
		return nil, fmt.Errorf("tcp %s: reply does not match the question", s.addr)
	}
	return m, nil
}

// udpConn is a connected UDP socket shared by many queries. One reader
// goroutine hands each reply to the query with its ID and question; a reply
// that matches no query under way (late, duplicated or spoofed) is dropped.
// The kernel already drops datagrams from any other address or port.
type udpConn struct {
	c       *net.UDPConn
	mu      sync.Mutex
	pending map[uint16]*waiter
	dead    error
}

type waiter struct {
	q  []byte // the packed query: its question section is compared to the reply's
	ch chan reply
}

type reply struct {
	b   []byte
	err error
}

func dialUDP(addr string) (*udpConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, err
	}
	u := &udpConn{c: c, pending: map[uint16]*waiter{}}
	go u.read()
	return u, nil
}

var packPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (u *udpConn) exchange(ctx context.Context, q *dns.Msg, timeout time.Duration, count *atomic.Int64) ([]byte, error) {
	bp := packPool.Get().(*[]byte)
	defer packPool.Put(bp)
	// Pack once; the ID is set under the lock, where it is known to be free.
	q2 := *q
	q2.Id = 0
	b, err := q2.PackBuffer((*bp)[:cap(*bp)])
	if err != nil {
		return nil, err
	}
	*bp = b
	w := &waiter{q: b, ch: make(chan reply, 1)}

	u.mu.Lock()
	if u.dead != nil {
		u.mu.Unlock()
		return nil, u.dead
	}
	var id uint16
	for {
		id = uint16(rand.Uint32())
		if _, busy := u.pending[id]; !busy {
			break
		}
	}
	binary.BigEndian.PutUint16(b, id)
	u.pending[id] = w
	u.mu.Unlock()

	count.Add(1)
	if _, err := u.c.Write(b); err != nil {
		u.forget(id, w)
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case rep := <-w.ch:
		return rep.b, rep.err
	case <-t.C:
		u.forget(id, w)
		return nil, fmt.Errorf("udp %s: %w", u.c.RemoteAddr(), ErrTimeout)
	case <-ctx.Done():
		u.forget(id, w)
		return nil, ctx.Err()
	}
}

func (u *udpConn) forget(id uint16, w *waiter) {
	u.mu.Lock()
	if u.pending[id] == w {
		delete(u.pending, id)
	}
	u.mu.Unlock()
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
				w.ch <- reply{err: fmt.Errorf("udp %s: %w", u.c.RemoteAddr(), err)}
				delete(u.pending, id)
			}
			if closed {
				u.dead = fmt.Errorf("udp %s: %w", u.c.RemoteAddr(), net.ErrClosed)
			}
			u.mu.Unlock()
			if closed {
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
		u.mu.Unlock()
		b := make([]byte, n)
		copy(b, buf[:n])
		w.ch <- reply{b: b}
	}
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
