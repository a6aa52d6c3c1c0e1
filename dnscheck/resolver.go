package dnscheck

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	// Conns is how many UDP sockets to each server open at the start;
	// default 4. A query under way has a socket of its own: more open as
	// needed, and are reused.
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
	byType  [len(countedTypes) + 1]atomic.Int64 // as countedTypes, then the others
	dane    atomic.Int64                        // DANE's added questions (withDANE)
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
	// NegZone is, for an answer that follows a CNAME chain and ends
	// without the records asked, the owner of the SOA record in its
	// authority section (a lowercase FQDN): such an answer is a NODATA or
	// NXDOMAIN for the end of the chain when that lies in NegZone (RFC
	// 2308 §2.1, §2.2), not a chain cut short at the end of the server's
	// zones. Empty otherwise.
	NegZone string
	// AD is the reply's AD bit: a validating resolver checked its DNSSEC
	// signatures (RFC 4035 §3.2.3). Resolvers set it only for a query with
	// the DO bit (RFC 3225), which the Resolver sets for TLSA and DNSKEY
	// questions alone ([dnssecOK]).
	AD bool
	// NegTTL is, for a TLSA or DNSKEY question, the TTL of the SOA record
	// in the authority section: how long a NODATA or NXDOMAIN may be
	// cached (RFC 2308 §5). Zero otherwise.
	NegTTL uint32
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
		srv := &server{addr: addr, sem: r.sem, timeout: cfg.Timeout, rttvar: minHold / 4}
		if srv.ua, err = net.ResolveUDPAddr("udp", addr); err != nil {
			r.Close()
			return nil, fmt.Errorf("resolver %s: %w", addr, err)
		}
		r.servers = append(r.servers, srv)
		for i := 0; i < cfg.Conns; i++ {
			u, err := srv.dial()
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("resolver %s: %w", addr, err)
			}
			srv.add(u)
		}
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
		s.close()
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

// countedTypes are the query types that [Resolver.QueriesByType] counts
// apart: those an inventory asks.
var countedTypes = [...]uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCAA, dns.TypeMX, dns.TypeSRV, dns.TypeTLSA, dns.TypeTXT}

// OtherTypes is the key under which [Resolver.QueriesByType] counts the
// queries of any other type.
const OtherTypes = "other"

// count counts a query sent, of type qtype, with ctx.
func (r *Resolver) count(ctx context.Context, qtype uint16) {
	r.queries.Add(1)
	i := 0
	for i < len(countedTypes) && countedTypes[i] != qtype {
		i++
	}
	r.byType[i].Add(1)
	if dnssecOK(qtype) && ctx.Value(daneKey{}) != nil {
		r.dane.Add(1)
	}
}

// DANEQueries returns how many of [Resolver.Queries] the inventory asked
// for DANE beyond the TLSA records at _25._tcp of MX targets: the probe
// of the resolver's DNSSEC validation and the TLSA records at the
// submission ports (see doc.go). They are in QueriesByType too ("TLSA",
// and "other" for the probe); issue 20's questions per domain leave them
// out.
func (r *Resolver) DANEQueries() int64 { return r.dane.Load() }

type daneKey struct{}

// withDANE marks the questions asked with ctx as DANE's, for
// [Resolver.DANEQueries].
func withDANE(ctx context.Context) context.Context { return context.WithValue(ctx, daneKey{}, true) }

// dnssecOK reports whether questions of qtype are sent with the DO bit
// (RFC 3225), so that a validating resolver sets the AD bit on its reply
// and adds the signatures: TLSA, which counts for DANE only when
// validated (RFC 7672 §2.2), and DNSKEY, the validation probe. Other
// questions go without: their replies would grow by the signatures, and
// nothing reads them.
func dnssecOK(qtype uint16) bool { return qtype == dns.TypeTLSA || qtype == dns.TypeDNSKEY }

