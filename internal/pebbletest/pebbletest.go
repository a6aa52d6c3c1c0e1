// Package pebbletest runs Pebble, Let's Encrypt's test ACME CA, in-process
// for tests, testscript, the lab and benchmarks.
//
// Pebble validates for real: HTTP-01 by connecting to the name's A record at
// [CA.HTTPPort], TLS-ALPN-01 at [CA.TLSPort], DNS-01 by asking the DNS
// server at [Options.DNSAddr] (over TCP) — so a test points its names at
// loopback addresses through internal/dnstest and serves challenges there. A
// name fails validation when its A record points elsewhere
// ([PointElsewhere]).
//
// On top of Pebble, the harness records every newOrder request
// ([CA.Orders], to check that an order carried ARI's "replaces") and
// newAccount request ([CA.NewAccounts]), enforces a per-profile name limit
// ([Profile.MaxNames]) as Let's Encrypt does (Pebble itself has none), and
// can answer newOrder requests with a problem such as a rate limit with
// Retry-After ([CA.FailOrders]). It also runs each newOrder request alone,
// which avoids a lock-order deadlock in Pebble when one account places
// several orders at once (see intercept).
//
// Pebble reads a few settings from the environment when it starts; Start
// sets them for the duration of the constructor (PEBBLE_VA_NOSLEEP=1,
// PEBBLE_WFE_NONCEREJECT=0, PEBBLE_AUTHZREUSE) under a process-wide mutex.
package pebbletest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/letsencrypt/pebble/v2/acme"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"

	"github.com/certplan/certplan/internal/dnstest"
)

// Profile is an ACME profile the CA offers.
type Profile struct {
	Description string
	// Validity of issued certificates; 0 means Pebble's default (5 years).
	Validity time.Duration
	// MaxNames rejects larger orders (0: no limit).
	MaxNames int
}

// DefaultProfiles mirror Let's Encrypt's: classic (100 names, 90 days),
// tlsserver (25 names, 90 days) and shortlived (25 names, 160 hours).
func DefaultProfiles() map[string]Profile {
	return map[string]Profile{
		"classic":    {Description: "like Let's Encrypt classic", Validity: 90 * 24 * time.Hour, MaxNames: 100},
		"tlsserver":  {Description: "like Let's Encrypt tlsserver", Validity: 90 * 24 * time.Hour, MaxNames: 25},
		"shortlived": {Description: "like Let's Encrypt shortlived", Validity: 160 * time.Hour, MaxNames: 25},
	}
}

// Options configure Start.
type Options struct {
	// DNSAddr is the DNS server ("host:port", answering over TCP) the VA
	// resolves through. Required.
	DNSAddr string
	// HTTPPort and TLSPort are where the VA connects for HTTP-01 and
	// TLS-ALPN-01; 0 picks a free port.
	HTTPPort, TLSPort int
	// ListenAddr is where the ACME server listens (default "127.0.0.1:0").
	ListenAddr string
	// Profiles offered; nil means DefaultProfiles. An order without a
	// profile gets a random one (Pebble's behaviour): clients that care send
	// one.
	Profiles map[string]Profile
	// ChainLength is the number of intermediates (default 1).
	ChainLength int
	// EABKeys maps key IDs to base64url HMAC keys; RequireEAB makes
	// newAccount require one.
	EABKeys    map[string]string
	RequireEAB bool
	// AuthzReusePercent is how often Pebble reuses a valid authorization
	// (default 0, and Pebble still reuses about 1% of the time).
	AuthzReusePercent int
	// Log receives Pebble's log; nil discards it.
	Log io.Writer
}

// OrderRequest is what a client sent to newOrder.
type OrderRequest struct {
	Identifiers []string
	Profile     string
	Replaces    string
}

// CA is a running Pebble.
type CA struct {
	// DirectoryURL is the ACME directory.
	DirectoryURL string
	// RootsPEM is the issuer of the ACME server's own TLS certificate: what a
	// client passes as --ca-roots.
	RootsPEM []byte
	// HTTPPort and TLSPort are where the VA validates HTTP-01 and TLS-ALPN-01.
	HTTPPort, TLSPort int

	db       *db.MemoryStore
	ca       *ca.CAImpl
	srv      *http.Server
	ln       net.Listener
	profiles map[string]Profile

	mu          sync.Mutex
	orders      []OrderRequest
	newAccounts int
	orderFaults []OrderFault
	authzIDs    map[string]bool // every authorization a client has read

	// newOrderMu keeps newOrder requests apart from every other request:
	// see intercept.
	newOrderMu sync.RWMutex
}

