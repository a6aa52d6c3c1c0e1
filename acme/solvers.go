package acme

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/challenge/tlsalpn01"
	"github.com/go-acme/lego/v5/providers/dns/cloudflare"
	"github.com/go-acme/lego/v5/providers/dns/cpanel"
	"github.com/go-acme/lego/v5/providers/dns/httpreq"
	"github.com/go-acme/lego/v5/providers/dns/route53"
	"github.com/miekg/dns"
)

// solver presents and removes challenge responses. Every method is safe
// for concurrent use: all challenges of an order are presented at once.
type solver interface {
	typ() string
	// start binds the built-in listener, if any; it is idempotent, so that
	// a Client that only asks for renewal information binds nothing.
	start() error
	present(ctx context.Context, name, token, keyAuth string) error
	cleanup(ctx context.Context, name, token, keyAuth string)
	close() error
}

func newSolver(ctx context.Context, cc ChallengeConfig, log *slog.Logger) (solver, error) {
	switch cc.Type {
	case HTTP01:
		if cc.Webroot != "" || len(cc.WebrootMap) > 0 {
			return newWebrootSolver(cc, log), nil
		}
		addr := cc.HTTPListen
		if addr == "" {
			addr = ":80"
		}
		return &httpSolver{addr: addr, tokens: map[string]string{}}, nil
	case DNS01:
		p, err := DNSProvider(cc.DNSProvider)
		if err != nil {
			return nil, err
		}
		if len(cc.Resolvers) > 0 {
			// The providers find zones and follow CNAMEs through lego's
			// default DNS client; point it at the configured resolvers so
			// that nothing goes to the system's or to port 53 elsewhere.
			dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: cc.Resolvers, Timeout: 5 * time.Second}))
		}
		to := cc.PropagationTimeout
		if to <= 0 {
			to = 2 * time.Minute
		}
		return &dnsSolver{provider: p, resolvers: cc.Resolvers, timeout: to, skip: cc.SkipPropagationCheck, log: log}, nil
	case TLSALPN01:
		addr := cc.TLSListen
		if addr == "" {
			addr = ":443"
		}
		return &tlsALPNSolver{addr: addr, certs: map[string]*tls.Certificate{}}, nil
	}
	return nil, fmt.Errorf("unknown challenge type %q: use http-01, dns-01 or tls-alpn-01", cc.Type)
}

// newWildSolver is the solver for wildcard identifiers, which the CA
// validates through dns-01 only (RFC 8555 section 7.1.3): solver itself
// when it is dns-01, else one for cc.DNSProvider when one is configured
// beside http-01 or tls-alpn-01, else nil (a wildcard cannot be issued).
func newWildSolver(ctx context.Context, cc ChallengeConfig, solver solver, log *slog.Logger) (solver, error) {
	switch {
	case solver.typ() == DNS01:
		return solver, nil
	case cc.DNSProvider == "":
		return nil, nil
	}
	dc := cc
	dc.Type = DNS01
	return newSolver(ctx, dc, log)
}

// DNSProviderNames lists the lego DNS providers certplan includes.
func DNSProviderNames() []string {
	return []string{"cloudflare", "cpanel", "dnsupdate", "exec", "httpreq", "route53"}
}

// DNSProvider builds a lego DNS provider from its environment variables
// (as lego documents them, such as DNSUPDATE_NAMESERVER or
// CLOUDFLARE_DNS_API_TOKEN).
func DNSProvider(name string) (challenge.Provider, error) {
	var p challenge.Provider
	var err error
	switch name {
	case "cloudflare":
		p, err = cloudflare.NewDNSProvider()
	case "cpanel":
		p, err = cpanel.NewDNSProvider()
	case "dnsupdate", "rfc2136":
		p, err = dnsUpdateProvider()
	case "exec":
		p, err = newExecProvider()
	case "httpreq":
		p, err = httpreq.NewDNSProvider()
	case "route53":
		p, err = route53.NewDNSProvider()
	case "":
		return nil, fmt.Errorf("dns-01 needs a DNS provider: one of %s", strings.Join(DNSProviderNames(), ", "))
	default:
		return nil, fmt.Errorf("unknown DNS provider %q: use one of %s", name, strings.Join(DNSProviderNames(), ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("dns provider %s: %w", name, err)
	}
	return p, nil
}

// checkToken refuses a challenge token that is not what RFC 8555 section
// 8.3 says it is: base64url without padding, at least 128 bits of entropy
// (22 characters). The CA's token becomes a file name and a URL path; a
// token such as "../../x" must never reach either. maxTokenLen keeps the
// file name (with the temporary file's dot and ".tmp") under NAME_MAX.
func checkToken(token string) error {
	const minTokenLen, maxTokenLen = 22, 250
	ok := len(token) >= minTokenLen && len(token) <= maxTokenLen
	for i := 0; ok && i < len(token); i++ {
		c := token[i]
		ok = 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
	}
	if !ok {
		return fmt.Errorf("challenge token %q is not an ACME token (RFC 8555 section 8.3: at least 22 base64url characters, no padding): refused", token)
	}
	return nil
}

// ---- HTTP-01, built-in listener

const challengePrefix = "/.well-known/acme-challenge/"

type httpSolver struct {
	addr   string
	mu     sync.RWMutex
	tokens map[string]string // token -> key authorization
	srv    *http.Server
}

func (s *httpSolver) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	// Several addresses, comma-separated: a host with several IPs binds
	// each (a wildcard ":80" would also answer on addresses that are not
	// the server's, hiding a name that points elsewhere).
	var lns []net.Listener
	for _, addr := range strings.Split(s.addr, ",") {
		ln, err := net.Listen("tcp", strings.TrimSpace(addr))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("http-01 listener: %w", err)
		}
		lns = append(lns, ln)
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	for _, ln := range lns {
		go s.srv.Serve(ln)
	}
	return nil
}

func (s *httpSolver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, challengePrefix)
	if !ok || r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.NotFound(w, r)
		return
	}
	s.mu.RLock()
	ka, ok := s.tokens[token]
	s.mu.RUnlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte(ka))
}