// QueriesByType returns how many queries of each type the Resolver has
// sent, as [Resolver.Queries] counts them, keyed by the type's name ("A",
// "AAAA", "CAA", "MX", "SRV", "TLSA", "TXT", and [OtherTypes] for the
// rest); types never asked are left out.
func (r *Resolver) QueriesByType() map[string]int {
	out := map[string]int{}
	for i := range r.byType {
		n := int(r.byType[i].Load())
		if n == 0 {
			continue
		}
		if i < len(countedTypes) {
			out[dns.TypeToString[countedTypes[i]]] = n
		} else {
			out[OtherTypes] = n
		}
	}
	return out
}

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
// asks. The Response comes by value: nothing else holds it.
func (r *Resolver) queryOnce(ctx context.Context, fqdn string, qtype uint16) (Response, error) {
	resp, _, err := r.exchange(ctx, fqdn, qtype, false)
	return resp, err
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
	start := 0
	if len(r.servers) > 1 {
		start = int(r.next.Add(1))
	}
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
		// The slot goes with the query, which frees it at the reply, or
		// when it is presumed lost.
		rep := srv.exchangeUDP(ctx, r, fqdn, qtype, whole)
		if rep.err != nil && rep.malformed {
			rep.err = fmt.Errorf("malformed reply from %s: %w", srv.addr, rep.err)
		}
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
		return Response{Rcode: rep.rcode, Answer: rep.answer, Server: srv.addr, NegZone: rep.negZone, AD: rep.ad, NegTTL: rep.negTTL}, rep.msg, nil
	}
	if lastSrv != "" {
		return Response{Rcode: last.rcode, Answer: last.answer, Server: lastSrv, NegZone: last.negZone, AD: last.ad, NegTTL: last.negTTL}, last.msg, nil
	}
	return Response{}, nil, &QueryError{Name: fqdn, Type: qtype, Rcode: -1,
		Err: fmt.Errorf("no answer from %s after %d tries of %s: %w", strings.Join(r.Servers(), ", "), tries, r.cfg.Timeout, lastErr)}
}

// acquire takes a slot of the MaxInFlight bound.
func (r *Resolver) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
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

// server is one resolver: connected UDP sockets, one for each query under
// way (kept for reuse), and TCP on demand.
type server struct {
	addr    string
	ua      *net.UDPAddr
	sem     chan struct{} // the Resolver's MaxInFlight bound
	timeout time.Duration

	mu     sync.Mutex
	free   []*udpConn
	all    map[*udpConn]bool
	closed bool
	srtt   time.Duration // smoothed reply time, and its variation (RFC 6298)
	rttvar time.Duration
}

// udpConn is a connected UDP socket, used by one query at a time, which
// reads its own reply: a datagram that is not the reply to the query under
// way (late, duplicated or spoofed: another ID or question) is dropped. The
// kernel already drops datagrams from any other address or port.
type udpConn struct {
	c    *net.UDPConn
	rc   syscall.RawConn
	wbuf []byte
	rbuf []byte

	// dl is the read deadline set on the socket (zero: none, or passed).
	dl time.Time

	// The state of the read's callback (on Unix): a query to send first,
	// the send's error, and what the read got.
	out    []byte
	werr   error
	n      int
	err    error
	readFn func(fd uintptr) bool
	// afterSend, set by tests, runs right after the callback's send,
	// before the wait for the reply.
	afterSend func()
}

// setDeadline makes the socket's read deadline at most dl, now being the
// time. A deadline set earlier (by the query before, on a socket reused at
// once) that is still well ahead is kept: it can only wake the reader
// early, which then sets it again, while setting one costs a timer update
// for every query.
func (u *udpConn) setDeadline(dl, now time.Time) {
	if !u.dl.IsZero() && !u.dl.After(dl) && u.dl.Sub(now) >= minHold/2 {
		return
	}
	_ = u.c.SetReadDeadline(dl)
	u.dl = dl
}

// write sends the query b through the net.Conn, waiting for room in a
// full send buffer.
func (u *udpConn) write(b []byte) error {
	_, err := u.c.Write(b)
	return err
}

