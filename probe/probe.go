// Package probe performs the TLS handshakes a mail client would make and
// reports what each server presented, with and without SNI.
//
// It speaks SMTP with STARTTLS (ports 25 and 587), IMAP with STARTTLS (143),
// POP3 with STLS (110) and implicit TLS (465, 993, 995). For each handshake it
// records the certificate chain, the TLS version and whether the chain
// verifies to the system roots plus extra anchors ([Roots]). Verification is
// done by the package after the handshake, so the chain is known even when it
// does not verify.
//
// # Bounds
//
// Every step (connect, greeting, EHLO, STARTTLS, handshake) shares one
// deadline: the earlier of the context's and [Config.Timeout]. Lines are
// bounded by [Config.MaxLine] and a whole dialogue by [Config.MaxBytes], so a
// silent, slow, endless or garbage-speaking server yields a typed [*Error]
// for that endpoint and never stalls a run.
//
// # Runs and coverage
//
// [Prober.Run] probes a [Scope] (each service once without SNI, and once
// with SNI per name served there) with a bounded worker pool, never making
// the same handshake twice, and builds a [model.ProbeReport] whose coverage
// rows carry a [Verdict] for each (name, IP, port) with and without SNI.
// [InventoryScope] derives the scope from an inventory.
//
// # What validating senders do with an MX host
//
// SMTP rows of the MX hosts in [Scope.MX] ([MXHosts] of an inventory) get
// two more verdicts, model.Sender* values (senders.go):
//
//   - DANE ([DANEVerdict]): the chain served with SNI against the name's
//     TLSA records, when [model.Name.DANEPin] says they count, matched by
//     [dane.Match] (RFC 7672): ok, fail (a DANE sender refuses delivery),
//     none (no secure records), unknown (whether they count is unknown);
//   - MTA-STS ([MTASTSVerdict]): the host against the mx patterns of the
//     policies of the domains whose MX it is, and the certificate's
//     verdicts with and without SNI (RFC 8461 §4): ok, fail ("enforce"),
//     warn ("testing"), none (no policy at hand).
//
// [model.CertInfo.Cert] keeps each served certificate for the matching;
// a report read back from JSON has none, and cannot be matched again.
//
// # Files
//
//	probe.go   Prober, Config, one handshake (Probe)
//	proto.go   the plaintext dialogues up to STARTTLS, bounded
//	certs.go   certificate descriptions and chain verification, cached
//	run.go     Scope, Run (the worker pool and scheduler), Report, Coverage
//	verdict.go Verdict: what a client dialling a name gets
//	senders.go MX, DANEVerdict, MTASTSVerdict: what validating senders do
//	ports.go   --ports parsing
//	errors.go  the typed *Error and its kinds
//
// The package reads no DNS and judges no plan: that is dnscheck's and the
// planner's work; TLSA records and MTA-STS policies come in the inventory.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/certplan/certplan/model"
)

// Defaults for [Config].
const (
	DefaultTimeout   = 10 * time.Second
	DefaultMaxLine   = 4096     // RFC 5321 allows 512 per reply line; be generous, not endless
	DefaultMaxBytes  = 64 << 10 // a whole plaintext dialogue before the handshake
	DefaultHelloName = "certplan.invalid"
)

// Config configures a [Prober]. The zero value probes with the system roots
// and the defaults above.
type Config struct {
	// Roots are the trust anchors; nil means the system roots. See [Roots].
	Roots *x509.CertPool
	// Timeout bounds one handshake, all steps together; 0 means
	// DefaultTimeout. A context deadline that comes earlier wins.
	Timeout time.Duration
	// MaxLine bounds one line of the plaintext dialogue; 0 means
	// DefaultMaxLine.
	MaxLine int
	// MaxBytes bounds the whole plaintext dialogue; 0 means DefaultMaxBytes.
	MaxBytes int
	// HelloName is the name sent with EHLO; empty means DefaultHelloName.
	HelloName string
	// Concurrency bounds how many handshakes [Prober.Run] makes at once;
	// 0 means 64.
	Concurrency int
	// Now is the clock for verification and verdicts; nil means time.Now.
	Now func() time.Time
}

// Target is one handshake to make.
type Target struct {
	IP       string // an IP address literal
	Port     int
	Protocol string // a model.Proto* value
	SNI      string // server name to send; empty sends none
}

func (t Target) String() string {
	s := net.JoinHostPort(t.IP, strconv.Itoa(t.Port))
	if t.SNI != "" {
		s += " sni " + t.SNI
	}
	return s
}

// Prober makes handshakes. It is safe for concurrent use; create one per run
// and reuse it, since it caches TLS configurations, certificate details and
// verification results.
type Prober struct {
	cfg  Config
	base *tls.Config
	ehlo []byte

	confMu sync.RWMutex
	confs  map[string]*tls.Config // by SNI

	certs  certCache
	chains chainCache
}

