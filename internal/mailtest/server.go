// Package mailtest runs mail servers for tests, the lab and benchmarks: Go
// listeners on loopback that speak just enough SMTP, IMAP and POP3 to reach
// a TLS handshake (STARTTLS, STLS or implicit TLS), present a default
// certificate or one chosen by SNI ([Certs]), and can misbehave on purpose
// ([Mode]) so that clients are tested against silent, slow, endless and
// garbage-speaking servers.
//
// Linux routes all of 127.0.0.0/8 to the loopback interface, so servers can
// listen on 127.0.0.2, 127.0.0.3, ... without any setup, one "server IP"
// each.
//
// [PolicyServer] serves MTA-STS policies over HTTPS (policy.go).
//
// Certificates come from a test [CA] (ECDSA P-256, chosen names and dates)
// or [SelfSigned].
package mailtest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/certplan/certplan/model"
)

// Mode is how a server behaves.
type Mode string

// Modes. The hostile ones apply to every protocol: for STARTTLS protocols,
// the misbehaviour that concerns TLS (garbage, close) happens after the
// server has accepted STARTTLS.
const (
	// Normal speaks the protocol and completes the handshake.
	Normal Mode = ""
	// Silent accepts the connection and never sends a byte.
	Silent Mode = "silent"
	// Slow sends its greeting one byte per Config.SlowInterval, forever.
	Slow Mode = "slow"
	// EndlessLine sends a greeting line that never ends.
	EndlessLine Mode = "endless-line"
	// Garbage answers the ClientHello with bytes that are not TLS.
	Garbage Mode = "garbage"
	// CloseMidHandshake reads the ClientHello and closes the connection.
	CloseMidHandshake Mode = "close-mid-handshake"
	// NoSTARTTLS does not offer STARTTLS (IMAP: STARTTLS capability, POP3:
	// STLS); meaningless for implicit TLS.
	NoSTARTTLS Mode = "no-starttls"
	// RefuseSTARTTLS offers STARTTLS and refuses it: SMTP 454, IMAP NO,
	// POP3 -ERR.
	RefuseSTARTTLS Mode = "refuse-starttls"
)

// Config describes one server.
type Config struct {
	// Addr is the loopback address to listen on, such as "127.0.0.2:0"
	// (a free port) or "127.0.0.2:2525".
	Addr string
	// Protocol is a model.Proto* value.
	Protocol string
	// Certs is what the server presents; required unless the mode never
	// reaches a handshake.
	Certs *Certs
	Mode  Mode
	// Hostname is the name in the greeting; default "mail.test".
	Hostname string
	// Banner replaces the greeting text. For SMTP several lines make a
	// multi-line 220 reply ("220-first", ..., "220 last"); IMAP and POP3
	// use the first line only.
	Banner []string
	// SlowInterval is Slow's delay between bytes; default one second.
	SlowInterval time.Duration
}

// Server is a running listener. Close stops it and its connections.
type Server struct {
	cfg  Config
	ln   net.Listener
	tls  *tls.Config
	wg   sync.WaitGroup
	mu   sync.Mutex
	conn map[net.Conn]struct{}
	done chan struct{}
}

var starttlsProto = map[string]bool{
	model.ProtoSMTP: true, model.ProtoSubmission: true, model.ProtoIMAP: true, model.ProtoPOP3: true,
}

var knownProto = map[string]bool{
	model.ProtoSMTP: true, model.ProtoSubmission: true, model.ProtoSMTPS: true,
	model.ProtoIMAP: true, model.ProtoIMAPS: true, model.ProtoPOP3: true, model.ProtoPOP3S: true,
}

// Start listens on cfg.Addr and serves until Close.
func Start(cfg Config) (*Server, error) {
	if !knownProto[cfg.Protocol] {
		return nil, fmt.Errorf("mailtest: unknown protocol %q", cfg.Protocol)
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("mailtest: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("mailtest: %s: listen on a loopback address only", cfg.Addr)
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "mail.test"
	}
	if cfg.SlowInterval <= 0 {
		cfg.SlowInterval = time.Second
	}
	if cfg.Certs == nil {
		cfg.Certs = &Certs{}
		cfg.Certs.v.Store(&certSet{})
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("mailtest: %w", err)
	}
	s := &Server{
		cfg:  cfg,
		ln:   ln,
		tls:  &tls.Config{GetCertificate: cfg.Certs.GetCertificate, MinVersion: tls.VersionTLS12},
		conn: map[net.Conn]struct{}{},
		done: make(chan struct{}),
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the listening address, IP:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// IP is the listening IP.
func (s *Server) IP() string { return s.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the listening port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Protocol is the protocol served.
func (s *Server) Protocol() string { return s.cfg.Protocol }

// Close stops listening, closes open connections and waits for their
// goroutines.
func (s *Server) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	close(s.done)
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conn {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like
			continue
		}
		s.mu.Lock()
		select {
		case <-s.done:
			s.mu.Unlock()
			c.Close()
			return
		default:
		}
		s.conn[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conn, c)
				s.mu.Unlock()
				c.Close()
			}()
			// A client that never finishes is cut off, so tests end.
			_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
			s.serve(c)
		}()
	}
}

