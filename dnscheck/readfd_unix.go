//go:build unix

package dnscheck

import (
	"os"
	"syscall"
	"unsafe"
)

// sendRead sends the query b and reads one datagram into rbuf, under the
// socket's read deadline: the first read of a try.
//
// Both happen inside one RawConn.Read: its callback sends the query and
// returns to wait for the poller, which then wakes it to read the reply.
// That is three system calls a query (the send, the poller's wait, the
// read); net.Conn's Write and Read make four (the Read tries the socket
// before it waits, and right after the send finds it empty). The send and
// the read are raw system calls (no entersyscall/exitsyscall: on a
// non-blocking socket they never block). In the alternating bench (issue
// 14, step 5; bench/README.md) this form took 8-18 % less client CPU a
// query than net.Conn's Write and Read, and 8 % less than the same
// callback with syscall.Read and syscall.Write.
//
// Nothing is missed either way: the poller's readiness is reset as the
// read begins, before the send, so a reply however fast wakes the wait
// (TestSendRead), and a later read looks at the socket before it waits
// (TestReadReplyArrivedBeforeWait).
func (u *udpConn) sendRead(b []byte) (int, error) {
	if u.readFn == nil {
		u.readFn = u.readOnce
	}
	u.out, u.werr, u.n, u.err = b, nil, 0, nil
	err := u.rc.Read(u.readFn)
	if u.out != nil {
		// Not sent: the read ended before it began (the deadline had
		// passed). Send it now; the next read looks first.
		u.out = nil
		if werr := u.write(b); werr != nil {
			return 0, werr
		}
		return 0, err
	}
	switch {
	case u.werr == syscall.EAGAIN || u.werr == syscall.EINTR:
		// A full send buffer: wait for room, then read as usual.
		if err := u.write(b); err != nil {
			return 0, err
		}
		return u.read()
	case u.werr != nil:
		return 0, os.NewSyscallError("write", u.werr)
	case err != nil:
		return 0, err
	}
	return u.n, u.err
}

// read reads one datagram into rbuf, under the socket's read deadline:
// at once when one is there, else when the poller says one has come.
func (u *udpConn) read() (int, error) {
	if u.readFn == nil {
		u.readFn = u.readOnce
	}
	u.out, u.werr, u.n, u.err = nil, nil, 0, nil
	if err := u.rc.Read(u.readFn); err != nil {
		return 0, err
	}
	return u.n, u.err
}

// readOnce is the read's callback: it sends the query first when there is
// one to send (then waits), and otherwise reads a datagram if one is
// there. The socket is non-blocking and a datagram goes whole or not at
// all, so both are raw system calls, which never block.
func (u *udpConn) readOnce(fd uintptr) bool {
	if b := u.out; b != nil {
		u.out = nil
		if _, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b))); e != 0 {
			u.werr = e
			return true
		}
		if u.afterSend != nil {
			u.afterSend()
		}
		return false // wait for the reply (seen even if already there)
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(u.rbuf))), uintptr(len(u.rbuf)))
	if e == syscall.EAGAIN || e == syscall.EINTR {
		return false
	}
	if e != 0 {
		u.err = os.NewSyscallError("read", e)
	}
	u.n = int(n)
	return true
}

// readNow reads a datagram if one is there, without waiting and whatever
// the read deadline (a read whose deadline has passed returns before it
// looks); ok is false when there is none.
func (u *udpConn) readNow() (n int, ok bool) {
	_ = u.rc.Control(func(fd uintptr) {
		var err error
		n, err = syscall.Read(int(fd), u.rbuf)
		ok = err == nil && n >= 0
	})
	return n, ok
}
