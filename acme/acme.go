// Package acme issues certificates through ACME with go-acme/lego v5's
// protocol layer (acme/api): account registration and reuse, the CA by
// name or directory URL, profiles, key types and key reuse, HTTP-01
// (built-in listener or webroots), DNS-01 (lego's providers) and
// TLS-ALPN-01, a preflight per name, partial-failure handling, and ARI
// (RFC 9773) renewal information and "replaces".
//
// # Wildcards
//
// A wildcard name ("*.d") is validated through DNS-01, the only challenge
// a CA offers for it (RFC 8555 section 7.1.3); the order's other names go
// through the configured type, so HTTP-01 with a DNS provider configured
// beside it (ChallengeConfig.DNSProvider) validates "*.d" through DNS and
// the rest through HTTP (solverFor). Without a DNS provider Obtain refuses
// a wildcard before it contacts the CA (ChallengeSetupError). "*.d" and
// "d" in one order have two TXT records at _acme-challenge.d at once: the
// dnsupdate provider (dnsupdate.go) adds and removes only its own value,
// unlike lego's, and exec scripts must do the same (execprovider.go). The
// preflight judges a wildcard by its parent's lookup and CAA, read with
// issuewild (checkWild).
//
// # Why not lego's Certifier
//
// lego's high-level Certifier validates the names of an order one after
// another, polling each from 5 s up, and fails the whole order when one
// name fails. certplan orders certificates with tens of names for clients
// it does not control, so [Client.Obtain] drives the order itself: it
// reads every authorization, presents and triggers its challenge at once
// (16 at a time), polls the order (one request a round, whatever the
// number of names) from a short interval up, and only when the order turns
// invalid reads the failing names from each authorization's error (and
// from a problem's subproblems), and places the order once more without
// them, when the caller's [Request.Check] agrees. Against in-process Pebble a
// 100-name order takes about 3 times a 1-name one when the machine's 2
// cores are free (BenchmarkOrderRatio); it costs about 250 ms of CPU,
// mostly Pebble's own validations, so it takes longer on a busy machine.
//
// # Webroots
//
// With Webroot or WebrootMap the HTTP-01 responses are files that
// certplan, running as root, writes into document roots its customers
// own and can change while it runs (webroot.go). A customer could make
// .well-known a link to /root, or public_html a link to /etc, and so have
// root create directories and files there. So:
//
//   - The docroot path is opened one directory at a time from "/". A link
//     on it is followed only when root made it in a directory only root
//     can write (an admin's /var/www -> /srv/www); a link the customer
//     could have made, the docroot itself included, is refused.
//   - The docroot must belong to root or to the domain's account where
//     the domain source knows it (WebrootOwners). Where it does not, any
//     owner is accepted: the admin named the directory, and the rules
//     below keep every write inside it whoever owns it.
//   - Beneath the docroot, .well-known and .well-known/acme-challenge must
//     be real directories: a link is refused wherever it points, even
//     inside the docroot. Such a link is harmless when it stays inside,
//     but links there are nearly always a shared challenge directory
//     outside (which must fail), and one rule is easier to trust; the
//     error names the link and says to map the name to its target.
//   - Every file operation goes through os.Root handles (openat beneath
//     the opened directory), and each directory opened is checked to be
//     the one just examined, so a link swapped in meanwhile still cannot
//     lead outside the docroot.
//   - Only missing directories are made (0755), and only those, once
//     empty, are removed after the last challenge; an existing directory
//     is never chmod-ed or chown-ed. The token file is written 0644 under
//     a temporary name and renamed.
//   - A token is the CA's data, not a path: anything but RFC 8555's
//     base64url of at least 22 characters is refused before it names a
//     file (checkToken), by the built-in listener too.
//
// The preflight's HTTP-01 self-check (also under a dry run) writes and
// removes its token the same way. It follows redirects only where Let's
// Encrypt would (redirectPolicy), and reports any other redirect.
//
// # What it leaves to others
//
// Planning (which names go on which certificate), renewal policy (when to
// renew, backoff), the policy on dropped names (must-cover names, reduced
// coverage: apply, through Request.Check), checking and storing what it
// obtained (apply, store), deploy hooks and verification. The account is
// kept in a [store.Store], which the caller opens and locks; Obtain reads
// the current certificate from it (its key, "replaces") and writes none.
package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
)

