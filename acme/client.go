package acme

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
	legolog "github.com/go-acme/lego/v5/log"

	"github.com/certplan/certplan/store"
)

// ErrTOSNotAgreed means a new account is needed and the caller has not
// agreed to the CA's terms of service.
var ErrTOSNotAgreed = errors.New("registering an ACME account requires agreeing to the CA's terms of service")

// ChallengeSetupError is a challenge configuration that cannot work, such
// as a DNS provider whose environment variables are missing or wrong; New
// returns it before contacting the CA.
type ChallengeSetupError struct{ Err error }

func (e *ChallengeSetupError) Error() string { return "challenge setup: " + e.Err.Error() }
func (e *ChallengeSetupError) Unwrap() error { return e.Err }

// Client issues certificates from one CA into one store.
type Client struct {
	cfg    Config
	dirURL string
	core   *api.Core
	store  *store.Store
	solver solver
	// wild validates wildcard identifiers (dns-01): solver when it is
	// dns-01, nil when no DNS provider is configured.
	wild solver
	log  *slog.Logger
	now  func() time.Time

	acctMu sync.Mutex // guards what follows
	// account is the store's account for the CA, nil until one is
	// registered (EnsureAccount).
	account *store.Account
	// acctErr is a failed registration: this client does not try again.
	acctErr error
	// acctKey is the account's key: the stored one, or the one to register.
	acctKey crypto.Signer
}

// New connects to the CA (it reads the CA's directory) and loads the
// store's account for it, if there is one. It registers nothing and writes
// nothing: the account is registered by the first Obtain that orders (or by
// EnsureAccount), which needs AgreeTOS and a locked store, so that a dry
// run never creates an account at the CA nor in the store. The built-in
// challenge listener, if the challenge type uses one, is bound by the first
// Obtain (so that a run that only asks for renewal information binds
// nothing); Close stops it.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Store == nil {
		return nil, errors.New("acme: config has no store")
	}
	dirURL, err := DirectoryURL(cfg.CA)
	if err != nil {
		return nil, err
	}
	if cfg.KeyType == "" {
		cfg.KeyType = EC256
	}
	if cfg.Challenge.Type == "" {
		cfg.Challenge.Type = HTTP01
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Minute
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "certplan"
	}
	c := &Client{cfg: cfg, dirURL: dirURL, store: cfg.Store, now: cfg.Now, log: cfg.Logger}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// lego logs through its own default logger, to stdout unless told.
	legolog.SetDefault(c.log)

	// The challenge setup first: a wrong one is found before the CA is
	// contacted.
	if c.solver, err = newSolver(ctx, cfg.Challenge, c.log); err != nil {
		return nil, &ChallengeSetupError{Err: err}
	}
	if c.wild, err = newWildSolver(ctx, cfg.Challenge, c.solver, c.log); err != nil {
		c.solver.close()
		return nil, &ChallengeSetupError{Err: fmt.Errorf("wildcard names (dns-01): %w", err)}
	}
	hc := cfg.HTTPClient
	if hc == nil {
		if hc, err = httpClient(cfg.CARootsPEM); err != nil {
			return nil, err
		}
	}
	if err := c.loadAccount(hc); err != nil {
		c.solver.close()
		return nil, err
	}
	return c, nil
}

// Close stops the built-in challenge listener, if any.
func (c *Client) Close() error {
	if c.solver != nil {
		return c.solver.close()
	}
	return nil
}

// DirectoryURL is the CA's directory.
func (c *Client) DirectoryURL() string { return c.dirURL }

// AccountURI is the account's URL at the CA (for CAA accounturi), "" while
// the store has no account for the CA.
func (c *Client) AccountURI() string {
	c.acctMu.Lock()
	defer c.acctMu.Unlock()
	if c.account == nil {
		return ""
	}
	return c.account.URI
}