var envMu sync.Mutex

// Start runs Pebble until ctx ends or Close is called.
func Start(ctx context.Context, opts Options) (*CA, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &CA{HTTPPort: opts.HTTPPort, TLSPort: opts.TLSPort, profiles: opts.Profiles}
	handler, err := c.newPebble(opts)
	if err != nil {
		return nil, fmt.Errorf("pebbletest: eab key: %w", err)
	}
	rootPEM, tlsCert, err := serverCert()
	if err != nil {
		return nil, err
	}
	c.RootsPEM = rootPEM
	ln, err := net.Listen("tcp", opts.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("pebbletest: %w", err)
	}
	c.ln = ln
	c.DirectoryURL = "https://" + ln.Addr().String() + wfe.DirectoryPath
	c.srv = &http.Server{
		Handler:           c.intercept(handler),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{tlsCert}},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go c.srv.ServeTLS(ln, "", "")
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	return c, nil
}

// withDefaults checks o and fills in its defaults, free ports included.
func (o Options) withDefaults() (Options, error) {
	if o.DNSAddr == "" {
		return o, errors.New("pebbletest: DNSAddr is required")
	}
	if o.ListenAddr == "" {
		o.ListenAddr = "127.0.0.1:0"
	}
	if o.Profiles == nil {
		o.Profiles = DefaultProfiles()
	}
	if o.ChainLength <= 0 {
		o.ChainLength = 1
	}
	var err error
	if o.HTTPPort == 0 {
		if o.HTTPPort, err = FreePort(); err != nil {
			return o, err
		}
	}
	if o.TLSPort == 0 {
		if o.TLSPort, err = FreePort(); err != nil {
			return o, err
		}
	}
	return o, nil
}

// newPebble makes Pebble's database, CA, VA and WFE, and returns the WFE's
// handler. Pebble reads its settings from the environment while it starts,
// so the variables are set (and restored) under envMu.
func (c *CA) newPebble(opts Options) (http.Handler, error) {
	w := opts.Log
	if w == nil {
		w = io.Discard
	}
	logger := log.New(w, "pebble ", log.LstdFlags)
	profiles := map[string]ca.Profile{}
	for name, p := range opts.Profiles {
		profiles[name] = ca.Profile{Description: p.Description, ValidityPeriod: uint64(p.Validity / time.Second)}
	}
	c.db = db.NewMemoryStore()
	envMu.Lock()
	defer envMu.Unlock()
	restore := setenv(map[string]string{
		"PEBBLE_VA_NOSLEEP":      "1",
		"PEBBLE_WFE_NONCEREJECT": "0",
		"PEBBLE_AUTHZREUSE":      strconv.Itoa(opts.AuthzReusePercent),
	})
	defer restore()
	c.ca = ca.New(logger, c.db, "", "ecdsa", 0, opts.ChainLength, profiles)
	v := va.New(logger, opts.HTTPPort, opts.TLSPort, false, opts.DNSAddr, c.db)
	for kid, key := range opts.EABKeys {
		if err := c.db.AddExternalAccountKeyByID(kid, key); err != nil {
			return nil, err
		}
	}
	f := wfe.New(logger, c.db, v, c.ca, []string{"pebble.letsencrypt.org"}, false, opts.RequireEAB, 0, 0)
	return f.Handler(), nil
}