// udpBuf is the largest reply read; a longer one counts as truncated (TCP
// follows). Replies are at most the advertised EDNS0 size, 1232 by default.
const udpBuf = 4096

func (s *server) dial() (*udpConn, error) {
	c, err := net.DialUDP("udp", nil, s.ua)
	if err != nil {
		return nil, err
	}
	u := &udpConn{c: c, wbuf: make([]byte, 512), rbuf: make([]byte, udpBuf)}
	if u.rc, err = c.SyscallConn(); err != nil {
		c.Close()
		return nil, err
	}
	return u, nil
}

// get returns a socket for one query, and how long the query holds its
// MaxInFlight slot without a reply.
func (s *server) get() (*udpConn, time.Duration, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, 0, fmt.Errorf("udp %s: %w", s.addr, net.ErrClosed)
	}
	// At most half the timeout, so that a query always wakes once before
	// it is given up (see udpConn.read).
	hold := min(s.timeout/2, max(minHold, s.srtt+4*s.rttvar))
	if n := len(s.free); n > 0 {
		u := s.free[n-1]
		s.free = s.free[:n-1]
		s.mu.Unlock()
		return u, hold, nil
	}
	s.mu.Unlock()
	u, err := s.dial()
	if err != nil {
		return nil, 0, fmt.Errorf("udp %s: %w", s.addr, err)
	}
	s.mu.Lock()
	if s.all == nil {
		s.all = map[*udpConn]bool{}
	}
	s.all[u] = true
	closed := s.closed
	s.mu.Unlock()
	if closed {
		u.c.Close()
		return nil, 0, fmt.Errorf("udp %s: %w", s.addr, net.ErrClosed)
	}
	return u, hold, nil
}

// add takes a socket opened at the start into the pool.
func (s *server) add(u *udpConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all == nil {
		s.all = map[*udpConn]bool{}
	}
	s.all[u] = true
	s.free = append(s.free, u)
}

// put gives back a socket after its query; rtt is the time its reply took
// (0 without a reply), taken into the smoothed one (RFC 6298).
func (s *server) put(u *udpConn, rtt time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rtt > 0 {
		if d := s.srtt - rtt; d < 0 {
			s.rttvar += (-d - s.rttvar) / 4
		} else {
			s.rttvar += (d - s.rttvar) / 4
		}
		s.srtt += (rtt - s.srtt) / 8
	}
	if s.closed {
		u.c.Close()
		return
	}
	s.free = append(s.free, u)
}

func (s *server) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for u := range s.all {
		u.c.Close()
	}
	s.free = nil
}

// clockBase is when the package was initialised; clock counts from it.
var clockBase = time.Now()

// clock returns the current time for timing queries: what time.Now
// returns, read from the monotonic clock alone (time.Now reads the wall
// clock too, which costs as much again in some VMs). Its wall time may drift
// from the system's by what the wall clock is stepped, which deadlines and
// durations, measured on the monotonic clock, do not see.
func clock() time.Time { return clockBase.Add(time.Since(clockBase)) }

// minHold is the least time a query holds its slot without a reply; it is
// also the hold before the first reply gives a measure.
const minHold = 10 * time.Millisecond

// ctxPoll is how often a query waiting for its reply looks at its context.
const ctxPoll = 50 * time.Millisecond

// workerLender is told when a query stops counting against the
// MaxInFlight bound because it is presumed lost (lost), and when that
// query is over (found). The inventory puts one in the context of its
// lookups (withLender) and starts another worker meanwhile.
type workerLender interface {
	lost()
	found()
}

type lenderKey struct{}

// withLender returns a context whose queries tell l when they are presumed
// lost.
func withLender(ctx context.Context, l workerLender) context.Context {
	return context.WithValue(ctx, lenderKey{}, l)
}

