//go:build !unix

package dnscheck

// sendRead sends the query b and reads one datagram into rbuf, under the
// socket's read deadline.
func (u *udpConn) sendRead(b []byte) (int, error) {
	if err := u.write(b); err != nil {
		return 0, err
	}
	return u.read()
}

// read reads one datagram into rbuf, under the socket's read deadline.
func (u *udpConn) read() (int, error) {
	return u.c.Read(u.rbuf)
}

// readNow reports no datagram.
func (u *udpConn) readNow() (n int, ok bool) { return 0, false }