// Close stops the ACME server. Pebble's VA keeps an idle goroutine.
func (c *CA) Close() error {
	err := c.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// IssuerRootsPEM is the root of the chain Pebble issues under: what verifies
// an issued certificate, and what a client passes as --issuer-roots
// (apply.Options.IssuerRoots). It differs from RootsPEM, the ACME server's
// TLS root. Pebble run as its own process serves the same root at its
// management endpoint, /roots/0; in process it is read from the CA object.
func (c *CA) IssuerRootsPEM() []byte {
	var b bytes.Buffer
	for i := 0; i < c.ca.GetNumberOfRootCerts(); i++ {
		b.Write(c.ca.GetRootCert(i).PEM())
	}
	return b.Bytes()
}

// IntermediatesPEM is the intermediate that signs leaves.
func (c *CA) IntermediatesPEM() []byte {
	var b bytes.Buffer
	for i := 0; i < c.ca.GetNumberOfRootCerts(); i++ {
		b.Write(c.ca.GetIntermediateCert(i).PEM())
	}
	return b.Bytes()
}

// IssuerPool is IssuerRootsPEM as a pool, and the intermediates as a second
// pool, for x509.VerifyOptions.
func (c *CA) IssuerPool() (roots, intermediates *x509.CertPool) {
	roots, intermediates = x509.NewCertPool(), x509.NewCertPool()
	roots.AppendCertsFromPEM(c.IssuerRootsPEM())
	intermediates.AppendCertsFromPEM(c.IntermediatesPEM())
	return roots, intermediates
}

// Orders returns the newOrder requests received so far, oldest first.
func (c *CA) Orders() []OrderRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]OrderRequest(nil), c.orders...)
}

// ForgetAuthorizations deactivates every authorization clients have read so
// far, so that no later order reuses one: a test that makes a name fail at
// the CA after it was validated calls it, since Pebble reuses a valid
// authorization about 1% of the time even at PEBBLE_AUTHZREUSE=0 (it tests
// rand.Intn(100) > percent). Call it while no order is under way.
func (c *CA) ForgetAuthorizations() {
	c.mu.Lock()
	ids := make([]string, 0, len(c.authzIDs))
	for id := range c.authzIDs {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	for _, id := range ids {
		if a := c.db.GetAuthorizationByID(id); a != nil {
			a.Lock()
			if a.Status == acme.StatusValid {
				a.Status = acme.StatusDeactivated
			}
			a.Unlock()
		}
	}
}

// Revoked reports whether Pebble has revoked the certificate with serial,
// and the reason code the revocation carried (-1: none).
func (c *CA) Revoked(serial *big.Int) (revoked bool, reason int) {
	rc := c.db.GetRevokedCertificateBySerial(serial)
	if rc == nil {
		return false, -1
	}
	if rc.Reason == nil {
		return true, -1
	}
	return true, int(*rc.Reason)
}

// NewAccounts is the number of newAccount requests received so far
// (registrations, successful or not).
func (c *CA) NewAccounts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.newAccounts
}

// OrderFault is a problem document the harness answers a newOrder request
// with instead of passing it to Pebble (see FailOrders).
type OrderFault struct {
	// Type is the problem type after "urn:ietf:params:acme:error:", such as
	// "rateLimited" (Let's Encrypt's answer past a rate limit) or
	// "serverInternal".
	Type   string
	Status int // HTTP status (default 429 for rateLimited, else 500)
	Detail string
	// RetryAfter, when positive, is sent as a Retry-After header (seconds).
	RetryAfter time.Duration
}

// FailOrders makes the next n newOrder requests fail with f, as a CA does
// past a rate limit; the requests are still recorded in Orders.
func (c *CA) FailOrders(n int, f OrderFault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range n {
		c.orderFaults = append(c.orderFaults, f)
	}
}

// takeOrderFault returns the next injected fault, if any.
func (c *CA) takeOrderFault() (OrderFault, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.orderFaults) == 0 {
		return OrderFault{}, false
	}
	f := c.orderFaults[0]
	c.orderFaults = c.orderFaults[1:]
	return f, true
}

// writeFault answers with f as an ACME problem document. It sends no
// Replay-Nonce: the client fetches a fresh one (Pebble never saw the
// request, so its nonce stays unused).
func (c *CA) writeFault(w http.ResponseWriter, f OrderFault) {
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
		if f.Type == "rateLimited" {
			status = http.StatusTooManyRequests
		}
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter/time.Second)))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"type":   "urn:ietf:params:acme:error:" + f.Type,
		"detail": f.Detail,
		"status": status,
	})
}

// SetRenewalInfo makes the CA answer ARI requests for the certificate with
// this window (RFC 9773), as if it wanted the certificate renewed then.
func (c *CA) SetRenewalInfo(cert *x509.Certificate, start, end time.Time) error {
	body, err := json.Marshal(map[string]any{
		"suggestedWindow": map[string]string{
			"start": start.UTC().Format(time.RFC3339),
			"end":   end.UTC().Format(time.RFC3339),
		},
	})
	if err != nil {
		return err
	}
	return c.db.SetARIResponse(cert.SerialNumber, string(body))
}

