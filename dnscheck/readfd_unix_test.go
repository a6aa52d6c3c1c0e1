//go:build unix

package dnscheck

import (
	"testing"
	"time"
)

// TestReadNow: a datagram there is read whatever the read deadline; none
// there is no datagram, without waiting.
func TestReadNow(t *testing.T) {
	u, peer := udpPair(t)
	if _, ok := u.readNow(); ok {
		t.Fatal("readNow found a datagram on an empty socket")
	}
	queueReply(t, u, peer, "late")
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
