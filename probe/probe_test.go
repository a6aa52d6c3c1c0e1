package probe_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
)

var allProtocols = []string{model.ProtoSMTP, model.ProtoSubmission, model.ProtoSMTPS,
	model.ProtoIMAP, model.ProtoIMAPS, model.ProtoPOP3, model.ProtoPOP3S}

// fixture is a lab CA, a default certificate for server.main-domain.test and
// an SNI certificate for mail.domain2.test.
type fixture struct {
	ca    *mailtest.CA
	roots *x509.CertPool
	certs *mailtest.Certs
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ca, err := mailtest.NewCA("certplan test CA")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	def := ca.MustIssue("server.main-domain.test")
	sni := ca.MustIssue("mail.domain2.test", "smtp.domain2.test")
	return &fixture{ca: ca, roots: roots, certs: mailtest.NewCerts(def, sni)}
}

func start(t testing.TB, cfg mailtest.Config) *mailtest.Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.2:0"
	}
	s, err := mailtest.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func target(s *mailtest.Server, sni string) probe.Target {
	return probe.Target{IP: s.IP(), Port: s.Port(), Protocol: s.Protocol(), SNI: sni}
}

func TestSNIAndDefault(t *testing.T) {
	f := newFixture(t)
	p := probe.New(probe.Config{Roots: f.roots, Timeout: 5 * time.Second})
	for _, proto := range allProtocols {
		t.Run(proto, func(t *testing.T) {
			s := start(t, mailtest.Config{Protocol: proto, Certs: f.certs})
			ctx := context.Background()
			for _, tt := range []struct{ sni, wantCN string }{
				{"", "server.main-domain.test"},
				{"mail.domain2.test", "mail.domain2.test"},
				{"SMTP.domain2.test", "mail.domain2.test"},
				{"unknown.test", "server.main-domain.test"},
			} {
				ep, err := p.Probe(ctx, target(s, tt.sni))
				if err != nil {
					t.Fatalf("sni %q: %v", tt.sni, err)
				}
				if ep.Leaf == nil || ep.Leaf.SubjectCN != tt.wantCN {
					t.Fatalf("sni %q: got leaf %+v, want CN %s", tt.sni, ep.Leaf, tt.wantCN)
				}
				if !ep.Trusted || !ep.IssuerTrusted || ep.TrustError != "" {
					t.Errorf("sni %q: trusted=%v issuer=%v err=%q, want trusted", tt.sni, ep.Trusted, ep.IssuerTrusted, ep.TrustError)
				}
				if ep.SNI != tt.sni || ep.Protocol != proto || ep.Port != s.Port() || ep.IP != "127.0.0.2" {
					t.Errorf("endpoint identity %+v", ep)
				}
				if ep.TLSVersion != "TLS 1.3" {
					t.Errorf("tls version %q", ep.TLSVersion)
				}
				if ep.Leaf.KeyType != "ECDSA" || ep.Leaf.KeyBits != 256 || len(ep.Leaf.SPKISHA256) != 64 || ep.Leaf.Serial == "" {
					t.Errorf("leaf details %+v", ep.Leaf)
				}
				if (proto == model.ProtoSMTP || proto == model.ProtoIMAP || proto == model.ProtoPOP3) && ep.Banner == "" {
					t.Errorf("no banner recorded")
				}
			}
		})
	}
}

