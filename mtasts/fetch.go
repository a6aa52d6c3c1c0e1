package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/certplan/certplan/model"
)

// MaxPolicySize bounds the policy body: 64 KiB, the limit RFC 8461 §3.3
// suggests to senders. A larger body is an error, not cut.
const MaxPolicySize = 64 << 10

// DefaultTimeout bounds a whole fetch (connect, TLS, request, body) when
// FetchOptions.Timeout is zero. §3.3 suggests senders wait up to a
// minute; an inventory of many domains waits less for each.
const DefaultTimeout = 10 * time.Second

// FetchOptions configure Fetch.
type FetchOptions struct {
	// Resolve returns the addresses of the policy host,
	// mta-sts.<domain>. It is required: the addresses come from the
	// inventory's DNS, never the system resolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Roots verify the policy host's certificate; nil for the system's
	// roots.
	Roots *x509.CertPool
	// Timeout bounds the whole fetch; 0 for DefaultTimeout.
	Timeout time.Duration
	// Port is a test seam: the TCP port connected to, 0 for 443, the only
	// one RFC 8461 allows. Tests and the lab serve policies on free ports;
	// the request is the same (https://mta-sts.<domain>/...).
	Port int
}

// Fetch gets the MTA-STS policy of domain (normalised) as a sender would
// (RFC 8461 §3.3): GET https://mta-sts.<domain>/.well-known/mta-sts.txt
// over TLS, the certificate verified for mta-sts.<domain>, no redirect
// followed, only a 200 answer with Content-Type text/plain (§3.2; its
// parameters ignored), the body at most MaxPolicySize, the whole within
// the timeout; no proxy, no cache. Errors are short and start with the
// policy host: "mta-sts.d.test: HTTP 404".
func Fetch(ctx context.Context, domain string, opts FetchOptions) (*model.MTASTSPolicy, error) {
	host := "mta-sts." + domain
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p, err := fetch(ctx, host, opts)
	if err == nil {
		return p, nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("no whole answer within %v", timeout)
	}
	return nil, fmt.Errorf("%s: %w", host, err)
}

func fetch(ctx context.Context, host string, opts FetchOptions) (*model.MTASTSPolicy, error) {
	if opts.Resolve == nil {
		return nil, errors.New("no resolver given")
	}
	addrs, err := opts.Resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, errors.New("no address")
	}
	client := newClient(host, addrs, opts)
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/mta-sts.txt", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, requestError(err)
	}
	defer resp.Body.Close()
	if err := checkResponse(resp); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the policy: %w", err)
	}
	if len(body) > MaxPolicySize {
		return nil, errors.New("policy larger than 64 KiB")
	}
	return ParsePolicy(body)
}

// newClient returns an HTTP client that connects only to addrs (on
// opts.Port), verifies the certificate for host against opts.Roots, and
// follows no redirect (§3.3: senders MUST NOT).
func newClient(host string, addrs []netip.Addr, opts FetchOptions) *http.Client {
	port := opts.Port
	if port == 0 {
		port = 443
	}
	tr := &http.Transport{
		Proxy: nil, // a sender connects itself
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialFirst(ctx, addrs, port)
		},
		TLSClientConfig:   &tls.Config{ServerName: host, RootCAs: opts.Roots, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
		// Bounded, since a policy host may answer with endless headers.
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// dialFirst connects to the first of addrs that answers.
func dialFirst(ctx context.Context, addrs []netip.Addr, port int) (net.Conn, error) {
	var d net.Dialer
	var errs []error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, dialError(err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// dialError is "connect 127.0.0.5:443: connection refused".
func dialError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Addr != nil {
		inner := oe.Err
		var se interface{ Unwrap() error }
		if errors.As(inner, &se) && se.Unwrap() != nil {
			inner = se.Unwrap()
		}
		return fmt.Errorf("connect %s: %w", oe.Addr, inner)
	}
	return err
}

// checkResponse accepts only a 200 with Content-Type text/plain.
func checkResponse(resp *http.Response) error {
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		where := resp.Header.Get("Location")
		if where != "" {
			where = " to " + strconv.Quote(clip([]byte(where)))
		}
		return fmt.Errorf("HTTP %d, a redirect%s: senders do not follow redirects (RFC 8461 §3.3)", resp.StatusCode, where)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	ct := resp.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "text/plain" {
		return fmt.Errorf("content type %q, not text/plain (RFC 8461 §3.2)", clip([]byte(ct)))
	}
	return nil
}

// requestError shortens what the HTTP client says: a certificate problem
// in a few words, a connection error without the URL.
func requestError(err error) error {
	var hn x509.HostnameError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var ve *tls.CertificateVerificationError
	switch {
	case errors.As(err, &hn):
		return errors.New("certificate not valid for the name")
	case errors.As(err, &ua):
		return errors.New("certificate from an unknown authority")
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return errors.New("certificate expired or not yet valid")
	case errors.As(err, &ve):
		return fmt.Errorf("certificate not valid: %w", ve.Err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
