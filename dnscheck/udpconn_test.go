package dnscheck

import (
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// udpPair returns a udpConn connected to a loopback socket, and that
// socket.
func udpPair(t *testing.T) (*udpConn, *net.UDPConn) {
	t.Helper()
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	s := &server{ua: peer.LocalAddr().(*net.UDPAddr)}
	u, err := s.dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.c.Close() })
	return u, peer
}

// queueReply sends a query from u to peer, which answers it with reply:
// the reply is then on its way to u, unread.
func queueReply(t *testing.T, u *udpConn, peer *net.UDPConn, reply string) {
	t.Helper()
	if _, err := u.c.Write([]byte("query")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_, from, err := peer.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peer.WriteToUDP([]byte(reply), from); err != nil {
		t.Fatal(err)
	}
}

// TestReadReplyArrivedBeforeWait: a reply that came while the reader was
// not running is read at once, not left for the deadline. The poller
// forgets a readiness that came before a read begins (the read resets
// it), so a read that waited for the poller before trying the socket would
// miss it; net.Conn's Read tries the socket first.
func TestReadReplyArrivedBeforeWait(t *testing.T) {
	u, peer := udpPair(t)
	queueReply(t, u, peer, "reply")
	time.Sleep(30 * time.Millisecond) // the reply is queued, its readiness polled
	u.setDeadline(time.Now().Add(2*time.Second), time.Now())
	start := time.Now()
	n, err := u.read()
	if err != nil || string(u.rbuf[:n]) != "reply" {
		t.Fatalf("read %q, %v", u.rbuf[:n], err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("the queued reply was read after %s: it waited for the deadline", d)
	}
}

// TestSendThenRead: the query goes out and its reply, however fast, is
// read without waiting for the deadline, also when the reply comes before
// the read begins (here: while the sender sleeps after the send); a socket
// whose deadline has passed still sends the query and reports the timeout.
func TestSendThenRead(t *testing.T) {
	u, peer := udpPair(t)
	go echoRe(peer)
	for i := range 200 {
		u.setDeadline(time.Now().Add(2*time.Second), time.Now())
		start := time.Now()
		q := []byte("q" + strconv.Itoa(i))
		if err := u.write(q); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			time.Sleep(30 * time.Millisecond) // the reply is there, its readiness polled
		}
		n, err := u.read()
		if err != nil || string(u.rbuf[:n]) != "re:"+string(q) {
			t.Fatalf("try %d: read %q, %v", i, u.rbuf[:n], err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("try %d: the reply was read after %s: it waited for the deadline", i, d)
		}
	}
	_ = u.c.SetReadDeadline(time.Now().Add(-time.Second))
	u.dl = time.Time{}
	if err := u.write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	if _, err := u.read(); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with a passed deadline: %v, want a timeout", err)
	}
	_ = u.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := u.read()
	if err != nil || string(u.rbuf[:n]) != "re:late" {
		t.Fatalf("after a passed deadline: read %q, %v; want the query sent and answered", u.rbuf[:n], err)
	}
}

// TestSendRead: the query goes out and its reply, however fast, is read
// without waiting for the deadline; a socket whose deadline has passed
// still sends the query and reports the timeout.
func TestSendRead(t *testing.T) {
	u, peer := udpPair(t)
	go echoRe(peer)
	for i := range 200 {
		u.setDeadline(time.Now().Add(2*time.Second), time.Now())
		start := time.Now()
		q := []byte("q" + strconv.Itoa(i))
		n, err := u.sendRead(q)
		if err != nil || string(u.rbuf[:n]) != "re:"+string(q) {
			t.Fatalf("try %d: read %q, %v", i, u.rbuf[:n], err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("try %d: the reply was read after %s: it waited for the deadline", i, d)
		}
	}
	// A reply that arrives before the read waits (here: while the
	// sender sleeps right after the send) is seen, not left for the
	// deadline.
	u.afterSend = func() { time.Sleep(30 * time.Millisecond) }
	u.setDeadline(time.Now().Add(2*time.Second), time.Now())
	start := time.Now()
	n, err := u.sendRead([]byte("slow"))
	u.afterSend = nil
	if err != nil || string(u.rbuf[:n]) != "re:slow" {
		t.Fatalf("read %q, %v", u.rbuf[:n], err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a reply there before the wait was read after %s: it waited for the deadline", d)
	}
	_ = u.c.SetReadDeadline(time.Now().Add(-time.Second))
	u.dl = time.Time{}
	if _, err := u.sendRead([]byte("late")); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("sendRead with a passed deadline: %v, want a timeout", err)
	}
	_ = u.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err = u.read()
	if err != nil || string(u.rbuf[:n]) != "re:late" {
		t.Fatalf("after a passed deadline: read %q, %v; want the query sent and answered", u.rbuf[:n], err)
	}
}

// echoRe answers every datagram to peer with "re:" and the datagram, until
// peer is closed.
func echoRe(peer *net.UDPConn) {
	buf := make([]byte, 64)
	for {
		n, from, err := peer.ReadFromUDP(buf)
		if err != nil {
			return
		}
		_, _ = peer.WriteToUDP(append([]byte("re:"), buf[:n]...), from)
	}
}
