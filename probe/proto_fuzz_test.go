package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certplan/certplan/model"
)

//	go test -run XXX -fuzz FuzzSTARTTLS -fuzztime 150s -parallel 1 ./probe/

// fuzzProtocols are the protocols with a plaintext dialogue, by the fuzz
// input's first argument.
var fuzzProtocols = []string{model.ProtoSMTP, model.ProtoIMAP, model.ProtoPOP3}

// Bounds small enough that an endless server reaches them at once.
const (
	fuzzMaxLine  = 128
	fuzzMaxBytes = 2048
)

// FuzzSTARTTLS runs the plaintext dialogue up to the handshake (SMTP, IMAP
// or POP3) against a server that sends the fuzz input, once or over and
// over (endless). Whatever it sends, the dialogue ends before the deadline
// having read at most MaxBytes plus two buffers, fails with an *Error of a
// known kind whose message is bounded, and keeps a printable, bounded banner.
func FuzzSTARTTLS(f *testing.F) {
	// Dialogues as the lab's servers (internal/mailtest) and Postfix,
	// Exim and Dovecot write them.
	smtp := "220-mx.main-domain.test ESMTP Postfix\r\n220 mx.main-domain.test\r\n" +
		"250-mx.main-domain.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n" +
		"220 2.0.0 Ready to start TLS\r\n"
	f.Add(uint8(0), []byte(smtp), false)
	f.Add(uint8(0), []byte("220 mail.domain2.test ESMTP Exim 4.97\r\n250-mail.domain2.test Hello\r\n250-SIZE 52428800\r\n250 HELP\r\n"), false)
	f.Add(uint8(0), []byte("220 x ESMTP\r\n250-x\r\n250 STARTTLS\r\n454 4.7.0 TLS not available\r\n"), false)
	f.Add(uint8(0), []byte("220 x ESMTP\r\n250-x\r\n250 STARTTLS\r\n220 go ahead\r\n250 injected\r\n"), false)
	f.Add(uint8(0), []byte("554 5.7.1 no\r\n"), false)
	f.Add(uint8(0), []byte("250-x\r\n"), true)
	f.Add(uint8(1), []byte("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot ready.\r\na2 OK Begin TLS negotiation now\r\n"), false)
	f.Add(uint8(1), []byte("* OK mail.domain2.test IMAP ready\r\n* CAPABILITY IMAP4rev1 SASL-IR STARTTLS LOGINDISABLED\r\na1 OK Pre-login capabilities listed\r\na2 NO [UNAVAILABLE] TLS not available\r\n"), false)
	f.Add(uint8(1), []byte("* PREAUTH welcome\r\n"), false)
	f.Add(uint8(1), []byte("* OK\r\n* x\r\n"), true)
	f.Add(uint8(2), []byte("+OK Dovecot ready.\r\n+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nUSER\r\nSTLS\r\n.\r\n+OK Begin TLS negotiation\r\n"), false)
	f.Add(uint8(2), []byte("+OK ready\r\n-ERR unknown command\r\n-ERR TLS not available\r\n"), false)
	f.Add(uint8(2), []byte("+OK\r\n+OK\r\nx\r\n"), true)
	p := New(Config{MaxLine: fuzzMaxLine, MaxBytes: fuzzMaxBytes})
	f.Fuzz(func(t *testing.T, which uint8, server []byte, endless bool) {
		proto := fuzzProtocols[int(which)%len(fuzzProtocols)]
		client, srv := net.Pipe()
		defer client.Close()
		_ = client.SetDeadline(time.Now().Add(10 * time.Second))
		var sent atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			go func() { _, _ = io.Copy(io.Discard, srv) }() // the commands
			for len(server) > 0 {
				n, err := srv.Write(server)
				sent.Add(int64(n))
				if err != nil || !endless {
					break
				}
			}
			srv.Close()
		}()
		ep := &model.Endpoint{}
		d := p.newDialog(context.Background(), client, ep)
		err := protocols[proto].starttls(d)
		buffered := d.br.Buffered()
		d.release()
		client.Close()
		<-done
		if n := sent.Load(); n > fuzzMaxBytes+2*fuzzMaxLine {
			t.Fatalf("%s: read %d bytes; the bound is %d and a line of %d", proto, n, fuzzMaxBytes, fuzzMaxLine)
		}
		if buffered > fuzzMaxLine {
			t.Fatalf("%d bytes buffered", buffered)
		}
		checkBanner(t, ep.Banner)
		if err == nil {
			return
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Fatalf("%s: error %T %v, want *Error", proto, err, err)
		}
		switch pe.Kind {
		case model.ErrorKindTimeout:
			t.Fatalf("%s: the dialogue did not end: %v", proto, err)
		case model.ErrorKindProtocol, model.ErrorKindNoSTARTTLS, model.ErrorKindSTARTTLSRefused,
			model.ErrorKindTooLong, model.ErrorKindConnect, model.ErrorKindTLS:
		default:
			t.Fatalf("%s: error kind %q: %v", proto, pe.Kind, err)
		}
		if len(err.Error()) > 1024 {
			t.Fatalf("%s: error of %d bytes: %.200s...", proto, len(err.Error()), err)
		}
	})
}

// checkBanner: what reaches reports is printable and bounded (printable's
// 200 characters, each at most 3 bytes of UTF-8).
func checkBanner(t *testing.T, b string) {
	t.Helper()
	if len(b) > 3*200 {
		t.Fatalf("banner of %d bytes", len(b))
	}
	if i := strings.IndexFunc(b, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		t.Fatalf("banner %q holds a control character", b)
	}
}
