//go:build unix

package dnscheck

import (
	"net"
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

// TestReadReplyArrivedBeforeWait: a reply that came while the reader was
// not running (the query sent longer ago than skipWait) is read at once,
// not left for the deadline: the poller forgets a readiness that came
// before the wait began.
func TestReadReplyArrivedBeforeWait(t *testing.T) {
	u, peer := udpPair(t)
	sent := time.Now()
	if _, err := u.c.Write([]byte("query")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_, from, err := peer.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peer.WriteToUDP([]byte("reply"), from); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // the reply is queued, its readiness polled
	u.setDeadline(time.Now().Add(2*time.Second), time.Now())
	start := time.Now()
	n, err := u.read(true, sent)
	if err != nil || string(u.rbuf[:n]) != "reply" {
		t.Fatalf("read %q, %v", u.rbuf[:n], err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("the queued reply was read after %s: it waited for the deadline", d)
	}
}

// TestReadNow: a datagram there is read whatever the read deadline; none
// there is no datagram, without waiting.
func TestReadNow(t *testing.T) {
	u, peer := udpPair(t)
	if _, ok := u.readNow(); ok {
		t.Fatal("readNow found a datagram on an empty socket")
	}
	if _, err := u.c.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_, from, err := peer.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peer.WriteToUDP([]byte("late"), from); err != nil {
		t.Fatal(err)
	}
	_ = u.c.SetReadDeadline(time.Now().Add(-time.Second)) // passed
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if n, ok := u.readNow(); ok {
			if string(u.rbuf[:n]) != "late" {
				t.Fatalf("readNow read %q", u.rbuf[:n])
			}
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("readNow did not read the datagram")
}