// Well-known CAs, by the names --ca accepts.
var caDirectories = map[string]string{
	"letsencrypt":         "https://acme-v02.api.letsencrypt.org/directory",
	"letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
	"zerossl":             "https://acme.zerossl.com/v2/DV90",
	"google":              "https://dv.acme-v02.api.pki.goog/directory",
	"google-staging":      "https://dv.acme-v02.test-api.pki.goog/directory",
}

// caIdentifiers are the CAA issuer domains of the well-known CAs.
var caIdentifiers = map[string]string{
	"letsencrypt":         "letsencrypt.org",
	"letsencrypt-staging": "letsencrypt.org",
	"zerossl":             "sectigo.com",
	"google":              "pki.goog",
	"google-staging":      "pki.goog",
}

// CANames lists the names DirectoryURL knows, sorted.
func CANames() []string {
	return []string{"google", "google-staging", "letsencrypt", "letsencrypt-staging", "zerossl"}
}

// DirectoryURL resolves a CA name (letsencrypt, letsencrypt-staging,
// zerossl, google) or returns an https URL unchanged.
func DirectoryURL(ca string) (string, error) {
	if ca == "" {
		ca = "letsencrypt"
	}
	if u, ok := caDirectories[strings.ToLower(ca)]; ok {
		return u, nil
	}
	if strings.HasPrefix(ca, "https://") || strings.HasPrefix(ca, "http://") {
		return ca, nil
	}
	return "", fmt.Errorf("unknown CA %q: use one of %s or a directory URL", ca, strings.Join(CANames(), ", "))
}

// CAAIdentifier is the CAA issuer domain of a well-known CA name ("" for a
// URL: the caller must know it).
func CAAIdentifier(ca string) string { return caIdentifiers[strings.ToLower(ca)] }

// KeyType is a certificate key algorithm.
type KeyType string

// Key types. EC256 (ECDSA P-256) is the default.
const (
	EC256   KeyType = "ec256"
	EC384   KeyType = "ec384"
	RSA2048 KeyType = "rsa2048"
	RSA3072 KeyType = "rsa3072"
	RSA4096 KeyType = "rsa4096"
)

// ParseKeyType accepts ec256 (p256, ecdsa), ec384 (p384), rsa2048, rsa3072,
// rsa4096 (also with a dash: rsa-2048).
func ParseKeyType(s string) (KeyType, error) {
	switch strings.ReplaceAll(strings.ToLower(s), "-", "") {
	case "", "ec256", "p256", "ecdsa", "ecdsap256", "ecdsa256":
		return EC256, nil
	case "ec384", "p384", "ecdsap384", "ecdsa384":
		return EC384, nil
	case "rsa2048", "rsa":
		return RSA2048, nil
	case "rsa3072":
		return RSA3072, nil
	case "rsa4096":
		return RSA4096, nil
	}
	return "", fmt.Errorf("unknown key type %q: use ec256, ec384, rsa2048, rsa3072 or rsa4096", s)
}

// GenerateKey makes a new private key of type t.
func GenerateKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case EC256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EC384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("unknown key type %q", t)
}

// KeyTypeOf names the type of an existing key.
func KeyTypeOf(k crypto.PublicKey) (KeyType, error) {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return EC256, nil
		case elliptic.P384():
			return EC384, nil
		}
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return RSA2048, nil
		case 3072:
			return RSA3072, nil
		case 4096:
			return RSA4096, nil
		}
	}
	return "", fmt.Errorf("unsupported key %T", k)
}

// EncodeKey returns k as PKCS#8 PEM.
func EncodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Challenge types.
const (
	HTTP01    = "http-01"
	DNS01     = "dns-01"
	TLSALPN01 = "tls-alpn-01"
)

