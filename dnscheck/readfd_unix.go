//go:build unix

package dnscheck

import (
	"os"
	"syscall"
)

// read reads one datagram into rbuf, under the socket's read deadline.
// With wait, it waits for the socket to be readable before reading: right
// after a query, the reply is not there yet, and a read would only fail.
// (Only then: the poller says when a socket becomes readable, not whether
// it still is, so the datagrams there must be read until none is left.)
func (u *udpConn) read(wait bool) (int, error) {
	if u.readFn == nil {
		u.readFn = u.readOnce
	}
	u.waited, u.n, u.err = !wait, 0, nil
	if err := u.rc.Read(u.readFn); err != nil {
		return 0, err
	}
	return u.n, u.err
}

func (u *udpConn) readOnce(fd uintptr) bool {
	if !u.waited {
		u.waited = true
		return false
	}
	u.n, u.err = syscall.Read(int(fd), u.rbuf)
	if u.n < 0 {
		u.n = 0
	}
	if u.err == syscall.EAGAIN || u.err == syscall.EINTR {
		return false
	}
	if u.err != nil {
		u.err = os.NewSyscallError("read", u.err)
	}
	return true
}
