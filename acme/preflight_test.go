package acme

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestSelfCheckRedirects: the self-check follows redirects as Let's
// Encrypt's VA does (only ports 80 and 443, never to an IP address, at
// most 10, status 301, 302, 307 or 308), and otherwise names the redirect
// it did not follow. A redirect to the name on port 80 reaches the address
// under test (here a loopback server on a free port, standing in for 80).
func TestSelfCheckRedirects(t *testing.T) {
	const name, token, want = "mail.d.test", validToken, validToken + ".ka"
	// An IP literal on port 80, serving the right answer: had the check
	// followed the redirect, it would have passed.
	var ipHits atomic.Int32
	ipAddr := "127.0.0.93"
	if ln, err := net.Listen("tcp", ipAddr+":80"); err == nil {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ipHits.Add(1)
			w.Write([]byte(want))
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	} else {
		t.Logf("not listening on %s:80 (%v): the IP case checks the error only", ipAddr, err)
	}
	for _, tt := range []struct {
		name     string
		location func(hop int) string // "" serves the token
		status   int
		wantErr  string
	}{
		{"ten redirects to port 80", chain(10, ""), 302, ""},
		{"https on 443 is allowed", nil, 0, ""},
		{"eleven redirects", chain(11, ""), 301, "redirect to http://mail.d.test/hop11 not followed: more than 10 redirects"},
		{"to port 8080", chain(1, "http://mail.d.test:8080/x"), 302, "redirect to http://mail.d.test:8080/x not followed: Let's Encrypt follows redirects to ports 80 and 443 only"},
		{"to an IP address", chain(1, "http://"+ipAddr+"/.well-known/acme-challenge/"+token), 307, "redirect to http://" + ipAddr + "/.well-known/acme-challenge/" + token + " not followed: Let's Encrypt follows redirects to domain names only, not to IP addresses"},
		{"to an IPv6 address", chain(1, "http://[::1]/x"), 308, "redirect to http://[::1]/x not followed: Let's Encrypt follows redirects to domain names only"},
		{"to ftp", chain(1, "ftp://mail.d.test/x"), 302, "redirect to ftp://mail.d.test/x not followed: Let's Encrypt follows redirects to http and https only"},
		{"303", chain(1, ""), 303, "redirect to http://mail.d.test/hop1 not followed: Let's Encrypt follows status 301, 302, 307 and 308 only, not 303"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.location == nil {
				// Checked without a dial: the policy alone.
				if err := redirectPolicy(mustReq(t, "https://mail.d.test/x", 302), nil); err != nil {
					t.Error(err)
				}
				if err := redirectPolicy(mustReq(t, "http://mail.d.test:443/x", 302), nil); err != nil {
					t.Error(err)
				}
				return
			}
			ln, err := net.Listen("tcp", "127.0.0.2:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hop := 0
				if h, ok := strings.CutPrefix(r.URL.Path, "/hop"); ok {
					hop, _ = strconv.Atoi(h)
				}
				if loc := tt.location(hop); loc != "" {
					w.Header().Set("Location", loc)
					w.WriteHeader(tt.status)
					return
				}
				w.Write([]byte(want))
			})}
			go srv.Serve(ln)
			defer srv.Close()
			before := ipHits.Load()
			err = fetchToken(context.Background(), name, ln.Addr().String(), token, want)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("got %v, want %q", err, tt.wantErr)
			}
			if n := ipHits.Load() - before; n != 0 {
				t.Errorf("the IP literal was fetched %d times", n)
			}
		})
	}
}

// chain redirects the challenge path to /hop1, /hop1 to /hop2, ... n
// times on the same name, port 80; then to last, or serves the token.
func chain(n int, last string) func(int) string {
	return func(hop int) string {
		if hop < n-1 || hop == n-1 && last == "" {
			return "http://mail.d.test/hop" + strconv.Itoa(hop+1)
		}
		if hop == n-1 {
			return last
		}
		return ""
	}
}

func mustReq(t *testing.T, u string, status int) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Response = &http.Response{StatusCode: status}
	return r
}