// AccountErr is why registering an account failed (ErrTOSNotAgreed, or the
// CA's answer), nil when none was tried or it succeeded.
func (c *Client) AccountErr() error {
	c.acctMu.Lock()
	defer c.acctMu.Unlock()
	return c.acctErr
}

// HasAccount reports whether the store has an account for the CA (loaded by
// New or registered since).
func (c *Client) HasAccount() bool { return c.AccountURI() != "" }

// Profiles are the profiles the CA advertises (name → description).
func (c *Client) Profiles() map[string]string { return c.core.GetDirectory().Meta.Profiles }

// HasARI reports whether the CA advertises a renewalInfo endpoint.
func (c *Client) HasARI() bool { return c.core.GetDirectory().RenewalInfo != "" }

func httpClient(rootsPEM []byte) (*http.Client, error) {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   16,
	}
	if len(rootsPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(rootsPEM) {
			return nil, errors.New("acme: CA roots: no certificate in PEM")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Timeout: 2 * time.Minute, Transport: tr}, nil
}

// loadAccount reads the store's account for the CA, if any, and connects
// with its key. Without one it connects with a fresh key kept in memory:
// enough to read the directory and renewal information, and the key
// EnsureAccount registers.
func (c *Client) loadAccount(hc *http.Client) error {
	var key crypto.Signer
	kid := ""
	acct, err := c.store.LoadAccount(c.dirURL)
	switch {
	case err == nil:
		if key, err = store.ParseKey(acct.KeyPEM); err != nil {
			return fmt.Errorf("acme: account key: %w", err)
		}
		kid = acct.URI
	case errors.Is(err, store.ErrNotFound):
		acct = nil
		if key, err = GenerateKey(EC256); err != nil {
			return err
		}
	default:
		return fmt.Errorf("acme: %w", err)
	}
	core, err := api.New(hc, c.cfg.UserAgent, c.dirURL, kid, key)
	if err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	c.core, c.account, c.acctKey = core, acct, key
	return nil
}

// EnsureAccount registers an account with the CA, unless the store has one
// for it, and saves it in the store (which must be locked). It needs
// AgreeTOS (ErrTOSNotAgreed otherwise). A failed registration is not tried
// again by this client: every later call returns its error.
func (c *Client) EnsureAccount(ctx context.Context) error {
	c.acctMu.Lock()
	defer c.acctMu.Unlock()
	if c.account != nil {
		return nil
	}
	if c.acctErr == nil {
		c.acctErr = c.register(ctx)
	}
	return c.acctErr
}

// register is EnsureAccount's work; the caller holds acctMu.
func (c *Client) register(ctx context.Context) error {
	if !c.cfg.AgreeTOS {
		return ErrTOSNotAgreed
	}
	req := legoacme.Account{TermsOfServiceAgreed: true}
	if c.cfg.Email != "" {
		req.Contact = []string{"mailto:" + c.cfg.Email}
	}
	var reg legoacme.ExtendedAccount
	var err error
	if c.cfg.EABKeyID != "" {
		reg, err = c.core.Accounts.NewEAB(ctx, req, c.cfg.EABKeyID, c.cfg.EABHMAC)
	} else {
		reg, err = c.core.Accounts.New(ctx, req)
	}
	if err != nil {
		return fmt.Errorf("acme: register account: %w", err)
	}
	keyPEM, err := EncodeKey(c.acctKey)
	if err != nil {
		return err
	}
	regJSON, _ := json.Marshal(reg.Account)
	acct := &store.Account{
		DirectoryURL: c.dirURL,
		Email:        c.cfg.Email,
		URI:          reg.Location,
		CreatedAt:    c.now().UTC(),
		Registration: regJSON,
		KeyPEM:       keyPEM,
	}
	if err := c.store.SaveAccount(acct); err != nil {
		return fmt.Errorf("acme: save account: %w", err)
	}
	c.log.Info("registered ACME account", "uri", reg.Location)
	c.account = acct
	return nil
}
