package mailtest

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/certplan/certplan/model"
)

func TestCertsSelection(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	def, exact, wild := ca.MustIssue("server.test"), ca.MustIssue("mail.a.test"), ca.MustIssue("*.b.test")
	c := NewCerts(def, exact, wild)
	for _, tt := range []struct {
		sni  string
		want *tls.Certificate
	}{
		{"", def}, {"mail.a.test", exact}, {"MAIL.A.TEST.", exact}, {"x.b.test", wild},
		{"b.test", def}, {"y.x.b.test", def}, {"other.test", def},
	} {
		got, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: tt.sni})
		if err != nil || got != tt.want {
			t.Errorf("sni %q: got %v (%v)", tt.sni, got.Leaf.DNSNames, err)
		}
	}
	c.Set(nil)
	if _, err := c.GetCertificate(&tls.ClientHelloInfo{}); err == nil {
		t.Error("no default certificate: want an error")
	}
}

func TestStartLoopbackOnly(t *testing.T) {
	if _, err := Start(Config{Addr: "0.0.0.0:0", Protocol: model.ProtoSMTP}); err == nil {
		t.Error("listening on 0.0.0.0 was allowed")
	}
	if _, err := Start(Config{Addr: "127.0.0.2:0", Protocol: "http"}); err == nil {
		t.Error("unknown protocol was allowed")
	}
	s, err := Start(Config{Addr: "127.0.0.2:0", Protocol: model.ProtoSMTP, Mode: Silent})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Close ends open connections too, and returns.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after Close")
	}
}
