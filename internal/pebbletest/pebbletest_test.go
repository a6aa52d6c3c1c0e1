package pebbletest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/dnstest"
)

func TestStartServesDirectory(t *testing.T) {
	d := dnstest.New()
	if err := d.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ca, err := Start(ctx, Options{DNSAddr: d.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	if ca.HTTPPort == 0 || ca.TLSPort == 0 || ca.HTTPPort == ca.TLSPort {
		t.Errorf("ports %d %d", ca.HTTPPort, ca.TLSPort)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.RootsPEM) {
		t.Fatal("RootsPEM has no certificate")
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(ca.DirectoryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dir struct {
		NewOrder    string `json:"newOrder"`
		RenewalInfo string `json:"renewalInfo"`
		Meta        struct {
			Profiles map[string]string `json:"profiles"`
		} `json:"meta"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
		t.Fatal(err)
	}
	if dir.NewOrder == "" || dir.RenewalInfo == "" {
		t.Errorf("directory lacks newOrder or renewalInfo: %+v", dir)
	}
	for _, p := range []string{"classic", "tlsserver", "shortlived"} {
		if _, ok := dir.Meta.Profiles[p]; !ok {
			t.Errorf("profile %s not offered: %v", p, dir.Meta.Profiles)
		}
	}
	roots, inter := ca.IssuerPool()
	ic, err := x509.ParseCertificate(mustBlock(t, ca.IntermediatesPEM()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ic.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("intermediate does not chain to the issuer root: %v", err)
	}
	cancel()
	time.Sleep(50 * time.Millisecond)
	if _, err := hc.Get(ca.DirectoryURL); err == nil {
		t.Error("still serving after the context ended")
	}
}

func mustBlock(t *testing.T, p []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(p)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}
