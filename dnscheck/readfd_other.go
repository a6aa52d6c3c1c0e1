//go:build !unix

package dnscheck

import "time"

// read reads one datagram into rbuf, under the socket's read deadline.
func (u *udpConn) read(wait bool, sent time.Time) (int, error) {
	return u.c.Read(u.rbuf)
}

// readNow reports no datagram: read never misses one here.
func (u *udpConn) readNow() (n int, ok bool) { return 0, false }

// write sends the query b.
func (u *udpConn) write(b []byte) error {
	_, err := u.c.Write(b)
	return err
}
