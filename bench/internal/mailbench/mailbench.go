// Package mailbench holds the TLS side of the benchmark: the handshake
// ceiling, a bare crypto/tls loop that does the same protocol dance as
// certplan's probe (banner, EHLO, STARTTLS for the STARTTLS ports) with the
// same curves and certificates and nothing else, and the certificates the
// benchmark's mail listeners serve.
package mailbench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certplan/certplan/model"
)

// Target is one handshake: what certplan's probe.Target holds.
type Target struct {
	IP       string `json:"ip"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	SNI      string `json:"sni,omitempty"`
}

// CeilingResult is what the ceiling measured.
type CeilingResult struct {
	Handshakes int64         `json:"handshakes"`
	Failed     int64         `json:"failed"`
	FirstError string        `json:"first_error,omitempty"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	PerSecond  float64       `json:"per_second"`
}

// Ceiling makes every handshake of targets, concurrency at a time, as
// certplan's probe would make them but with nothing around: no
// verification, no certificate parsing beyond what crypto/tls does, no
// report. The client config matches the probe's (default curves, TLS 1.0
// minimum, no session cache).
func Ceiling(ctx context.Context, targets []Target, concurrency int, timeout time.Duration) CeilingResult {
	var next atomic.Int64
	var res CeilingResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	conf := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10} //nolint:gosec // the ceiling verifies nothing
	confs := map[string]*tls.Config{}
	for _, t := range targets {
		if _, ok := confs[t.SNI]; !ok {
			c := conf.Clone()
			c.ServerName = t.SNI
			confs[t.SNI] = c
		}
	}
	for range min(concurrency, len(targets)) {
		wg.Go(func() {
			var ok, failed int64
			var first error
			br := bufio.NewReaderSize(nil, 4096)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(targets) || ctx.Err() != nil {
					break
				}
				t := targets[i]
				if err := handshake(ctx, t, confs[t.SNI], br, timeout); err != nil {
					failed++
					if first == nil {
						first = fmt.Errorf("%s:%d %s: %w", t.IP, t.Port, t.SNI, err)
					}
					continue
				}
				ok++
			}
			mu.Lock()
			res.Handshakes += ok
			res.Failed += failed
			if first != nil && res.FirstError == "" {
				res.FirstError = first.Error()
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.PerSecond = float64(res.Handshakes) / res.Elapsed.Seconds()
	return res
}

var ehlo = []byte("EHLO certplan.invalid\r\n")

func handshake(ctx context.Context, t Target, conf *tls.Config, br *bufio.Reader, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(t.IP, strconv.Itoa(t.Port)))
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	switch t.Protocol {
	case model.ProtoSMTP, model.ProtoSubmission:
		br.Reset(conn)
		if err := reply(br, 220); err != nil {
			return fmt.Errorf("greeting: %w", err)
		}
		if _, err := conn.Write(ehlo); err != nil {
			return err
		}
		if err := reply(br, 250); err != nil {
			return fmt.Errorf("ehlo: %w", err)
		}
		if _, err := conn.Write([]byte("STARTTLS\r\n")); err != nil {
			return err
		}
		if err := reply(br, 220); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
		br.Reset(nil)
	case model.ProtoSMTPS:
	default:
		return fmt.Errorf("ceiling: protocol %q not supported", t.Protocol)
	}
	tc := tls.Client(conn, conf)
	if err := tc.Handshake(); err != nil {
		return err
	}
	if len(tc.ConnectionState().PeerCertificates) == 0 {
		return errors.New("no certificate")
	}
	_, _ = tc.Write([]byte("QUIT\r\n"))
	return nil
}

// reply reads one SMTP reply, multi-line or not, and checks its code.
func reply(br *bufio.Reader, want int) error {
	for {
		l, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(l) < 4 || int(l[0]-'0')*100+int(l[1]-'0')*10+int(l[2]-'0') != want {
			return fmt.Errorf("unexpected reply %q", strings.TrimSpace(string(l)))
		}
		if l[3] == ' ' || l[3] == '\r' || l[3] == '\n' {
			return nil
		}
	}
}