// exchangeUDP sends one try on a socket of its own and reads the reply. The
// caller holds a MaxInFlight slot, which this gives back.
//
// It is one loop of about 90 lines on purpose: it runs once per query (the
// inventory's hot path, see bench/README.md), and its steps share the try's
// state (the slot, the lender, three deadlines, the socket), which split
// functions would pass around or allocate: the loop sets the next deadline,
// reads, and on a timeout either ends the try, or gives the slot back to
// wait out a query presumed lost.
func (s *server) exchangeUDP(ctx context.Context, r *Resolver, fqdn string, qtype uint16, whole bool) reply {
	slot := true
	var lender workerLender
	defer func() {
		if slot {
			<-s.sem
		} else if lender != nil {
			lender.found()
		}
	}()
	u, holdFor, err := s.get()
	if err != nil {
		return reply{err: err}
	}
	b, qend, err := packQuery(u.wbuf, fqdn, qtype, r.cfg.UDPSize)
	if err != nil {
		s.put(u, 0)
		return reply{err: err}
	}
	id := uint16(rand.Uint32())
	binary.BigEndian.PutUint16(b, id)
	r.count(ctx, qtype)
	sent := clock()
	expire := sent.Add(s.timeout)
	hold := sent.Add(holdFor)
	polls := ctx.Done() != nil
	first := true
	now := sent
	for {
		dl := expire
		if slot && hold.Before(dl) {
			dl = hold
		}
		if polls {
			if p := now.Add(ctxPoll); p.Before(dl) {
				dl = p
			}
		}
		u.setDeadline(dl, now)
		var n int
		var err error
		if first {
			n, err = u.sendRead(b)
			first = false
		} else {
			n, err = u.read()
		}
		if err != nil {
			u.dl = time.Time{}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				// A failed send, or an ICMP error (connection refused),
				// ends the try at once.
				s.put(u, 0)
				return reply{err: fmt.Errorf("udp %s: %w", s.addr, trimOp(err))}
			}
			now = clock()
			if err := ctx.Err(); err != nil {
				s.put(u, 0)
				return reply{err: err}
			}
			if !now.Before(expire) {
				// A last look: a reply that came as the deadline passed
				// is there unread (a read past its deadline does not look).
				for {
					n, ok := u.readNow()
					if !ok {
						break
					}
					if rep, ok := s.matchReply(u, n, id, b, qend, fqdn, whole, sent); ok {
						return rep
					}
				}
				s.put(u, 0)
				return reply{err: fmt.Errorf("udp %s: %w", s.addr, ErrTimeout)}
			}
			if slot && !now.Before(hold) {
				// Presumed lost: wait out the timeout without holding back
				// other queries.
				slot = false
				<-s.sem
				if lender, _ = ctx.Value(lenderKey{}).(workerLender); lender != nil {
					lender.lost()
				}
			}
			continue
		}
		if rep, ok := s.matchReply(u, n, id, b, qend, fqdn, whole, sent); ok {
			return rep
		}
	}
}

// matchReply looks at the datagram of n bytes read into u.rbuf: when it
// is the reply to the query q for fqdn (ID id, question ending at qend)
// sent at sent, it gives the socket back and returns the reply parsed;
// otherwise (late, duplicated or spoofed) it is dropped.
func (s *server) matchReply(u *udpConn, n int, id uint16, q []byte, qend int, fqdn string, whole bool, sent time.Time) (reply, bool) {
	resp := u.rbuf[:n]
	if n < 12 || binary.BigEndian.Uint16(resp) != id || !sameQuestion(q, resp) {
		return reply{}, false
	}
	rtt := time.Since(sent)
	rep := parseReply(resp, qend, fqdn, whole, q[qend+7]&0x80 != 0)
	if n == len(u.rbuf) {
		rep = reply{tc: true} // cut short by our buffer
	}
	s.put(u, rtt)
	return rep, true
}

// trimOp drops net.OpError's "read udp a->b:" prefix.
func trimOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