func TestVerdictsFromServers(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	expired, err := f.ca.Issue(mailtest.CertSpec{Names: []string{"old.domain3.test"}, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	self, err := mailtest.SelfSigned(mailtest.CertSpec{Names: []string{"self.domain4.test"}})
	if err != nil {
		t.Fatal(err)
	}
	certs := mailtest.NewCerts(f.ca.MustIssue("server.main-domain.test"), expired, self, f.ca.MustIssue("*.domain5.test"))
	s := start(t, mailtest.Config{Protocol: model.ProtoSubmission, Certs: certs})
	p := probe.New(probe.Config{Roots: f.roots})
	ctx := context.Background()
	tests := []struct {
		sni, name, want, detail string
	}{
		{"", "server.main-domain.test", model.VerdictOK, "server.main-domain.test"},
		{"", "smtp.domain2.test", model.VerdictMismatch, "server.main-domain.test: name mismatch"},
		{"old.domain3.test", "old.domain3.test", model.VerdictExpired, "old.domain3.test: expired on "},
		{"self.domain4.test", "self.domain4.test", model.VerdictUntrusted, "self.domain4.test: untrusted: x509: certificate signed by unknown authority"},
		{"self.domain4.test", "other.domain4.test", model.VerdictMismatch, "self.domain4.test: name mismatch; untrusted"},
		{"old.domain3.test", "x.domain3.test", model.VerdictMismatch, "name mismatch; expired on"},
		{"smtp.domain5.test", "smtp.domain5.test", model.VerdictOK, "*.domain5.test"},
		{"a.b.domain5.test", "a.b.domain5.test", model.VerdictMismatch, "server.main-domain.test: name mismatch"},
	}
	for _, tt := range tests {
		ep, err := p.Probe(ctx, target(s, tt.sni))
		if err != nil {
			t.Fatal(err)
		}
		got, detail := probe.Verdict(&ep, tt.name, "", now)
		if got != tt.want || !strings.Contains(detail, tt.detail) {
			t.Errorf("sni %q name %s: got %s %q, want %s %q", tt.sni, tt.name, got, detail, tt.want, tt.detail)
		}
	}
	// The expired certificate's issuer is trusted: only its dates fail.
	ep, _ := p.Probe(ctx, target(s, "old.domain3.test"))
	if ep.Trusted || !ep.IssuerTrusted {
		t.Errorf("expired: trusted=%v issuer_trusted=%v, want false, true", ep.Trusted, ep.IssuerTrusted)
	}
	// Judged at a time inside its validity, it is ok.
	if v, d := probe.Verdict(&ep, "old.domain3.test", "", now.Add(-30*time.Minute)); v != model.VerdictOK {
		t.Errorf("expired cert judged a month ago: %s %s", v, d)
	}
	// Without the lab CA, the same certificates are untrusted.
	sys := probe.New(probe.Config{Roots: x509.NewCertPool()})
	ep, _ = sys.Probe(ctx, target(s, ""))
	if v, _ := probe.Verdict(&ep, "server.main-domain.test", "", now); v != model.VerdictUntrusted {
		t.Errorf("without anchors: %s, want untrusted", v)
	}
}

func TestCertificateSwap(t *testing.T) {
	f := newFixture(t)
	s := start(t, mailtest.Config{Protocol: model.ProtoIMAPS, Certs: f.certs})
	p := probe.New(probe.Config{Roots: f.roots})
	ep, err := p.Probe(context.Background(), target(s, ""))
	if err != nil || ep.Leaf.SubjectCN != "server.main-domain.test" {
		t.Fatalf("before: %v %+v", err, ep.Leaf)
	}
	f.certs.Set(f.ca.MustIssue("server.main-domain.test", "smtp.domain2.test"))
	ep2, err := p.Probe(context.Background(), target(s, ""))
	if err != nil {
		t.Fatal(err)
	}
	if ep2.Leaf.SPKISHA256 == ep.Leaf.SPKISHA256 || !probe.MatchesName(ep2.Leaf.DNSNames, "smtp.domain2.test") {
		t.Errorf("after swap: %+v", ep2.Leaf)
	}
}

func TestSTARTTLSFailures(t *testing.T) {
	f := newFixture(t)
	p := probe.New(probe.Config{Roots: f.roots, Timeout: 3 * time.Second})
	for _, proto := range []string{model.ProtoSMTP, model.ProtoIMAP, model.ProtoPOP3} {
		for _, tt := range []struct {
			mode mailtest.Mode
			kind string
			msg  string
		}{
			{mailtest.NoSTARTTLS, model.ErrorKindNoSTARTTLS, "does not offer"},
			{mailtest.RefuseSTARTTLS, model.ErrorKindSTARTTLSRefused, "refused"},
		} {
			t.Run(proto+"/"+string(tt.mode), func(t *testing.T) {
				s := start(t, mailtest.Config{Protocol: proto, Certs: f.certs, Mode: tt.mode})
				ep, err := p.Probe(context.Background(), target(s, ""))
				if err == nil || probe.KindOf(err) != tt.kind || ep.ErrorKind != tt.kind || !strings.Contains(ep.Error, tt.msg) {
					t.Fatalf("got %v (kind %q, endpoint %q %q), want kind %s", err, probe.KindOf(err), ep.ErrorKind, ep.Error, tt.kind)
				}
				if ep.Leaf != nil {
					t.Errorf("leaf on failure")
				}
				if v, _ := probe.Verdict(&ep, "x.test", "", time.Now()); v != model.VerdictError {
					t.Errorf("verdict %s, want error", v)
				}
			})
		}
	}
	// SMTP 454 is reported with its text.
	s := start(t, mailtest.Config{Protocol: model.ProtoSMTP, Certs: f.certs, Mode: mailtest.RefuseSTARTTLS})
	ep, _ := p.Probe(context.Background(), target(s, ""))
	if !strings.Contains(ep.Error, "454 4.7.0 TLS not available") {
		t.Errorf("454 error: %q", ep.Error)
	}
}

func TestMultilineBanner(t *testing.T) {
	f := newFixture(t)
	p := probe.New(probe.Config{Roots: f.roots})
	s := start(t, mailtest.Config{Protocol: model.ProtoSMTP, Certs: f.certs,
		Banner: []string{"mx.main-domain.test ESMTP", "no UCE", "spam is not welcome here"}})
	ep, err := p.Probe(context.Background(), target(s, "mail.domain2.test"))
	if err != nil {
		t.Fatal(err)
	}
	if ep.Banner != "220-mx.main-domain.test ESMTP" || ep.Leaf.SubjectCN != "mail.domain2.test" {
		t.Errorf("banner %q leaf %s", ep.Banner, ep.Leaf.SubjectCN)
	}
}

// TestHostile runs every hostile server with a good one in the same run:
// each fails with its kind within the timeout, the good one succeeds.
func TestHostile(t *testing.T) {
	f := newFixture(t)
	const timeout = 1500 * time.Millisecond
	good := start(t, mailtest.Config{Addr: "127.0.0.1:0", Protocol: model.ProtoSMTP, Certs: f.certs})
	want := map[string]string{} // addr -> kind
	scope := probe.Scope{Services: []probe.Service{{IP: good.IP(), Port: good.Port(), Protocol: good.Protocol()}}}
	for _, tt := range []struct {
		proto string
		mode  mailtest.Mode
		kind  string
	}{
		{model.ProtoSMTP, mailtest.Silent, model.ErrorKindTimeout},
		{model.ProtoSMTP, mailtest.Slow, model.ErrorKindTimeout},
		{model.ProtoSMTP, mailtest.EndlessLine, model.ErrorKindTooLong},
		{model.ProtoSMTP, mailtest.Garbage, model.ErrorKindTLS},
		{model.ProtoSMTP, mailtest.CloseMidHandshake, model.ErrorKindTLS},
		{model.ProtoIMAPS, mailtest.Silent, model.ErrorKindTimeout},
		{model.ProtoIMAPS, mailtest.Slow, model.ErrorKindTimeout},
		{model.ProtoIMAPS, mailtest.Garbage, model.ErrorKindTLS},
		{model.ProtoIMAPS, mailtest.CloseMidHandshake, model.ErrorKindTLS},
		{model.ProtoIMAP, mailtest.EndlessLine, model.ErrorKindTooLong},
		{model.ProtoPOP3, mailtest.Slow, model.ErrorKindTimeout},
	} {
		s := start(t, mailtest.Config{Protocol: tt.proto, Certs: f.certs, Mode: tt.mode, SlowInterval: 200 * time.Millisecond})
		want[s.Addr()] = tt.kind
		scope.Services = append(scope.Services, probe.Service{IP: s.IP(), Port: s.Port(), Protocol: s.Protocol()})
	}
	// A refused connection: a port that was just closed.
	closed := start(t, mailtest.Config{Protocol: model.ProtoSMTPS, Certs: f.certs})
	closed.Close()
	want[closed.Addr()] = model.ErrorKindConnect
	scope.Services = append(scope.Services, probe.Service{IP: closed.IP(), Port: closed.Port(), Protocol: closed.Protocol()})

	p := probe.New(probe.Config{Roots: f.roots, Timeout: timeout, Concurrency: 4})
	begin := time.Now()
	var goodAt time.Duration
	r := p.Run(context.Background(), scope, func(ep model.Endpoint) {
		if ep.IP == good.IP() {
			goodAt = time.Since(begin)
		}
		if d := time.Duration(ep.DurationMS) * time.Millisecond; d > timeout+500*time.Millisecond {
			t.Errorf("%s:%d took %s, timeout %s", ep.IP, ep.Port, d, timeout)
		}
	})
	// 13 endpoints, 4 at a time, the slowest taking the timeout: well
	// under 4 timeouts in all.
	if el := time.Since(begin); el > 4*timeout+time.Second {
		t.Errorf("run took %s", el)
	}
	// Results stream: the good endpoint is reported long before the
	// silent ones time out.
	if goodAt == 0 || goodAt > timeout/2 {
		t.Errorf("good endpoint reported after %s", goodAt)
	}
	if len(r.Endpoints) != len(want)+1 || r.Stats.Endpoints != len(r.Endpoints) || r.Stats.EndpointErrors != len(want) {
		t.Fatalf("endpoints %d stats %+v", len(r.Endpoints), r.Stats)
	}
	for _, ep := range r.Endpoints {
		addr := ep.IP + ":" + strconv.Itoa(ep.Port)
		if ep.IP == good.IP() {
			if ep.Error != "" || ep.Leaf == nil {
				t.Errorf("good server failed: %s", ep.Error)
			}
			continue
		}
		if ep.ErrorKind != want[addr] {
			t.Errorf("%s %s: got %s (%s), want %s", ep.Protocol, addr, ep.ErrorKind, ep.Error, want[addr])
		}
		if addr == closed.Addr() && ep.Error != "connect: connection refused" {
			t.Errorf("refused connection: error %q, want \"connect: connection refused\"", ep.Error)
		}
	}
}

func TestContextCancel(t *testing.T) {
	f := newFixture(t)
	s := start(t, mailtest.Config{Protocol: model.ProtoSMTP, Certs: f.certs, Mode: mailtest.Silent})
	p := probe.New(probe.Config{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	begin := time.Now()
	ep, err := p.Probe(ctx, target(s, ""))
	if probe.KindOf(err) != model.ErrorKindTimeout || time.Since(begin) > 5*time.Second {
		t.Errorf("got %v (%s) after %s", err, ep.ErrorKind, time.Since(begin))
	}
}

// TestDataAfterSTARTTLS: bytes after the 220 to STARTTLS and before the
// handshake are refused (the shape of a STARTTLS injection).
func TestDataAfterSTARTTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		c.Write([]byte("220 x ESMTP\r\n"))
		br.ReadString('\n')
		c.Write([]byte("250-x\r\n250 STARTTLS\r\n"))
		br.ReadString('\n')
		c.Write([]byte("220 go ahead\r\n250 injected\r\n"))
		br.ReadString('\n')
	}()
	a := ln.Addr().(*net.TCPAddr)
	p := probe.New(probe.Config{Timeout: 3 * time.Second})
	ep, err := p.Probe(context.Background(), probe.Target{IP: "127.0.0.2", Port: a.Port, Protocol: model.ProtoSMTP})
	if probe.KindOf(err) != model.ErrorKindProtocol || !strings.Contains(ep.Error, "data after its STARTTLS reply") {
		t.Errorf("got %v", err)
	}
}