func (s *httpSolver) typ() string { return HTTP01 }

func (s *httpSolver) present(_ context.Context, _, token, keyAuth string) error {
	if err := checkToken(token); err != nil {
		return err
	}
	s.mu.Lock()
	s.tokens[token] = keyAuth
	s.mu.Unlock()
	return nil
}

func (s *httpSolver) cleanup(_ context.Context, _, token, _ string) {
	s.mu.Lock()
	delete(s.tokens, token)
	s.mu.Unlock()
}

func (s *httpSolver) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	s.srv = nil
	return err
}

// ---- TLS-ALPN-01 (RFC 8737)

type tlsALPNSolver struct {
	addr  string
	mu    sync.RWMutex
	certs map[string]*tls.Certificate // name -> challenge certificate
	ln    net.Listener
}

func (s *tlsALPNSolver) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	cfg := &tls.Config{
		NextProtos: []string{tlsalpn01.ACMETLS1Protocol},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if !slices.Contains(hello.SupportedProtos, tlsalpn01.ACMETLS1Protocol) {
				return nil, errors.New("not an acme-tls/1 handshake")
			}
			s.mu.RLock()
			defer s.mu.RUnlock()
			if c, ok := s.certs[strings.ToLower(hello.ServerName)]; ok {
				return c, nil
			}
			return nil, fmt.Errorf("no challenge for %q", hello.ServerName)
		},
	}
	ln, err := tls.Listen("tcp", s.addr, cfg)
	if err != nil {
		return fmt.Errorf("tls-alpn-01 listener: %w", err)
	}
	s.ln = ln
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				conn.(*tls.Conn).Handshake()
				conn.Close()
			}()
		}
	}()
	return nil
}

func (s *tlsALPNSolver) typ() string { return TLSALPN01 }

func (s *tlsALPNSolver) present(_ context.Context, name, _, keyAuth string) error {
	c, err := tlsalpn01.ChallengeCert(name, keyAuth)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.certs[name] = c
	s.mu.Unlock()
	return nil
}

func (s *tlsALPNSolver) cleanup(_ context.Context, name, _, _ string) {
	s.mu.Lock()
	delete(s.certs, name)
	s.mu.Unlock()
}

func (s *tlsALPNSolver) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	err := s.ln.Close()
	s.ln = nil
	return err
}

// ---- DNS-01

type dnsSolver struct {
	provider  challenge.Provider
	resolvers []string
	timeout   time.Duration
	skip      bool
	log       *slog.Logger
}

func (s *dnsSolver) typ() string  { return DNS01 }
func (s *dnsSolver) start() error { return nil }

func (s *dnsSolver) present(ctx context.Context, name, token, keyAuth string) error {
	// The exec provider's RAW mode hands the token to the admin's script,
	// which may well make a file name of it.
	if err := checkToken(token); err != nil {
		return err
	}
	if err := s.provider.Present(ctx, name, token, keyAuth); err != nil {
		return err
	}
	if s.skip {
		return nil
	}
	info := dns01.GetChallengeInfo(ctx, name, keyAuth)
	return s.waitTXT(ctx, info.EffectiveFQDN, info.Value)
}

// waitTXT asks every resolver for the TXT record until each has it. lego's
// own check also asks the zone's authoritative servers on port 53, which a
// private or test setup may not reach.
func (s *dnsSolver) waitTXT(ctx context.Context, fqdn, value string) error {
	resolvers := s.resolvers
	if len(resolvers) == 0 {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil {
			return fmt.Errorf("propagation check: %w", err)
		}
		for _, h := range cc.Servers {
			resolvers = append(resolvers, net.JoinHostPort(h, cc.Port))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	client := &dns.Client{Timeout: 3 * time.Second}
	interval := 200 * time.Millisecond
	for {
		all := true
		for _, r := range resolvers {
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(fqdn), dns.TypeTXT)
			m.RecursionDesired = true
			in, _, err := client.ExchangeContext(ctx, m, r)
			if err != nil || !hasTXT(in, value) {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("propagation check: TXT %s not seen at %s: %w", fqdn, strings.Join(resolvers, ", "), ctx.Err())
		case <-time.After(interval):
		}
		interval = min(2*interval, 2*time.Second)
	}
}

func hasTXT(m *dns.Msg, value string) bool {
	if m == nil {
		return false
	}
	for _, rr := range m.Answer {
		if t, ok := rr.(*dns.TXT); ok && strings.Join(t.Txt, "") == value {
			return true
		}
	}
	return false
}

func (s *dnsSolver) cleanup(ctx context.Context, name, token, keyAuth string) {
	if checkToken(token) != nil {
		return // present refused it
	}
	if err := s.provider.CleanUp(ctx, name, token, keyAuth); err != nil {
		s.log.Warn("dns-01 cleanup failed", "name", name, "err", err)
	}
}

func (s *dnsSolver) close() error { return nil }