func (s *server) exchangeTCP(ctx context.Context, r *Resolver, fqdn string, qtype uint16) reply {
	c := &dns.Client{Net: "tcp", Timeout: r.cfg.Timeout}
	q := new(dns.Msg)
	q.SetQuestion(fqdn, qtype)
	q.RecursionDesired = true
	q.SetEdns0(r.cfg.UDPSize, dnssecOK(qtype))
	r.count(ctx, qtype)
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
	return reply{rcode: m.Rcode, answer: m.Answer, msg: m, negZone: negZone(m), ad: m.AuthenticatedData, negTTL: soaTTL(m, dnssecOK(qtype))}
}

// soaTTL is reply.negTTL for a whole message.
func soaTTL(m *dns.Msg, dnssec bool) uint32 {
	if !dnssec {
		return 0
	}
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			return rr.Header().Ttl
		}
	}
	return 0
}

// negZone is reply.negZone for a whole message.
func negZone(m *dns.Msg) string {
	if !slices.ContainsFunc(m.Answer, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeCNAME }) {
		return ""
	}
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			return strings.ToLower(dns.Fqdn(rr.Header().Name))
		}
	}
	return ""
}

// reply is a parsed answer, or the error of one try.
type reply struct {
	rcode     int
	tc        bool
	answer    []dns.RR
	msg       *dns.Msg // when the whole message is asked for
	negZone   string   // see Response.NegZone
	ad        bool     // see Response.AD
	negTTL    uint32   // see Response.NegTTL
	err       error
	malformed bool
}

