package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
	legolog "github.com/go-acme/lego/v5/log"

	"github.com/certplan/certplan/store"
)

// ErrTOSNotAgreed means a new account is needed and the caller has not
// agreed to the CA's terms of service.
var ErrTOSNotAgreed = errors.New("registering an ACME account requires agreeing to the CA's terms of service")

// Client issues certificates from one CA into one store.
type Client struct {
	cfg     Config
	dirURL  string
	core    *api.Core
	store   *store.Store
	account *store.Account
	solver  solver
	log     *slog.Logger
	now     func() time.Time
}

// New connects to the CA and loads the store's account for it or registers
// one (which needs AgreeTOS and a locked store). The built-in challenge
// listener, if the challenge type uses one, is bound by the first Obtain
// (so that a run that only asks for renewal information binds nothing);
// Close stops it.
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
	if cfg.ReducedCoverageDays == 0 {
		cfg.ReducedCoverageDays = 14
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

	hc := cfg.HTTPClient
	if hc == nil {
		if hc, err = httpClient(cfg.CARootsPEM); err != nil {
			return nil, err
		}
	}
	if err := c.setupAccount(ctx, hc); err != nil {
		return nil, err
	}
	if c.solver, err = newSolver(ctx, cfg.Challenge, c.log); err != nil {
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

// AccountURI is the account's URL at the CA (for CAA accounturi).
func (c *Client) AccountURI() string { return c.account.URI }

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

func (c *Client) setupAccount(ctx context.Context, hc *http.Client) error {
	acct, err := c.store.LoadAccount(c.dirURL)
	if err == nil {
		key, err := store.ParseKey(acct.KeyPEM)
		if err != nil {
			return fmt.Errorf("acme: account key: %w", err)
		}
		core, err := api.New(hc, c.cfg.UserAgent, c.dirURL, acct.URI, key)
		if err != nil {
			return fmt.Errorf("acme: %w", err)
		}
		c.core, c.account = core, acct
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("acme: %w", err)
	}
	if !c.cfg.AgreeTOS {
		return ErrTOSNotAgreed
	}
	key, err := GenerateKey(EC256)
	if err != nil {
		return err
	}
	core, err := api.New(hc, c.cfg.UserAgent, c.dirURL, "", key)
	if err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	req := legoacme.Account{TermsOfServiceAgreed: true}
	if c.cfg.Email != "" {
		req.Contact = []string{"mailto:" + c.cfg.Email}
	}
	var reg legoacme.ExtendedAccount
	if c.cfg.EABKeyID != "" {
		reg, err = core.Accounts.NewEAB(ctx, req, c.cfg.EABKeyID, c.cfg.EABHMAC)
	} else {
		reg, err = core.Accounts.New(ctx, req)
	}
	if err != nil {
		return fmt.Errorf("acme: register account: %w", err)
	}
	keyPEM, err := EncodeKey(key)
	if err != nil {
		return err
	}
	regJSON, _ := json.Marshal(reg.Account)
	acct = &store.Account{
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
	c.core, c.account = core, acct
	return nil
}
