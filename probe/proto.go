package probe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/certplan/certplan/model"
)

// protocol is how to reach the TLS handshake on one kind of port.
type protocol struct {
	// starttls runs the plaintext dialogue up to the handshake; nil for
	// implicit TLS.
	starttls func(d *dialog) error
	// quit is sent after the handshake, unanswered.
	quit string
}

var protocols = map[string]protocol{
	model.ProtoSMTP:       {starttls: smtpSTARTTLS, quit: "QUIT\r\n"},
	model.ProtoSubmission: {starttls: smtpSTARTTLS, quit: "QUIT\r\n"},
	model.ProtoSMTPS:      {quit: "QUIT\r\n"},
	model.ProtoIMAP:       {starttls: imapSTARTTLS, quit: "a3 LOGOUT\r\n"},
	model.ProtoIMAPS:      {quit: "a1 LOGOUT\r\n"},
	model.ProtoPOP3:       {starttls: pop3STLS, quit: "QUIT\r\n"},
	model.ProtoPOP3S:      {quit: "QUIT\r\n"},
}

// dialog is one plaintext conversation, with bounded reads.
type dialog struct {
	ctx  context.Context
	br   *bufio.Reader
	conn net.Conn
	ehlo []byte
	ep   *model.Endpoint
	max  int // line bound
	left int // bytes left for the whole dialogue
}

var readerPool sync.Pool // *bufio.Reader

func (p *Prober) newDialog(ctx context.Context, conn net.Conn, ep *model.Endpoint) *dialog {
	br, _ := readerPool.Get().(*bufio.Reader)
	if br == nil || br.Size() != p.cfg.MaxLine {
		br = bufio.NewReaderSize(conn, p.cfg.MaxLine)
	} else {
		br.Reset(conn)
	}
	return &dialog{ctx: ctx, br: br, conn: conn, ehlo: p.ehlo, ep: ep, max: p.cfg.MaxLine, left: p.cfg.MaxBytes}
}

func (d *dialog) release() {
	d.br.Reset(nil)
	readerPool.Put(d.br)
	d.br = nil
}

// line reads one line without its CR LF; the slice is valid until the next
// read.
func (d *dialog) line(op string) ([]byte, error) {
	b, err := d.br.ReadSlice('\n')
	d.left -= len(b)
	if d.left < 0 {
		return nil, &Error{Kind: model.ErrorKindTooLong, Op: op, Err: errors.New("server sent too much before the handshake")}
	}
	if err == bufio.ErrBufferFull {
		return nil, &Error{Kind: model.ErrorKindTooLong, Op: op, Err: fmt.Errorf("line longer than %d bytes", d.max)}
	}
	if err != nil {
		return nil, classify(op, err, d.ctx)
	}
	return bytes.TrimRight(b, "\r\n"), nil
}

func (d *dialog) send(op string, b []byte) error {
	if _, err := d.conn.Write(b); err != nil {
		return classify(op, err, d.ctx)
	}
	return nil
}

// printable returns b as a string for messages: bounded, control bytes
// replaced.
func printable(b []byte) string {
	const limit = 200
	if len(b) > limit {
		b = b[:limit]
	}
	return string(bytes.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, b))
}

