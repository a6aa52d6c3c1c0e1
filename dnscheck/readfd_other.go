//go:build !unix

package dnscheck

// read reads one datagram into rbuf, under the socket's read deadline.
func (u *udpConn) read(wait bool) (int, error) {
	return u.c.Read(u.rbuf)
}
