//go:build unix

package dnscheck

import (
	"os"
	"syscall"
	"time"
	"unsafe"
)

// read reads one datagram into rbuf, under the socket's read deadline.
// With wait, it waits for the socket to be readable before reading: right
// after a query, the reply is not there yet, and a read would only fail.
// (Only then: the poller says when a socket becomes readable, not whether
// it still is, so the datagrams there must be read until none is left.)
//
// The wait is skipped, and the socket read at once, when the query was
// sent more than skipWait ago: the poller forgets a readiness that came
// before the wait begins, so a reply that arrived while this goroutine was
// not running (a busy machine, a resolver that answers in microseconds)
// would otherwise wait unseen until the next deadline. A reply that
// arrives faster than that is found at the next deadline (the query's
// hold, at most half its timeout), or by readNow before the query is
// given up.
func (u *udpConn) read(wait bool, sent time.Time) (int, error) {
	if u.readFn == nil {
		u.readFn = u.readOnce
	}
	u.waited, u.n, u.err = !wait, 0, nil
	u.sent = sent
	if err := u.rc.Read(u.readFn); err != nil {
		return 0, err
	}
	return u.n, u.err
}

// skipWait is how long after its query a first read no longer waits for
// the poller (see read).
const skipWait = 20 * time.Microsecond

func (u *udpConn) readOnce(fd uintptr) bool {
	if !u.waited {
		u.waited = true
		if time.Since(u.sent) < skipWait {
			return false
		}
	}
	u.n, u.err = rawRead(fd, u.rbuf)
	if u.err == syscall.EAGAIN || u.err == syscall.EINTR {
		return false
	}
	if u.err != nil {
		u.err = os.NewSyscallError("read", u.err)
	}
	return true
}

// readNow reads a datagram if one is there, without waiting and whatever
// the read deadline; ok is false when there is none.
func (u *udpConn) readNow() (n int, ok bool) {
	_ = u.rc.Control(func(fd uintptr) {
		var err error
		n, err = syscall.Read(int(fd), u.rbuf)
		ok = err == nil && n >= 0
	})
	return n, ok
}

// write sends the query b. The socket is non-blocking and a datagram is
// sent whole or not at all, so the write is made directly on the file
// descriptor (without the fd's write lock and poller, which a UDP send
// never waits for); a full send buffer (EAGAIN) waits through the
// net.Conn.
func (u *udpConn) write(b []byte) error {
	if u.writeFn == nil {
		u.writeFn = u.writeOnce
	}
	u.wbufOut, u.werr = b, nil
	if err := u.rc.Control(u.writeFn); err != nil {
		return err
	}
	if u.werr == syscall.EAGAIN || u.werr == syscall.EINTR {
		_, err := u.c.Write(b)
		return err
	}
	if u.werr != nil {
		return os.NewSyscallError("write", u.werr)
	}
	return nil
}

func (u *udpConn) writeOnce(fd uintptr) {
	b := u.wbufOut
	_, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		u.werr = e
	}
}

// rawRead reads a datagram from the non-blocking socket fd into b. It
// never blocks, so it is made without telling the scheduler (a
// RawSyscall): a read that finds nothing returns EAGAIN at once.
func rawRead(fd uintptr, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
