package dnstest

import (
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// WaitAnswer asks the DNS server at addr q until it answers anything (any
// rcode), for a daemon just started as a child (nsd, unbound). exited
// receives the child's Wait result: if the child ends first, that is the
// error (and the result is put back for whoever waits next). It gives up
// after limit.
func WaitAnswer(addr string, q *dns.Msg, exited chan error, limit time.Duration) error {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(limit)
	for {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("exited at start: %v", err)
		default:
		}
		_, _, err := c.Exchange(q, addr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s after %s: %w", addr, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