// packQuery writes a query for fqdn and qtype, with the RD bit and an EDNS0
// OPT record advertising udpSize, into b, ID 0. The OPT record has the DO
// bit for the types of [dnssecOK].
func packQuery(b []byte, fqdn string, qtype, udpSize uint16) ([]byte, int, error) {
	b = b[:cap(b)]
	clear(b[:12])
	b[2] = 0x01                           // RD
	binary.BigEndian.PutUint16(b[4:], 1)  // QDCOUNT
	binary.BigEndian.PutUint16(b[10:], 1) // ARCOUNT: the OPT record
	off, ok := packName(b, 12, fqdn)
	if !ok {
		var err error
		if off, err = dns.PackDomainName(fqdn, b, 12, nil, false); err != nil {
			return nil, 0, err
		}
		// RFC 1035 §3.1: dns.PackDomainName writes names longer than the
		// 255 octets that servers (and miekg/dns) read.
		if off-12 > 255 {
			return nil, 0, errors.New("name longer than 255 octets")
		}
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
	if dnssecOK(qtype) {
		opt[7] = 0x80 // the DO bit: the first of the TTL field's flags (RFC 6891 §6.1.3)
	}
	return b[:qend+11], qend, nil
}

// packName writes fqdn (ending in a dot) uncompressed into b at off and
// returns the offset after it; ok is false, and nothing is to be used, for
// a name it does not handle (escapes, the root, an empty or too long label
// or name, no room): dns.PackDomainName does those, more slowly. Without
// escapes a name takes one byte more on the wire than in text, so at most
// 254 characters fit the 255 bytes allowed.
func packName(b []byte, off int, fqdn string) (int, bool) {
	if len(fqdn) < 2 || len(fqdn) > 254 || fqdn[len(fqdn)-1] != '.' || off+len(fqdn)+1 > len(b) {
		return 0, false
	}
	for i := 0; i < len(fqdn); {
		j := i
		for j < len(fqdn) && fqdn[j] != '.' {
			if fqdn[j] == '\\' {
				return 0, false
			}
			j++
		}
		n := j - i
		if n == 0 || n > 63 {
			return 0, false
		}
		b[off] = byte(n)
		copy(b[off+1:], fqdn[i:j])
		off += 1 + n
		i = j + 1
	}
	b[off] = 0
	return off + 1, true
}

// parseReply reads a reply whose question (for qname, ending at qend) has
// been checked: the rcode (with EDNS0's extended bits), the TC and AD bits
// and the answer section. The authority section is skipped, but for the
// SOA record of a CNAME chain's end and, when the query had the DO bit
// (dnssec), the SOA's TTL; with whole, the message is unpacked too.
func parseReply(b []byte, qend int, qname string, whole, dnssec bool) reply {
	var rep reply
	rep.tc = b[2]&0x02 != 0
	rep.rcode = int(b[3] & 0x0f)
	rep.ad = b[3]&0x20 != 0
	if rep.tc {
		return rep
	}
	if whole {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			return reply{err: err, malformed: true}
		}
		rep.msg, rep.rcode, rep.answer, rep.negZone = m, m.Rcode, m.Answer, negZone(m)
		rep.negTTL = soaTTL(m, dnssec)
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
		rr, next, ok := unpackAddr(b, off, qname)
		if !ok {
			var err error
			if rr, next, err = dns.UnpackRR(b, off); err != nil {
				return reply{err: err, malformed: true}
			}
		}
		off = next
		rep.answer = append(rep.answer, rr)
	}
	chained := false
	for _, rr := range rep.answer {
		if rr.Header().Rrtype == dns.TypeCNAME {
			chained = true
			break
		}
	}
	ttlSeen := false
	for range ns {
		start := off
		if off = skipRR(b, off); off < 0 {
			return rep
		}
		if !(chained && rep.negZone == "" || dnssec && !ttlSeen) {
			continue
		}
		typ, ttl := rrTypeTTL(b, start)
		if typ != dns.TypeSOA {
			continue
		}
		if dnssec && !ttlSeen {
			rep.negTTL, ttlSeen = ttl, true
		}
		if chained && rep.negZone == "" {
			if zone, _, err := dns.UnpackDomainName(b, start); err == nil {
				rep.negZone = strings.ToLower(zone)
			}
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

// aRecord and aaaaRecord hold an A or AAAA record and its address in one
// allocation.
type aRecord struct {
	rr dns.A
	ip [net.IPv4len]byte
}

type aaaaRecord struct {
	rr dns.AAAA
	ip [net.IPv6len]byte
}

// unpackAddr reads the record at off when it is an A or AAAA record of
// class IN whose owner is a pointer to the question's name (qname), as
// most answers are written: one allocation instead of miekg/dns's three
// (the owner's name, the record, its address) and no lookup of the type.
// ok is false for any other record, left to dns.UnpackRR. The owner is
// qname as asked, which the question in the reply matches without regard
// to case.
func unpackAddr(b []byte, off int, qname string) (rr dns.RR, next int, ok bool) {
	if off+12 > len(b) || b[off] != 0xc0 || b[off+1] != 12 {
		return nil, 0, false
	}
	typ := binary.BigEndian.Uint16(b[off+2:])
	n := int(binary.BigEndian.Uint16(b[off+10:]))
	end := off + 12 + n
	if end > len(b) || binary.BigEndian.Uint16(b[off+4:]) != dns.ClassINET ||
		!(typ == dns.TypeA && n == net.IPv4len || typ == dns.TypeAAAA && n == net.IPv6len) {
		return nil, 0, false
	}
	h := dns.RR_Header{Name: qname, Rrtype: typ, Class: dns.ClassINET,
		Ttl: binary.BigEndian.Uint32(b[off+6:]), Rdlength: uint16(n)}
	if typ == dns.TypeA {
		r := new(aRecord)
		copy(r.ip[:], b[off+12:end])
		r.rr = dns.A{Hdr: h, A: r.ip[:]}
		return &r.rr, end, true
	}
	r := new(aaaaRecord)
	copy(r.ip[:], b[off+12:end])
	r.rr = dns.AAAA{Hdr: h, AAAA: r.ip[:]}
	return &r.rr, end, true
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

// rrTypeTTL returns the type and TTL of the record at off, which skipRR
// has found to fit in b.
func rrTypeTTL(b []byte, off int) (uint16, uint32) {
	for b[off] != 0 && b[off]&0xc0 != 0xc0 {
		off += 1 + int(b[off])
	}
	if b[off] == 0 {
		off++
	} else {
		off += 2
	}
	return binary.BigEndian.Uint16(b[off:]), binary.BigEndian.Uint32(b[off+4:])
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