// New returns a Prober for cfg.
func New(cfg Config) *Prober {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = DefaultMaxLine
	}
	if cfg.MaxLine < 64 {
		cfg.MaxLine = 64
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.HelloName == "" {
		cfg.HelloName = DefaultHelloName
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Prober{
		cfg: cfg,
		// Verification is ours, after the handshake (verify), so that a
		// chain that does not verify is still reported. No session cache:
		// a resumed session would show no certificate.
		base: &tls.Config{
			InsecureSkipVerify: true, //nolint:gosec // verified by hand in verify
			MinVersion:         tls.VersionTLS10,
		},
		confs: make(map[string]*tls.Config),
		ehlo:  []byte("EHLO " + cfg.HelloName + "\r\n"),
	}
	return p
}

// Roots returns the system roots plus the certificates in each PEM file. A
// file without any certificate is an error. When the system has no roots
// (a minimal container), the pool holds only the files' certificates.
func Roots(pemFiles ...string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range pemFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("ca file: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("ca file %s: no PEM certificate found", f)
		}
	}
	return pool, nil
}

// tlsConfig returns the shared client config for sni.
func (p *Prober) tlsConfig(sni string) *tls.Config {
	p.confMu.RLock()
	c := p.confs[sni]
	p.confMu.RUnlock()
	if c != nil {
		return c
	}
	p.confMu.Lock()
	defer p.confMu.Unlock()
	if c = p.confs[sni]; c == nil {
		c = p.base.Clone()
		c.ServerName = sni
		p.confs[sni] = c
	}
	return c
}

// Probe makes the handshake t describes and returns what the server
// presented. On failure the endpoint's Error and ErrorKind are set and the
// returned error is an [*Error] with the same kind; a certificate that does
// not verify is not a failure (see Endpoint.Trusted).
func (p *Prober) Probe(ctx context.Context, t Target) (model.Endpoint, error) {
	ep, _, err := p.probe(ctx, t)
	if err != nil {
		return ep, err
	}
	return ep, nil
}

// probe is Probe, and also says whether the handshake timed out without the
// server sending a byte (silent).
func (p *Prober) probe(ctx context.Context, t Target) (ep model.Endpoint, silent bool, err *Error) {
	start := time.Now()
	ep = model.Endpoint{IP: t.IP, Port: t.Port, Protocol: t.Protocol, SNI: t.SNI}
	state, heard, herr := p.handshake(ctx, t, &ep)
	ep.DurationMS = time.Since(start).Milliseconds()
	if herr != nil {
		var pe *Error
		if !errors.As(herr, &pe) {
			pe = &Error{Kind: model.ErrorKindProtocol, Op: "probe", Err: herr}
		}
		ep.Error = pe.Error()
		ep.ErrorKind = pe.Kind
		return ep, pe.Kind == model.ErrorKindTimeout && !heard, pe
	}
	ep.TLSVersion = tls.VersionName(state.Version)
	p.describe(&ep, state.PeerCertificates)
	return ep, false, nil
}

// heardConn records whether the server has sent anything.
type heardConn struct {
	net.Conn
	heard bool
}

func (c *heardConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.heard = true
	}
	return n, err
}

// handshake dials, speaks the protocol up to STARTTLS and completes the TLS
// handshake, all under one deadline.
func (p *Prober) handshake(ctx context.Context, t Target, ep *model.Endpoint) (*tls.ConnectionState, bool, error) {
	d, ok := protocols[t.Protocol]
	if !ok {
		return nil, false, &Error{Kind: model.ErrorKindProtocol, Op: "probe", Err: fmt.Errorf("unknown protocol %q", t.Protocol)}
	}
	ip, err := netip.ParseAddr(t.IP)
	if err != nil {
		return nil, false, &Error{Kind: model.ErrorKindConnect, Op: "connect", Err: fmt.Errorf("not an IP address: %q", t.IP)}
	}
	deadline := time.Now().Add(p.cfg.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	dialer := net.Dialer{Deadline: deadline, KeepAlive: -1}
	raw, err := dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, uint16(t.Port)).String())
	if err != nil {
		return nil, false, classify("connect", err, ctx)
	}
	defer raw.Close()
	conn := &heardConn{Conn: raw}
	_ = conn.SetDeadline(deadline)
	// A cancelled context (not only a passed deadline) stops the dialogue too.
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	if d.starttls != nil {
		dl := p.newDialog(ctx, conn, ep)
		err := d.starttls(dl)
		if err == nil && dl.br.Buffered() > 0 {
			// Bytes after the STARTTLS reply and before the handshake are a
			// protocol violation (and the shape of STARTTLS injection).
			err = protoErr("starttls", "server sent data after its STARTTLS reply")
		}
		dl.release()
		if err != nil {
			return nil, conn.heard, err
		}
	}
	tc := tls.Client(conn, p.tlsConfig(t.SNI))
	// The connection's deadline and the AfterFunc above bound the
	// handshake; HandshakeContext would add a goroutine per handshake.
	if err := tc.Handshake(); err != nil {
		return nil, conn.heard, classify("tls handshake", err, ctx)
	}
	st := tc.ConnectionState()
	if d.quit != "" {
		// Say goodbye without waiting for the answer: a polite close that
		// costs no round trip.
		_, _ = tc.Write([]byte(d.quit))
	}
	if len(st.PeerCertificates) == 0 {
		return nil, true, &Error{Kind: model.ErrorKindTLS, Op: "tls handshake", Err: errors.New("server sent no certificate")}
	}
	return &st, true, nil
}
