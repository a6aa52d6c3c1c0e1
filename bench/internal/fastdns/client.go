package fastdns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"

	"github.com/certplan/certplan/bench/internal/synth"
)

// Queries are packed query messages (ID 0), one after another.
type Queries struct {
	buf []byte
	off []int32 // start of each message; len(off) = Len()+1
}

// Len is the number of queries.
func (q *Queries) Len() int { return len(q.off) - 1 }

func (q *Queries) msg(i int) []byte { return q.buf[q.off[i]:q.off[i+1]] }

// Msg returns query i, packed (its ID is 0). Do not modify it.
func (q *Queries) Msg(i int) []byte { return q.msg(i) }

// PackQueries packs qs as recursive queries, with an EDNS0 OPT record
// advertising 1232 bytes when edns is set (as miekg/dns clients usually do).
func PackQueries(qs []synth.Question, edns bool) *Queries {
	q := &Queries{off: make([]int32, 0, len(qs)+1)}
	q.buf = make([]byte, 0, len(qs)*48)
	var hdr [12]byte
	hdr[2] = 0x01 // RD
	binary.BigEndian.PutUint16(hdr[4:], 1)
	if edns {
		binary.BigEndian.PutUint16(hdr[10:], 1)
	}
	for _, x := range qs {
		q.off = append(q.off, int32(len(q.buf)))
		q.buf = append(q.buf, hdr[:]...)
		q.buf = append(q.buf, wireName(x.Name)...)
		q.buf = binary.BigEndian.AppendUint16(q.buf, x.Type)
		q.buf = binary.BigEndian.AppendUint16(q.buf, dns.ClassINET)
		if edns {
			q.buf = append(q.buf, opt...)
		}
	}
	q.off = append(q.off, int32(len(q.buf)))
	return q
}

// BlastOptions configure Blast.
type BlastOptions struct {
	// Sockets is the number of persistent UDP sockets; default 8.
	Sockets int
	// InFlight is the number of queries outstanding at once over all
	// sockets; default 64.
	InFlight int
	// Timeout is how long a query may go unanswered before it counts as
	// lost (the ceiling does not retry); default 1s.
	Timeout time.Duration
	// Batch sends and receives with sendmmsg/recvmmsg: a client cheaper than
	// any resolver library, to measure the responder's own capacity.
	Batch bool
}

