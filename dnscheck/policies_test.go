package dnscheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/mtasts"
)

const policyZones = `
-- test --
-- ok.test --
@	IN MX 10 mail.ok.test.
mail	IN A 127.0.0.2
_mta-sts	IN TXT "v=STSv1; id=1"
mta-sts	IN A 127.0.0.47
-- two.test --
@	IN MX 10 mail.ok.test.
_mta-sts	IN TXT "v=STSv1; id=1"
_mta-sts	IN TXT "v=STSv1; id=2"
mta-sts	IN A 127.0.0.47
-- down.test --
@	IN MX 10 mail.ok.test.
_mta-sts	IN TXT "v=STSv1; id=1"
mta-sts	IN A 127.0.0.48
-- noaddr.test --
@	IN MX 10 mail.ok.test.
_mta-sts	IN TXT "v=STSv1; id=1"
-- slow.test --
@	IN MX 10 mail.ok.test.
_mta-sts	IN TXT "v=STSv1; id=1"
mta-sts	IN A 127.0.0.47
-- plain.test --
@	IN MX 10 mail.ok.test.
`

// startPolicyServer serves policies on 127.0.0.47 over HTTPS, by Host:
// enforce for ok.test and two.test; slow.test's answer waits until the
// client goes. It returns the fetch configuration that trusts it.
func startPolicyServer(t *testing.T) PolicyFetch {
	t.Helper()
	ca, err := mailtest.NewCA("dnscheck policy CA")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.47:0")
	if err != nil {
		t.Fatal(err)
	}
	policy := mtasts.FormatPolicy(&model.MTASTSPolicy{Mode: "enforce", MaxAge: 86400, MX: []string{"mail.ok.test"}})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host == "mta-sts.slow.test" {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(policy)
	}))
	srv.Listener = ln
	cert := ca.MustIssue("mta-sts.ok.test", "mta-sts.two.test", "mta-sts.slow.test")
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return PolicyFetch{Roots: roots, Port: ln.Addr().(*net.TCPAddr).Port, Timeout: 5 * time.Second}
}

func TestInventoryPolicies(t *testing.T) {
	s := startServer(t, policyZones)
	r := newTestResolver(t, s, Config{})
	pf := startPolicyServer(t)
	pf.Grace = 300 * time.Millisecond
	domains := []string{"ok.test", "two.test", "down.test", "noaddr.test", "slow.test", "plain.test"}
	var mu sync.Mutex
	var order []string
	start := time.Now()
	c := NewCollector(Options{})
	err := r.Stream(context.Background(), domains, Options{MTASTS: &pf}, func(res DomainResult) {
		mu.Lock()
		order = append(order, res.Domain.Domain)
		mu.Unlock()
		c.Add(res)
	})
	inv := c.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the inventory took %v: the grace is 300ms, the fetch timeout 5s", d)
	}
	// slow.test's policy host holds its fetch past the end of the
	// lookups: the grace cuts it short, and it comes last.
	if order[len(order)-1] != "slow.test" {
		t.Errorf("emitted in the order %v, want slow.test last", order)
	}
	enforce := &model.MTASTSPolicy{Mode: "enforce", MaxAge: 86400, MX: []string{"mail.ok.test"}}
	for _, c := range []struct {
		domain string
		want   *model.MTASTS
	}{
		{"ok.test", &model.MTASTS{TXT: "v=STSv1; id=1", ID: "1", Policy: enforce}},
		{"two.test", &model.MTASTS{TXT: "v=STSv1; id=1", TXTError: "_mta-sts TXT: 2 v=STSv1 records: senders use none", Policy: enforce}},
		{"down.test", &model.MTASTS{TXT: "v=STSv1; id=1", ID: "1", PolicyError: "mta-sts.down.test: connect 127.0.0.48:PORT: connection refused"}},
		{"noaddr.test", &model.MTASTS{TXT: "v=STSv1; id=1", ID: "1", PolicyError: "mta-sts.noaddr.test: " + model.NameErrNXDOMAIN}},
		{"slow.test", &model.MTASTS{TXT: "v=STSv1; id=1", ID: "1", PolicyError: "not fetched: still queued or under way 300ms after the DNS lookups ended"}},
		{"plain.test", nil},
	} {
		d := findDomain(inv, c.domain)
		if c.want != nil {
			c.want.PolicyError = strings.ReplaceAll(c.want.PolicyError, "PORT", strconv.Itoa(pf.Port))
		}
		if d == nil {
			t.Errorf("%s: not in the inventory", c.domain)
		} else if !reflect.DeepEqual(d.MTASTS, c.want) {
			t.Errorf("%s: MTA-STS %+v, want %+v", c.domain, d.MTASTS, c.want)
		}
	}
}

// TestInventoryPoliciesCancel: cancelling the inventory ends the fetches
// under way at once, and nothing is emitted after Stream returns.
func TestInventoryPoliciesCancel(t *testing.T) {
	s := startServer(t, policyZones)
	r := newTestResolver(t, s, Config{})
	pf := startPolicyServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	returned := false
	start := time.Now()
	err := r.Stream(ctx, []string{"slow.test", "plain.test"}, Options{MTASTS: &pf}, func(res DomainResult) {
		mu.Lock()
		defer mu.Unlock()
		if returned {
			t.Errorf("%s emitted after Stream returned", res.Domain.Domain)
		}
		if res.Domain.Domain == "plain.test" {
			cancel() // slow.test's fetch is under way or queued
		}
		if res.Domain.Domain == "slow.test" {
			t.Errorf("slow.test emitted after the cancel: %+v", res.Domain.MTASTS)
		}
	})
	mu.Lock()
	returned = true
	mu.Unlock()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Stream = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stream returned %v after the cancel; the fetch timeout is 5s", d)
	}
	time.Sleep(50 * time.Millisecond)
}