// intercept records newOrder payloads and enforces profile name limits.
func (c *CA) intercept(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Pebble 2.10.3 can deadlock when a newOrder and an authorization
		// fetch of one account run at once: the authz handler write-locks
		// the authorization and then read-locks the store, while newOrder's
		// FindValidAuthorization read-locks the store and then the
		// authorization, and a store writer waiting in between (newOrder's
		// AddChallenge) blocks new readers. Clients that place several
		// orders at once (certplan's apply) hit it; running each newOrder
		// alone breaks the cycle.
		if r.Method == http.MethodPost && r.URL.Path == "/sign-me-up" {
			c.mu.Lock()
			c.newAccounts++
			c.mu.Unlock()
		}
		if id, ok := strings.CutPrefix(r.URL.Path, "/authZ/"); ok && id != "" {
			c.mu.Lock()
			if c.authzIDs == nil {
				c.authzIDs = map[string]bool{}
			}
			c.authzIDs[id] = true
			c.mu.Unlock()
		}
		if r.Method != http.MethodPost || r.URL.Path != "/order-plz" {
			c.newOrderMu.RLock()
			defer c.newOrderMu.RUnlock()
			next.ServeHTTP(w, r)
			return
		}
		c.newOrderMu.Lock()
		defer c.newOrderMu.Unlock()
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		req, ok := decodeOrder(body)
		if ok {
			c.mu.Lock()
			c.orders = append(c.orders, req)
			c.mu.Unlock()
			if f, ok := c.takeOrderFault(); ok {
				c.writeFault(w, f)
				return
			}
			if p, known := c.profiles[req.Profile]; known && p.MaxNames > 0 && len(req.Identifiers) > p.MaxNames {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]any{
					"type":   "urn:ietf:params:acme:error:malformed",
					"detail": fmt.Sprintf("Order cannot contain more than %d identifiers", p.MaxNames),
					"status": http.StatusBadRequest,
				})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func decodeOrder(body []byte) (OrderRequest, bool) {
	var jws struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal(body, &jws) != nil {
		return OrderRequest{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(jws.Payload)
	if err != nil {
		return OrderRequest{}, false
	}
	var o struct {
		Identifiers []struct {
			Value string `json:"value"`
		} `json:"identifiers"`
		Profile  string `json:"profile"`
		Replaces string `json:"replaces"`
	}
	if json.Unmarshal(raw, &o) != nil {
		return OrderRequest{}, false
	}
	req := OrderRequest{Profile: o.Profile, Replaces: o.Replaces}
	for _, id := range o.Identifiers {
		req.Identifiers = append(req.Identifiers, id.Value)
	}
	return req, true
}

// serverCert makes a throwaway CA and a certificate for localhost,
// 127.0.0.1 and ::1 signed by it.
func serverCert() ([]byte, tls.Certificate, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pebbletest ACME server root"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	root, _ := x509.ParseCertificate(rootDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, &leafKey.PublicKey, rootKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
	return rootPEM, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}, nil
}

// setenv sets variables and returns a function restoring them.
func setenv(vars map[string]string) func() {
	old := map[string]*string{}
	for k, v := range vars {
		if prev, ok := os.LookupEnv(k); ok {
			old[k] = &prev
		} else {
			old[k] = nil
		}
		os.Setenv(k, v)
	}
	return func() {
		for k, v := range old {
			if v == nil {
				os.Unsetenv(k)
			} else {
				os.Setenv(k, *v)
			}
		}
	}
}

// FreePort returns a TCP port that was free on all addresses a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("pebbletest: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// PointElsewhere replaces name's address records with 127.0.0.77, a
// loopback address nothing serves on, so that validation of name fails —
// provided the challenge listener binds the server's addresses (such as
// 127.0.0.2:port) and not every address (":port" also answers on
// 127.0.0.77, since all of 127.0.0.0/8 is local).
func PointElsewhere(s *dnstest.Server, name string) error {
	fq := dns.Fqdn(strings.ToLower(name))
	s.Remove(fq, dns.TypeA)
	s.Remove(fq, dns.TypeAAAA)
	return s.Add(fq + " 60 IN A 127.0.0.77")
}