// session is one connection's plaintext side.
type session struct {
	s  *Server
	c  net.Conn
	br *bufio.Reader
}

func (ss *session) write(str string) bool {
	_, err := io.WriteString(ss.c, str)
	return err == nil
}

// line reads one client line (bounded), without CR LF.
func (ss *session) line() (string, bool) {
	b, err := ss.br.ReadSlice('\n')
	if err != nil {
		return "", false
	}
	return string(bytes.TrimRight(b, "\r\n")), true
}

func (s *Server) greetingLines() []string {
	if len(s.cfg.Banner) > 0 {
		return s.cfg.Banner
	}
	return []string{s.cfg.Hostname + " ESMTP certplan mailtest"}
}

func (s *Server) greeting() string {
	lines := s.greetingLines()
	switch s.cfg.Protocol {
	case model.ProtoSMTP, model.ProtoSubmission, model.ProtoSMTPS:
		var b strings.Builder
		for i, l := range lines {
			sep := "-"
			if i == len(lines)-1 {
				sep = " "
			}
			b.WriteString("220" + sep + l + "\r\n")
		}
		return b.String()
	case model.ProtoIMAP, model.ProtoIMAPS:
		if len(s.cfg.Banner) > 0 {
			return "* OK " + lines[0] + "\r\n"
		}
		return "* OK " + s.cfg.Hostname + " IMAP ready\r\n"
	default:
		if len(s.cfg.Banner) > 0 {
			return "+OK " + lines[0] + "\r\n"
		}
		return "+OK " + s.cfg.Hostname + " POP3 ready\r\n"
	}
}