// smtpReply reads one possibly multi-line reply (RFC 5321 4.2.1) and calls
// each (if non-nil) with the text of every line. It returns the code and the
// first line.
func (d *dialog) smtpReply(op string, each func(text []byte)) (int, string, error) {
	var first string
	code := 0
	for n := 0; ; n++ {
		l, err := d.line(op)
		if err != nil {
			return 0, "", err
		}
		if len(l) < 3 || !isDigit(l[0]) || !isDigit(l[1]) || !isDigit(l[2]) || (len(l) > 3 && l[3] != ' ' && l[3] != '-') {
			return 0, "", protoErr(op, "not an SMTP reply: %q", printable(l))
		}
		c := int(l[0]-'0')*100 + int(l[1]-'0')*10 + int(l[2]-'0')
		if n == 0 {
			code, first = c, printable(l)
		} else if c != code {
			return 0, "", protoErr(op, "reply code changed within a multi-line reply: %q", printable(l))
		}
		if each != nil && len(l) > 4 {
			each(l[4:])
		}
		if len(l) == 3 || l[3] == ' ' {
			return code, first, nil
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// smtpSTARTTLS: greeting, EHLO, STARTTLS (RFC 3207).
func smtpSTARTTLS(d *dialog) error {
	code, first, err := d.smtpReply("greeting", nil)
	if err != nil {
		return err
	}
	d.ep.Banner = first
	if code != 220 {
		return protoErr("greeting", "server refused the session: %s", first)
	}
	if err := d.send("ehlo", d.ehlo); err != nil {
		return err
	}
	offered := false
	code, first, err = d.smtpReply("ehlo", func(text []byte) {
		if hasToken(text, "STARTTLS") {
			offered = true
		}
	})
	if err != nil {
		return err
	}
	if code != 250 {
		return protoErr("ehlo", "server refused EHLO: %s", first)
	}
	if !offered {
		return &Error{Kind: model.ErrorKindNoSTARTTLS, Op: "ehlo", Err: errors.New("server does not offer STARTTLS")}
	}
	if err := d.send("starttls", []byte("STARTTLS\r\n")); err != nil {
		return err
	}
	code, first, err = d.smtpReply("starttls", nil)
	if err != nil {
		return err
	}
	switch {
	case code == 220:
		return nil
	case code >= 400:
		return &Error{Kind: model.ErrorKindSTARTTLSRefused, Op: "starttls", Err: fmt.Errorf("server refused STARTTLS: %s", first)}
	}
	return protoErr("starttls", "unexpected reply: %s", first)
}

// hasToken reports whether the space-separated text holds tok (ASCII case
// insensitive), ignoring IMAP's brackets.
func hasToken(text []byte, tok string) bool {
	for len(text) > 0 {
		i := bytes.IndexByte(text, ' ')
		var w []byte
		if i < 0 {
			w, text = text, nil
		} else {
			w, text = text[:i], text[i+1:]
		}
		w = bytes.Trim(w, "[]")
		if bytes.EqualFold(w, []byte(tok)) {
			return true
		}
	}
	return false
}

// imapTagged reads lines up to the one tagged tag, calling untagged for the
// others, and returns the tagged line's status and the line.
func (d *dialog) imapTagged(op, tag string, untagged func(l []byte)) (string, string, error) {
	for {
		l, err := d.line(op)
		if err != nil {
			return "", "", err
		}
		if len(l) > len(tag) && string(l[:len(tag)]) == tag && l[len(tag)] == ' ' {
			rest := l[len(tag)+1:]
			status := rest
			if i := bytes.IndexByte(rest, ' '); i >= 0 {
				status = rest[:i]
			}
			return string(bytes.ToUpper(status)), printable(l), nil
		}
		if untagged != nil {
			untagged(l)
		}
	}
}

// imapSTARTTLS: greeting, CAPABILITY (skipped when the greeting lists
// STARTTLS), STARTTLS (RFC 3501 6.2.1, RFC 9051).
func imapSTARTTLS(d *dialog) error {
	l, err := d.line("greeting")
	if err != nil {
		return err
	}
	d.ep.Banner = printable(l)
	switch {
	case hasPrefixFold(l, "* OK"):
	case hasPrefixFold(l, "* PREAUTH"):
		return protoErr("greeting", "server pre-authenticated the session, STARTTLS is not allowed: %s", printable(l))
	default:
		return protoErr("greeting", "server refused the session: %s", printable(l))
	}
	offered := hasToken(l, "STARTTLS")
	if !offered {
		if err := d.send("capability", []byte("a1 CAPABILITY\r\n")); err != nil {
			return err
		}
		status, line, err := d.imapTagged("capability", "a1", func(u []byte) {
			if hasPrefixFold(u, "* CAPABILITY ") && hasToken(u, "STARTTLS") {
				offered = true
			}
		})
		if err != nil {
			return err
		}
		if status != "OK" {
			return protoErr("capability", "server refused CAPABILITY: %s", line)
		}
	}
	if !offered {
		return &Error{Kind: model.ErrorKindNoSTARTTLS, Op: "capability", Err: errors.New("server does not offer STARTTLS")}
	}
	if err := d.send("starttls", []byte("a2 STARTTLS\r\n")); err != nil {
		return err
	}
	status, line, err := d.imapTagged("starttls", "a2", nil)
	if err != nil {
		return err
	}
	switch status {
	case "OK":
		return nil
	case "NO", "BAD":
		return &Error{Kind: model.ErrorKindSTARTTLSRefused, Op: "starttls", Err: fmt.Errorf("server refused STARTTLS: %s", line)}
	}
	return protoErr("starttls", "unexpected reply: %s", line)
}

// pop3STLS: greeting, CAPA, STLS (RFC 2595 4). A server that does not know
// CAPA is still asked for STLS.
func pop3STLS(d *dialog) error {
	l, err := d.line("greeting")
	if err != nil {
		return err
	}
	d.ep.Banner = printable(l)
	if !hasPrefixFold(l, "+OK") {
		return protoErr("greeting", "server refused the session: %s", printable(l))
	}
	if err := d.send("capability", []byte("CAPA\r\n")); err != nil {
		return err
	}
	l, err = d.line("capability")
	if err != nil {
		return err
	}
	if hasPrefixFold(l, "+OK") {
		offered := false
		for {
			l, err = d.line("capability")
			if err != nil {
				return err
			}
			if len(l) == 1 && l[0] == '.' {
				break
			}
			if hasToken(l, "STLS") {
				offered = true
			}
		}
		if !offered {
			return &Error{Kind: model.ErrorKindNoSTARTTLS, Op: "capability", Err: errors.New("server does not offer STLS")}
		}
	} else if !hasPrefixFold(l, "-ERR") {
		return protoErr("capability", "unexpected reply: %s", printable(l))
	}
	if err := d.send("starttls", []byte("STLS\r\n")); err != nil {
		return err
	}
	l, err = d.line("starttls")
	if err != nil {
		return err
	}
	switch {
	case hasPrefixFold(l, "+OK"):
		return nil
	case hasPrefixFold(l, "-ERR"):
		return &Error{Kind: model.ErrorKindSTARTTLSRefused, Op: "starttls", Err: fmt.Errorf("server refused STLS: %s", printable(l))}
	}
	return protoErr("starttls", "unexpected reply: %s", printable(l))
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}
