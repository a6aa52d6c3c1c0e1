package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
)

const goodPolicy = "version: STSv1\r\nmode: enforce\r\nmx: mail.d.test\r\nmx: *.mx.d.test\r\nmax_age: 604800\r\n"

// policyHost is a real HTTPS server on 127.0.0.45 with a certificate from
// a CA made for the test, and what Fetch needs to reach it.
type policyHost struct {
	srv  *httptest.Server
	opts FetchOptions
	addr netip.Addr
	port int
}

// startPolicyHost serves h over TLS with a certificate for names (signed
// by a new CA that opts.Roots trusts).
func startPolicyHost(t *testing.T, names []string, h http.HandlerFunc) *policyHost {
	t.Helper()
	ca, err := mailtest.NewCA("mtasts test CA")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.45:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*ca.MustIssue(names...)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	ap := netip.MustParseAddrPort(ln.Addr().String())
	p := &policyHost{srv: srv, addr: ap.Addr(), port: int(ap.Port())}
	p.opts = FetchOptions{Roots: roots, Port: p.port, Timeout: 5 * time.Second,
		Resolve: func(_ context.Context, host string) ([]netip.Addr, error) {
			if host != "mta-sts.d.test" {
				t.Errorf("Resolve(%q), want mta-sts.d.test", host)
			}
			return []netip.Addr{p.addr}, nil
		}}
	return p
}

// serve answers with the content type and body given.
func serve(ctype, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Write([]byte(body))
	}
}

func TestFetchOK(t *testing.T) {
	var got *http.Request
	h := startPolicyHost(t, []string{"mta-sts.d.test"}, func(w http.ResponseWriter, r *http.Request) {
		got = r
		serve("text/plain; charset=utf-8", goodPolicy)(w, r)
	})
	p, err := Fetch(context.Background(), "d.test", h.opts)
	if err != nil {
		t.Fatal(err)
	}
	want := &model.MTASTSPolicy{Mode: "enforce", MaxAge: 604800, MX: []string{"mail.d.test", "*.mx.d.test"}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("policy %+v, want %+v", p, want)
	}
	if got.Method != "GET" || got.Host != "mta-sts.d.test" || got.URL.Path != "/.well-known/mta-sts.txt" || got.TLS.ServerName != "mta-sts.d.test" {
		t.Errorf("request %s %s%s (SNI %q)", got.Method, got.Host, got.URL.Path, got.TLS.ServerName)
	}
}

// TestFetchRefused covers what senders must refuse (RFC 8461 §3.2, §3.3)
// and a policy that does not parse: each gives a short error naming the
// policy host.
func TestFetchRefused(t *testing.T) {
	followed := false
	big := goodPolicy + strings.Repeat("x: padding\n", MaxPolicySize/len("x: padding\n"))
	for _, c := range []struct {
		name  string
		names []string
		h     http.HandlerFunc
		err   string
	}{
		{"404", nil, http.NotFound, "mta-sts.d.test: HTTP 404"},
		{"redirect", nil, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				followed = true
				serve("text/plain", goodPolicy)(w, r)
				return
			}
			http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
		}, `mta-sts.d.test: HTTP 301, a redirect to "/elsewhere": senders do not follow redirects (RFC 8461 §3.3)`},
		{"content type", nil, serve("text/html", goodPolicy), `mta-sts.d.test: content type "text/html", not text/plain (RFC 8461 §3.2)`},
		{"no content type", nil, func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			w.Write([]byte(goodPolicy))
		}, `mta-sts.d.test: content type "", not text/plain (RFC 8461 §3.2)`},
		{"oversize", nil, serve("text/plain", big), "mta-sts.d.test: policy larger than 64 KiB"},
		{"other name", []string{"www.d.test"}, serve("text/plain", goodPolicy), "mta-sts.d.test: certificate not valid for the name"},
		{"bad policy", nil, serve("text/plain", "version: STSv1\nmode: strict\n"), `mta-sts.d.test: policy line 2: mode "strict" is not enforce, testing or none`},
	} {
		t.Run(c.name, func(t *testing.T) {
			names := c.names
			if names == nil {
				names = []string{"mta-sts.d.test"}
			}
			h := startPolicyHost(t, names, c.h)
			p, err := Fetch(context.Background(), "d.test", h.opts)
			if errString(err) != c.err || p != nil {
				t.Errorf("Fetch = %+v, %v; want error %q", p, err, c.err)
			}
		})
	}
	if followed {
		t.Error("the redirect was followed")
	}
}

// TestFetchLimitExact: a body of exactly MaxPolicySize is read whole.
func TestFetchLimitExact(t *testing.T) {
	pad := "x: " + strings.Repeat("y", MaxPolicySize-len(goodPolicy)-len("x: \n")) + "\n"
	body := goodPolicy + pad
	if len(body) != MaxPolicySize {
		t.Fatalf("body %d bytes", len(body))
	}
	h := startPolicyHost(t, []string{"mta-sts.d.test"}, serve("text/plain", body))
	if _, err := Fetch(context.Background(), "d.test", h.opts); err != nil {
		t.Errorf("a policy of exactly 64 KiB: %v", err)
	}
}

// TestFetchSlow: a server that sends its body a byte at a time, or never
// finishes the TLS handshake, costs the timeout and no more.
func TestFetchSlow(t *testing.T) {
	h := startPolicyHost(t, []string{"mta-sts.d.test"}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for i := 0; ; i++ {
			w.Write([]byte(goodPolicy[i%len(goodPolicy) : i%len(goodPolicy)+1]))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	h.opts.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := Fetch(context.Background(), "d.test", h.opts)
	if errString(err) != "mta-sts.d.test: no whole answer within 300ms" {
		t.Errorf("trickling body: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the trickling body took %v, timeout 300ms", d)
	}

	// A listener that accepts and says nothing: no TLS handshake.
	ln, err := net.Listen("tcp", "127.0.0.45:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	h.opts.Port = ln.Addr().(*net.TCPAddr).Port
	start = time.Now()
	_, err = Fetch(context.Background(), "d.test", h.opts)
	if errString(err) != "mta-sts.d.test: no whole answer within 300ms" || time.Since(start) > 2*time.Second {
		t.Errorf("silent server: %v after %v", err, time.Since(start))
	}
}

func TestFetchConnect(t *testing.T) {
	h := startPolicyHost(t, []string{"mta-sts.d.test"}, serve("text/plain", goodPolicy))
	// The first address refuses; the second serves.
	closed, err := net.Listen("tcp", "127.0.0.46:"+strconv.Itoa(h.port))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	opts := h.opts
	opts.Resolve = func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.46"), h.addr}, nil
	}
	if _, err := Fetch(context.Background(), "d.test", opts); err != nil {
		t.Errorf("second address: %v", err)
	}
	opts.Resolve = func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.46")}, nil
	}
	want := "mta-sts.d.test: connect 127.0.0.46:" + strconv.Itoa(h.port) + ": connection refused"
	if _, err := Fetch(context.Background(), "d.test", opts); errString(err) != want {
		t.Errorf("refused: %v, want %q", err, want)
	}
	opts.Resolve = func(context.Context, string) ([]netip.Addr, error) { return nil, nil }
	if _, err := Fetch(context.Background(), "d.test", opts); errString(err) != "mta-sts.d.test: no address" {
		t.Errorf("no address: %v", err)
	}
	// The system's roots do not know the test CA.
	opts = h.opts
	opts.Roots = nil
	if _, err := Fetch(context.Background(), "d.test", opts); errString(err) != "mta-sts.d.test: certificate from an unknown authority" {
		t.Errorf("unknown CA: %v", err)
	}
}