func (s *Server) serve(c net.Conn) {
	ss := &session{s: s, c: c, br: bufio.NewReaderSize(c, 4096)}
	switch s.cfg.Mode {
	case Silent:
		_, _ = io.Copy(io.Discard, c)
		return
	case Slow:
		g := s.greeting()
		if !starttlsProto[s.cfg.Protocol] {
			g = "\x16\x03\x03\x00\x40" // the start of a TLS record that never completes
		}
		t := time.NewTicker(s.cfg.SlowInterval)
		defer t.Stop()
		for i := 0; ; i++ {
			if _, err := c.Write([]byte{g[i%len(g)]}); err != nil {
				return
			}
			select {
			case <-t.C:
			case <-s.done:
				return
			}
		}
	case EndlessLine:
		start := map[string]string{model.ProtoIMAP: "* OK ", model.ProtoPOP3: "+OK "}[s.cfg.Protocol]
		if start == "" {
			start = "220-"
		}
		if _, err := io.WriteString(c, start); err != nil {
			return
		}
		chunk := bytes.Repeat([]byte("a"), 4096)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
	if starttlsProto[s.cfg.Protocol] {
		var ok bool
		switch s.cfg.Protocol {
		case model.ProtoSMTP, model.ProtoSubmission:
			ok = ss.smtp()
		case model.ProtoIMAP:
			ok = ss.imap()
		case model.ProtoPOP3:
			ok = ss.pop3()
		}
		if !ok {
			return
		}
	}
	ss.tlsAndAfter()
}

// tlsAndAfter runs the handshake (or its hostile variant) and a short
// conversation over TLS.
func (ss *session) tlsAndAfter() {
	s := ss.s
	switch s.cfg.Mode {
	case Garbage:
		buf := make([]byte, 512)
		_, _ = ss.br.Read(buf) // the ClientHello, or part of it
		_, _ = io.WriteString(ss.c, "HTTP/1.0 400 Bad Request\r\nthis is not TLS\r\n\r\n")
		_, _ = io.Copy(io.Discard, ss.br)
		return
	case CloseMidHandshake:
		buf := make([]byte, 64)
		_, _ = io.ReadFull(ss.br, buf)
		return
	}
	tc := tls.Server(bufConn{ss.c, ss.br}, s.tls)
	if err := tc.Handshake(); err != nil {
		return
	}
	if !starttlsProto[s.cfg.Protocol] {
		if _, err := io.WriteString(tc, s.greeting()); err != nil {
			return
		}
	}
	br := bufio.NewReaderSize(tc, 4096)
	for {
		b, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(string(bytes.TrimRight(b, "\r\n")))
		tag, rest, _ := strings.Cut(cmd, " ")
		switch {
		case cmd == "QUIT":
			if s.cfg.Protocol == model.ProtoPOP3 || s.cfg.Protocol == model.ProtoPOP3S {
				_, _ = io.WriteString(tc, "+OK bye\r\n")
			} else {
				_, _ = io.WriteString(tc, "221 2.0.0 bye\r\n")
			}
			return
		case rest == "LOGOUT":
			_, _ = io.WriteString(tc, "* BYE logging out\r\n"+tag+" OK LOGOUT completed\r\n")
			return
		case strings.HasPrefix(cmd, "EHLO"):
			_, _ = io.WriteString(tc, "250-"+s.cfg.Hostname+"\r\n250 AUTH PLAIN\r\n")
		default:
			_, _ = io.WriteString(tc, "250 OK\r\n")
		}
	}
}

// bufConn reads through the session's buffer, so nothing read ahead is lost.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// smtp runs the plaintext SMTP dialogue; true means go on to TLS.
func (ss *session) smtp() bool {
	s := ss.s
	if !ss.write(s.greeting()) {
		return false
	}
	for {
		l, ok := ss.line()
		if !ok {
			return false
		}
		verb, _, _ := strings.Cut(strings.ToUpper(l), " ")
		switch verb {
		case "EHLO":
			resp := "250-" + s.cfg.Hostname + "\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
			if s.cfg.Mode != NoSTARTTLS {
				resp += "250-STARTTLS\r\n"
			}
			resp += "250 SMTPUTF8\r\n"
			if !ss.write(resp) {
				return false
			}
		case "HELO":
			if !ss.write("250 " + s.cfg.Hostname + "\r\n") {
				return false
			}
		case "STARTTLS":
			switch s.cfg.Mode {
			case NoSTARTTLS:
				if !ss.write("502 5.5.1 STARTTLS not supported\r\n") {
					return false
				}
				continue
			case RefuseSTARTTLS:
				if !ss.write("454 4.7.0 TLS not available due to local problem\r\n") {
					return false
				}
				continue
			}
			return ss.write("220 2.0.0 Ready to start TLS\r\n")
		case "QUIT":
			ss.write("221 2.0.0 Bye\r\n")
			return false
		default:
			if !ss.write("502 5.5.2 Error: command not recognized\r\n") {
				return false
			}
		}
	}
}

// imap runs the plaintext IMAP dialogue; true means go on to TLS.
func (ss *session) imap() bool {
	s := ss.s
	if !ss.write(s.greeting()) {
		return false
	}
	for {
		l, ok := ss.line()
		if !ok {
			return false
		}
		tag, cmd, _ := strings.Cut(l, " ")
		switch strings.ToUpper(cmd) {
		case "CAPABILITY":
			caps := "* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+"
			if s.cfg.Mode != NoSTARTTLS {
				caps += " STARTTLS"
			}
			if !ss.write(caps + " LOGINDISABLED\r\n" + tag + " OK Pre-login capabilities listed\r\n") {
				return false
			}
		case "STARTTLS":
			switch s.cfg.Mode {
			case NoSTARTTLS:
				if !ss.write(tag + " BAD Unknown command\r\n") {
					return false
				}
				continue
			case RefuseSTARTTLS:
				if !ss.write(tag + " NO [UNAVAILABLE] TLS not available\r\n") {
					return false
				}
				continue
			}
			return ss.write(tag + " OK Begin TLS negotiation now\r\n")
		case "LOGOUT":
			ss.write("* BYE Logging out\r\n" + tag + " OK Logout completed\r\n")
			return false
		default:
			if !ss.write(tag + " BAD Unknown command\r\n") {
				return false
			}
		}
	}
}

// pop3 runs the plaintext POP3 dialogue; true means go on to TLS.
func (ss *session) pop3() bool {
	s := ss.s
	if !ss.write(s.greeting()) {
		return false
	}
	for {
		l, ok := ss.line()
		if !ok {
			return false
		}
		verb, _, _ := strings.Cut(strings.ToUpper(l), " ")
		switch verb {
		case "CAPA":
			caps := "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nUSER\r\n"
			if s.cfg.Mode != NoSTARTTLS {
				caps += "STLS\r\n"
			}
			if !ss.write(caps + ".\r\n") {
				return false
			}
		case "STLS":
			if s.cfg.Mode == NoSTARTTLS || s.cfg.Mode == RefuseSTARTTLS {
				if !ss.write("-ERR TLS not available\r\n") {
					return false
				}
				continue
			}
			return ss.write("+OK Begin TLS negotiation\r\n")
		case "QUIT":
			ss.write("+OK Bye\r\n")
			return false
		default:
			if !ss.write("-ERR Unknown command\r\n") {
				return false
			}
		}
	}
}