// ChallengeConfig says how names are validated.
type ChallengeConfig struct {
	// Type is HTTP01 (default), DNS01 or TLSALPN01.
	Type string

	// HTTP-01. With neither Webroot nor WebrootMap, a built-in listener
	// serves the challenges on HTTPListen (default ":80"): one address, or
	// several separated by commas ("192.0.2.10:80,[2001:db8::10]:80").
	HTTPListen string
	// Webroot is one document root for every name: files go to
	// <Webroot>/.well-known/acme-challenge/<token>.
	Webroot string
	// WebrootMap maps a name or a parent domain to its document root
	// (cPanel serves each domain from its own): the longest matching suffix
	// wins, "mail.domain2.test" → "domain2.test" → root.
	WebrootMap map[string]string
	// WebrootOwners maps a name or a parent domain (matched as WebrootMap
	// is) to the uid of the account that owns the domain, where the domain
	// source knows it (cPanel's userdata): its docroot must then belong to
	// that account or to root. A domain not listed: any owner (see
	// "Webroots" in the package doc).
	WebrootOwners map[string]uint32
	// SelfCheckPort is the port the HTTP-01 self-check connects to on each
	// of the name's addresses (default 80; tests set Pebble's HTTP port).
	SelfCheckPort int

	// DNS-01: DNSProvider is a lego provider name (exec, httpreq,
	// dnsupdate, cpanel, cloudflare, route53), configured through its
	// environment variables as lego documents them.
	DNSProvider string
	// Resolvers ("host:port") are asked for the TXT record before the CA is
	// told to look; empty: the system's resolvers.
	Resolvers []string
	// PropagationTimeout bounds the wait for the TXT record (default 2 min);
	// SkipPropagationCheck trusts the provider.
	PropagationTimeout   time.Duration
	SkipPropagationCheck bool

	// TLS-ALPN-01: the built-in listener's address (default ":443").
	TLSListen string
}

// Config configures a Client.
type Config struct {
	// CA is a name (letsencrypt, letsencrypt-staging, zerossl, google) or
	// an ACME directory URL.
	CA string
	// CARootsPEM, when set, are the only roots trusted for the ACME
	// server's TLS certificate (a private CA such as Pebble).
	CARootsPEM []byte
	// HTTPClient overrides the client built from CARootsPEM.
	HTTPClient *http.Client
	UserAgent  string

	// Account.
	Email    string
	AgreeTOS bool
	// EAB binds the account to an existing one at CAs that require it
	// (ZeroSSL, Google): key id and base64url HMAC key.
	EABKeyID string
	EABHMAC  string

	// Certificates.
	KeyType KeyType
	Profile string

	Challenge ChallengeConfig

	// Preflight.
	// SkipPreflight orders every requested name without checks.
	SkipPreflight bool
	// SkipHTTPSelfCheck keeps the inventory checks but does not fetch the
	// token path before ordering.
	SkipHTTPSelfCheck bool
	// CAAIdentifier overrides the CAA issuer domain used to read CAA
	// verdicts (default: the inventory's, or the well-known CA's).
	CAAIdentifier string
	// LookupNames, when set, looks up the names of a request that its
	// inventory does not cover (an operator's extra names, a saved plan's),
	// as the inventory looks up its own (dnscheck.Resolver.Names), so that
	// the preflight checks them like inventory names; ServerIPs are this
	// server's addresses for them when the request has no inventory.
	// Without it such names are ordered unchecked, with a warning.
	LookupNames func(ctx context.Context, names []string) []model.Name
	ServerIPs   []string

	// PollInterval is the wait before the first order poll, counted from
	// the first challenge's trigger (default 250 ms); later polls are
	// spaced a quarter of the time validation has taken so far, up to 2 s
	// (see waitOrder). Timeout bounds one order's validation and issuance
	// (default 3 min).
	PollInterval time.Duration
	Timeout      time.Duration

	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives progress; lego's own default logger is pointed at it
	// too (it is global in lego). Nil discards.
	Logger *slog.Logger

	// Store holds the account and the certificates. Lock it before a real
	// Obtain (which registers the account when the store has none) or
	// EnsureAccount; New and a dry run only read it.
	Store *store.Store
}

