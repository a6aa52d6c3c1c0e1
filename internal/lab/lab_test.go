package lab

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestLabDNS(t *testing.T) {
	l, err := Start(Options{})
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