// BlastResult is what a blast measured.
type BlastResult struct {
	Queries   int64         `json:"queries"`
	Answered  int64         `json:"answered"`
	Lost      int64         `json:"lost"`
	Truncated int64         `json:"truncated"` // answered over TCP after a TC answer
	NXDomain  int64         `json:"nxdomain"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	QPS       float64       `json:"qps"`
}

// Blast sends every query of qs to addr over persistent UDP sockets, keeping
// InFlight outstanding, as fast as the responder answers: the DNS ceiling.
// A truncated answer is asked again over a persistent TCP connection.
func Blast(ctx context.Context, addr string, qs *Queries, o BlastOptions) (BlastResult, error) {
	if o.Sockets <= 0 {
		o.Sockets = 8
	}
	if o.InFlight <= 0 {
		o.InFlight = 64
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	o.Sockets = min(o.Sockets, o.InFlight)
	var next atomic.Int64
	var res BlastResult
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < o.Sockets; i++ {
		w := o.InFlight / o.Sockets
		if i < o.InFlight%o.Sockets {
			w++
		}
		wg.Go(func() {
			b := &blaster{qs: qs, next: &next, window: w, timeout: o.Timeout, addr: addr}
			var err error
			if o.Batch {
				err = b.runBatch(ctx)
			} else {
				err = b.run(ctx)
			}
			if b.tcp != nil {
				b.tcp.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			res.Queries += b.sent
			res.Answered += b.answered
			res.Lost += b.lost
			res.Truncated += b.truncated
			res.NXDomain += b.nxdomain
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	if res.Elapsed > 0 {
		res.QPS = float64(res.Answered) / res.Elapsed.Seconds()
	}
	return res, firstErr
}

type blaster struct {
	qs      *Queries
	next    *atomic.Int64
	window  int
	timeout time.Duration
	addr    string
	tcp     net.Conn

	sent, answered, lost, truncated, nxdomain int64
}

type slot struct {
	q    int // query index, -1 when free
	id   uint16
	sent time.Time
}

func (b *blaster) take() int {
	i := int(b.next.Add(1) - 1)
	if i >= b.qs.Len() {
		return -1
	}
	return i
}

// run is the minimal client: one goroutine per socket, write a query, read
// an answer, write the next, with window queries outstanding.
func (b *blaster) run(ctx context.Context) error {
	conn, err := net.Dial("udp4", b.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	slots := make([]slot, b.window)
	gen := uint16(0)
	wbuf := make([]byte, 0, 512)
	send := func(s int) error {
		q := b.take()
		slots[s].q = q
		if q < 0 {
			return nil
		}
		gen++
		id := uint16(s) | gen<<10 // window <= 1024 per socket
		if b.window > 1024 {
			id = uint16(s)
		}
		slots[s].id = id
		slots[s].sent = time.Now()
		wbuf = append(wbuf[:0], b.qs.msg(q)...)
		binary.BigEndian.PutUint16(wbuf, id)
		b.sent++
		_, err := conn.Write(wbuf)
		return err
	}
	outstanding := 0
	for s := range slots {
		if err := send(s); err != nil {
			return err
		}
		if slots[s].q >= 0 {
			outstanding++
		}
	}
	rbuf := make([]byte, 4096)
	deadlineSet := time.Time{}
	for outstanding > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		if now.Sub(deadlineSet) > b.timeout/8 {
			_ = conn.SetReadDeadline(now.Add(b.timeout / 4))
			deadlineSet = now
		}
		n, err := conn.Read(rbuf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
			// Expire what waited too long; refill its slot.
			now := time.Now()
			for s := range slots {
				if slots[s].q >= 0 && now.Sub(slots[s].sent) > b.timeout {
					b.lost++
					if err := send(s); err != nil {
						return err
					}
					if slots[s].q < 0 {
						outstanding--
					}
				}
			}
			deadlineSet = time.Time{}
			continue
		}
		if n < 12 {
			continue
		}
		id := binary.BigEndian.Uint16(rbuf)
		s := int(id & 1023)
		if b.window > 1024 {
			s = int(id)
		}
		if s >= len(slots) || slots[s].q < 0 || slots[s].id != id {
			continue // late answer to a query already counted lost
		}
		if err := b.count(rbuf[:n], slots[s].q); err != nil {
			return err
		}
		if err := send(s); err != nil {
			return err
		}
		if slots[s].q < 0 {
			outstanding--
		}
	}
	return nil
}

// count records an answer; a truncated one is asked again over TCP.
func (b *blaster) count(r []byte, q int) error {
	if r[2]&0x02 != 0 {
		b.truncated++
		var err error
		if r, err = b.overTCP(q); err != nil {
			return err
		}
	}
	b.answered++
	if r[3]&0x0f == dns.RcodeNameError {
		b.nxdomain++
	}
	return nil
}

func (b *blaster) overTCP(q int) ([]byte, error) {
	if b.tcp == nil {
		c, err := net.Dial("tcp4", b.addr)
		if err != nil {
			return nil, err
		}
		b.tcp = c
	}
	m := b.qs.msg(q)
	buf := make([]byte, 2+len(m))
	binary.BigEndian.PutUint16(buf, uint16(len(m)))
	copy(buf[2:], m)
	_ = b.tcp.SetDeadline(time.Now().Add(b.timeout))
	if _, err := b.tcp.Write(buf); err != nil {
		return nil, err
	}
	var lb [2]byte
	if _, err := io.ReadFull(b.tcp, lb[:]); err != nil {
		return nil, err
	}
	r := make([]byte, binary.BigEndian.Uint16(lb[:]))
	if _, err := io.ReadFull(b.tcp, r); err != nil {
		return nil, err
	}
	if len(r) < 12 {
		return nil, errors.New("short answer over tcp")
	}
	return r, nil
}

// runBatch is run with sendmmsg/recvmmsg: used only to show the responder
// out-runs the minimal client.
func (b *blaster) runBatch(ctx context.Context) error {
	c, err := net.Dial("udp4", b.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	pc := ipv4.NewPacketConn(c.(*net.UDPConn))
	slots := make([]slot, b.window)
	ids := map[uint16]int{}
	gen := uint16(0)
	out := make([]ipv4.Message, 0, b.window)
	bufs := make([][]byte, b.window)
	for i := range bufs {
		bufs[i] = make([]byte, 0, 512)
	}
	fill := func(s int) {
		q := b.take()
		slots[s].q = q
		if q < 0 {
			return
		}
		gen++
		id := uint16(s) | gen<<10
		slots[s].id = id
		slots[s].sent = time.Now()
		ids[id] = s
		bufs[s] = append(bufs[s][:0], b.qs.msg(q)...)
		binary.BigEndian.PutUint16(bufs[s], id)
		out = append(out, ipv4.Message{Buffers: [][]byte{bufs[s]}})
		b.sent++
	}
	flush := func() error {
		for off := 0; off < len(out); {
			n, err := pc.WriteBatch(out[off:], 0)
			if err != nil {
				return err
			}
			off += n
		}
		out = out[:0]
		return nil
	}
	outstanding := 0
	for s := range slots {
		fill(s)
		if slots[s].q >= 0 {
			outstanding++
		}
	}
	if err := flush(); err != nil {
		return err
	}
	in := make([]ipv4.Message, 64)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 4096)}
	}
	for outstanding > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(b.timeout))
		n, err := pc.ReadBatch(in, 0)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				for s := range slots {
					if slots[s].q >= 0 {
						b.lost++
						delete(ids, slots[s].id)
						slots[s].q = -1
						outstanding--
					}
				}
				continue
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return err
		}
		for i := 0; i < n; i++ {
			r := in[i].Buffers[0][:in[i].N]
			if len(r) < 12 {
				continue
			}
			id := binary.BigEndian.Uint16(r)
			s, ok := ids[id]
			if !ok {
				continue
			}
			delete(ids, id)
			if err := b.count(r, slots[s].q); err != nil {
				return err
			}
			fill(s)
			if slots[s].q < 0 {
				outstanding--
			}
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}