// Request asks for one certificate.
type Request struct {
	// CertID is the store's certificate id (the plan's certificate ID).
	CertID string
	// Names to cover, A-labels. The first kept name is the CN-order first.
	Names []string
	// PlanID is recorded in the certificate's metadata.
	PlanID string
	// Inventory, when given, supplies the preflight facts: whether each name
	// points here and whether CAA allows the CA and challenge type.
	Inventory *model.Inventory
	// ReuseKey keeps the current certificate's key (a DANE 3 1 1 TLSA
	// record stays valid). A staged next key in the store is used instead
	// when UseNextKey is set.
	ReuseKey   bool
	UseNextKey bool
	// Replaces is the ARI certificate id of the certificate being replaced.
	// Empty: the store's current certificate for CertID, if any.
	// NoReplaces sends none.
	Replaces   string
	NoReplaces bool
	// Check, when set, is asked before each order whether to go on
	// without the names dropped so far (the preflight's and the CA's, all
	// of them); an error stops Obtain and is returned as it is. The
	// caller's policy goes here (apply: must-cover names, reduced
	// coverage): acme holds none.
	Check func(dropped []Dropped) error
	// DryRun runs the preflight (with the HTTP-01 self-check) and returns
	// without ordering: it registers no account and writes nothing.
	DryRun bool
}

func (r Request) check(dropped []Dropped) error {
	if r.Check == nil {
		return nil
	}
	return r.Check(dropped)
}

// Drop stages.
const (
	StagePreflight = "preflight"
	StageCA        = "ca"
)

// Drop codes.
const (
	DropPointsElsewhere = "points-elsewhere"
	DropNoAddress       = "no-address"
	DropCAAForbids      = "caa-forbids"
	DropCAAMethod       = "caa-validation-method"
	DropLookupFailed    = "lookup-failed"
	DropSelfCheck       = "http-self-check"
	DropNoWebroot       = "no-webroot"
	DropRejected        = "rejected-identifier"
	DropValidation      = "validation-failed"
)

// Dropped is a name left out of a certificate, and why.
type Dropped struct {
	Name   string `json:"name"`
	Stage  string `json:"stage"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// Result of Obtain.
type Result struct {
	CertID string `json:"cert_id"`
	// Issued are the names of the order that was issued, sorted (on a dry
	// run, those it would be placed for; empty when nothing was issued).
	// The certificate should list exactly these: the caller checks.
	Issued []string `json:"issued"`
	// Dropped names, sorted by name.
	Dropped []Dropped `json:"dropped"`
	// Warnings that did not drop a name (such as a name pointing partly
	// elsewhere), sorted.
	Warnings []string `json:"warnings,omitempty"`
	// Replaced is the ARI id sent as "replaces" ("" when none).
	Replaced string `json:"replaced,omitempty"`
	// Orders is the number of orders placed (0 on a dry run, at most 2).
	Orders int `json:"orders"`
	// Obtained is the certificate issued, not stored yet (nil when none).
	Obtained *Obtained `json:"-"`
	// Timing.
	Duration time.Duration `json:"duration_ns"`
}

// Obtained is what an order brought, for the caller to check and store
// (store.SaveCert takes Files and Meta as they are).
type Obtained struct {
	// Files: the key sent in the CSR, the leaf, and the chain the CA
	// returned.
	Files store.Files
	// Meta is what the store keeps beside them (the store fills in the
	// serial, validity and key hash from the leaf).
	Meta store.Meta
	// Key is the key of the CSR, Leaf the certificate parsed.
	Key  crypto.Signer
	Leaf *x509.Certificate
	// FromNextKey: Key is the store's staged next key; once the
	// certificate is stored, the caller drops the staged copy
	// (store.DropNextKey).
	FromNextKey bool
}

// ErrNothingToIssue means every name was dropped.
var ErrNothingToIssue = errors.New("no name left to issue for")

// OrderError is a failed order whose failing names could not be dropped
// (the retry was used up, or the CA named none).
type OrderError struct {
	Dropped []Dropped
	Err     error
}

func (e *OrderError) Error() string { return "order failed: " + e.Err.Error() }
func (e *OrderError) Unwrap() error { return e.Err }
