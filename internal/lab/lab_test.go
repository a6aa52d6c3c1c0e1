package lab

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/certplan/certplan/dnscheck"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
	"github.com/miekg/dns"
)

func TestLabDNS(t *testing.T) {
	l, err := Start(Options{RandomPorts: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := l.Dir
	defer func() {
		l.Close()
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("Close left %s behind", dir)
		}
	}()
	c := &dns.Client{Timeout: time.Second}
	tests := []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"mail.domain2.test", dns.TypeA, dns.RcodeSuccess},
		{"nowhere.test", dns.TypeA, dns.RcodeNameError},
		{"broken-dns.test", dns.TypeMX, dns.RcodeServerFailure},
		{"autodiscover.foreign-provider.test", dns.TypeA, dns.RcodeSuccess},
	}
	for _, tt := range tests {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(tt.name), tt.qtype)
		r, _, err := c.ExchangeContext(context.Background(), m, l.DNS.Addr())
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if r.Rcode != tt.rcode {
			t.Errorf("%s %s: got %s, want %s", tt.name, dns.TypeToString[tt.qtype], dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
		}
	}
	// The zones dir holds hosted domains only.
	if _, err := os.Stat(filepath.Join(l.ZonesDir, "foreign-provider.test.db")); !os.IsNotExist(err) {
		t.Errorf("foreign zone written to the hosted zones dir")
	}
	ents, _ := os.ReadDir(l.ZonesDir)
	if got, want := len(ents), len(HostedDomains()); got != want || want < 40 {
		t.Errorf("zones dir has %d files, want %d (>= 40)", got, want)
	}
}

func TestLabMailReload(t *testing.T) {
	l, err := Start(Options{RandomPorts: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	roots := x509.NewCertPool()
	roots.AddCert(l.CA.Cert)
	pr := probe.New(probe.Config{Roots: roots, Timeout: 3 * time.Second})
	port := l.Mail.Ports[model.ProtoSMTPS]
	leafNames := func(sni string) []string {
		ep, err := pr.Probe(context.Background(), probe.Target{IP: IP1, Port: port, Protocol: model.ProtoSMTPS, SNI: sni})
		if err != nil {
			t.Fatal(err)
		}
		return ep.Leaf.DNSNames
	}
	if got := leafNames(""); !slices.Equal(got, []string{Hostname}) {
		t.Errorf("without SNI: got %v, want the server hostname", got)
	}
	if got := leafNames("smtp.domain2.test"); !slices.Contains(got, "smtp.domain2.test") {
		t.Errorf("with SNI smtp.domain2.test: got %v", got)
	}
	// A deploy hook replaces the default certificate and touches reload.
	if err := writeCert(filepath.Join(l.Mail.Dir, "default-"+IP1+".pem"), l.CA, []string{Hostname, "mail.domain2.test", "smtp.domain2.test"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Mail.Dir, "reload"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(leafNames(""), "smtp.domain2.test") {
		if time.Now().After(deadline) {
			t.Fatal("the new default certificate was not served after reload")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A broken file keeps the old certificates.
	os.WriteFile(filepath.Join(l.Mail.Dir, "default-"+IP1+".pem"), []byte("garbage"), 0o600)
	if err := l.Mail.Reload(); err == nil {
		t.Error("reload of a garbage certificate: want an error")
	}
	if got := leafNames(""); !slices.Contains(got, "smtp.domain2.test") {
		t.Errorf("after a failed reload: got %v, want the previous certificate", got)
	}
}

// TestLabMTASTS: the lab's inventory finds MTASTSDomain's record and
// fetches its enforce policy from the lab's policy server, trusting the
// lab CA.
func TestLabMTASTS(t *testing.T) {
	l, err := Start(Options{RandomPorts: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r, err := dnscheck.NewResolver(dnscheck.Config{Servers: []string{l.DNS.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	roots := x509.NewCertPool()
	roots.AddCert(l.CA.Cert)
	inv, err := r.Inventory(context.Background(), []string{MTASTSDomain}, dnscheck.Options{
		MTASTS: &dnscheck.PolicyFetch{Roots: roots, Port: l.MTASTS.Port}})
	if err != nil {
		t.Fatal(err)
	}
	m := inv.Domains[0].MTASTS
	if m == nil || m.Policy == nil || !reflect.DeepEqual(*m.Policy, MTASTSPolicy) {
		t.Fatalf("%s: MTA-STS %+v, want the policy %+v", MTASTSDomain, m, MTASTSPolicy)
	}
	if !m.Policy.MatchesMX("mail." + MTASTSDomain) {
		t.Errorf("the policy does not list the domain's MX")
	}
}
