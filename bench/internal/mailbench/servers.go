package mailbench

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/certplan/certplan/model"
)

// CA signs the benchmark's certificates (ECDSA P-256, as most mail servers
// serve today).
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	CertPEM []byte
}

// NewCA makes a CA.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "certplan bench CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{cert: cert, key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Issue makes a leaf certificate for names.
func (ca *CA) Issue(serial int64, names ...string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(0, 0, 90),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Certs picks a certificate by SNI, the default otherwise.
type Certs struct {
	Default *tls.Certificate
	SNI     map[string]*tls.Certificate
}

// GetCertificate is for tls.Config.
func (c *Certs) GetCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if x := c.SNI[strings.ToLower(h.ServerName)]; x != nil {
		return x, nil
	}
	return c.Default, nil
}

// Listener is a minimal mail listener: SMTP with STARTTLS (smtp,
// submission), implicit TLS (smtps), or silent (accepts and never answers,
// like a host behind a broken firewall).
type Listener struct {
	ln     net.Listener
	proto  string
	silent bool
	conf   *tls.Config
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

// Listen serves proto on addr (loopback only).
func Listen(addr, proto string, certs *Certs, silent bool) (*Listener, error) {
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return nil, err
	}
	l := &Listener{ln: ln, proto: proto, silent: silent, conns: map[net.Conn]bool{}}
	if certs != nil {
		l.conf = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
	}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// Addr is the listening address.
func (l *Listener) Addr() *net.TCPAddr { return l.ln.Addr().(*net.TCPAddr) }

// Close stops the listener and its connections.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	err := l.ln.Close()
	l.wg.Wait()
	return err
}

func (l *Listener) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.conns[c] = true
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.serve(c)
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
			c.Close()
		}()
	}
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func (l *Listener) serve(c net.Conn) {
	if l.silent {
		_, _ = io.Copy(io.Discard, c)
		return
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(c, 1024)
	var conn net.Conn = c
	if l.proto != model.ProtoSMTPS {
		if _, err := io.WriteString(c, "220 mail.bench.test ESMTP\r\n"); err != nil {
			return
		}
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			verb, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(string(line))), " ")
			var resp string
			switch verb {
			case "EHLO":
				resp = "250-mail.bench.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n"
			case "STARTTLS":
				resp = "220 2.0.0 Ready to start TLS\r\n"
			case "QUIT":
				_, _ = io.WriteString(c, "221 2.0.0 Bye\r\n")
				return
			default:
				resp = "502 5.5.2 Error: command not recognized\r\n"
			}
			if _, err := io.WriteString(c, resp); err != nil {
				return
			}
			if verb == "STARTTLS" {
				break
			}
		}
		conn = bufConn{c, br}
	}
	tc := tls.Server(conn, l.conf)
	if err := tc.Handshake(); err != nil {
		return
	}
	if l.proto == model.ProtoSMTPS {
		if _, err := io.WriteString(tc, "220 mail.bench.test ESMTP\r\n"); err != nil {
			return
		}
	}
	tb := bufio.NewReaderSize(tc, 1024)
	for {
		line, err := tb.ReadSlice('\n')
		if err != nil {
			return
		}
		if strings.HasPrefix(strings.ToUpper(string(line)), "QUIT") {
			_, _ = io.WriteString(tc, "221 2.0.0 Bye\r\n")
			return
		}
		_, _ = io.WriteString(tc, "250 OK\r\n")
	}
}
