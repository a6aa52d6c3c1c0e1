package realmail

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"strconv"
	"time"
)

// STARTTLS dialects for [ServedChain], as openssl s_client names them.
const (
	ImplicitTLS = ""     // TLS from the first byte (SMTPS, IMAPS, POP3S)
	StartSMTP   = "smtp" // EHLO, STARTTLS
	StartIMAP   = "imap" // CAPABILITY, STARTTLS
	StartPOP3   = "pop3" // STLS
)

// ServedChain asks `openssl s_client` which certificates the server at
// ip:port presents, after the STARTTLS dialect starttls (ImplicitTLS for
// none), sending sni as the server name, or no SNI at all when sni is
// empty (-noservername). It returns the chain as sent, leaf first.
//
// It is the independent reference for what a real client sees: certplan's
// probe is compared with it.
func ServedChain(ctx context.Context, ip string, port int, starttls, sni string) ([]*x509.Certificate, error) {
	args := []string{"s_client", "-connect", net.JoinHostPort(ip, strconv.Itoa(port)), "-showcerts"}
	if starttls != ImplicitTLS {
		args = append(args, "-starttls", starttls)
	}
	if sni == "" {
		args = append(args, "-noservername")
	} else {
		args = append(args, "-servername", sni)
	}
	// stdin is empty: s_client ends the session after the handshake.
	out, err := run(ctx, "openssl", args...)
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	rest := []byte(out)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("openssl s_client %s:%d: parse certificate: %w", ip, port, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("openssl s_client %s:%d: no certificate in the output:\n%s", ip, port, out)
	}
	return chain, nil
}

// ServedLeaf is the first certificate of [ServedChain].
func ServedLeaf(ctx context.Context, ip string, port int, starttls, sni string) (*x509.Certificate, error) {
	chain, err := ServedChain(ctx, ip, port, starttls, sni)
	if err != nil {
		return nil, err
	}
	return chain[0], nil
}

// WaitServed polls [ServedLeaf] until the server presents want's leaf, for
// a check right after a reload: Postfix and Dovecot start new processes
// with the new certificate, and a connection may still meet an old one for
// a moment. It returns the last difference when ctx ends first.
func WaitServed(ctx context.Context, ip string, port int, starttls, sni string, want *x509.Certificate) error {
	for {
		got, err := ServedLeaf(ctx, ip, port, starttls, sni)
		if err == nil && got.Equal(want) {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%s:%d (sni %q) serves %q serial %x, want %q serial %x",
				ip, port, sni, got.Subject.CommonName, got.SerialNumber, want.Subject.CommonName, want.SerialNumber)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
