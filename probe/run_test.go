package probe_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
)

func TestVerdictPrecedence(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	leaf := func(names []string, nb, na string) *model.CertInfo {
		return &model.CertInfo{SubjectCN: names[0], DNSNames: names, NotBefore: nb, NotAfter: na}
	}
	valid := leaf([]string{"server.main-domain.test", "*.domain5.test"}, "2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z")
	old := leaf([]string{"server.main-domain.test"}, "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z")
	future := leaf([]string{"server.main-domain.test"}, "2027-01-01T00:00:00Z", "2027-04-01T00:00:00Z")
	tests := []struct {
		name    string
		ep      *model.Endpoint
		dial    string
		want    string
		details []string
	}{
		{"ok", &model.Endpoint{Leaf: valid, Trusted: true, IssuerTrusted: true}, "server.main-domain.test", model.VerdictOK, []string{"server.main-domain.test"}},
		{"wildcard", &model.Endpoint{Leaf: valid, Trusted: true, IssuerTrusted: true}, "smtp.domain5.test", model.VerdictOK, nil},
		{"wildcard one label only", &model.Endpoint{Leaf: valid, Trusted: true, IssuerTrusted: true}, "a.smtp.domain5.test", model.VerdictMismatch, nil},
		{"wildcard not the apex", &model.Endpoint{Leaf: valid, Trusted: true, IssuerTrusted: true}, "domain5.test", model.VerdictMismatch, nil},
		{"case", &model.Endpoint{Leaf: valid, Trusted: true, IssuerTrusted: true}, "Server.Main-Domain.test", model.VerdictOK, nil},
		{"mismatch", &model.Endpoint{Leaf: valid, Trusted: true, IssuerTrusted: true}, "smtp.domain2.test", model.VerdictMismatch, []string{"server.main-domain.test: name mismatch"}},
		{"error wins", &model.Endpoint{Error: "ehlo: server does not offer STARTTLS", ErrorKind: model.ErrorKindNoSTARTTLS}, "x.test", model.VerdictError, []string{"does not offer STARTTLS"}},
		{"mismatch over expired and untrusted", &model.Endpoint{Leaf: old, TrustError: "x509: unknown authority"}, "smtp.domain2.test", model.VerdictMismatch,
			[]string{"name mismatch; expired on 2026-04-01T00:00:00Z; untrusted: x509: unknown authority"}},
		{"expired over untrusted", &model.Endpoint{Leaf: old, TrustError: "x509: unknown authority"}, "server.main-domain.test", model.VerdictExpired, []string{"expired on", "untrusted"}},
		{"expired, trusted issuer", &model.Endpoint{Leaf: old, IssuerTrusted: true}, "server.main-domain.test", model.VerdictExpired, []string{"server.main-domain.test: expired on 2026-04-01T00:00:00Z"}},
		{"not yet valid", &model.Endpoint{Leaf: future, IssuerTrusted: true}, "server.main-domain.test", model.VerdictExpired, []string{"not valid before 2027-01-01"}},
		{"untrusted", &model.Endpoint{Leaf: valid, TrustError: "x509: certificate signed by unknown authority"}, "server.main-domain.test", model.VerdictUntrusted, []string{"untrusted: x509: certificate signed by unknown authority"}},
		{"not probed", nil, "x.test", model.VerdictError, []string{"not probed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, detail := probe.Verdict(tt.ep, tt.dial, "", now)
			if got != tt.want {
				t.Errorf("got %s (%s), want %s", got, detail, tt.want)
			}
			for _, d := range tt.details {
				if !strings.Contains(detail, d) {
					t.Errorf("detail %q lacks %q", detail, d)
				}
			}
		})
	}
}

func TestParsePorts(t *testing.T) {
	got, err := probe.ParsePorts([]string{"25,587", "465", "smtp:2525", "IMAPS:10993", "993", "25"})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if want := "smtp:25 submission:587 smtps:465 smtp:2525 imaps:10993 imaps:993"; strings.Join(s, " ") != want {
		t.Errorf("got %s, want %s", strings.Join(s, " "), want)
	}
	for _, bad := range []string{"2525", "smtp:0", "http:80", "x", "25,smtps:25", ""} {
		if _, err := probe.ParsePorts([]string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestInventoryRun probes a small hosting server: two IPs, names pointing
// at one or both, one elsewhere, and builds the report.
func TestInventoryRun(t *testing.T) {
	f := newFixture(t)
	var services []*mailtest.Server
	ports := map[string]int{}
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		for _, proto := range []string{model.ProtoSubmission, model.ProtoIMAPS} {
			addr := ip + ":0"
			if p, ok := ports[proto]; ok {
				addr = ip + ":" + strconv.Itoa(p)
			}
			s := start(t, mailtest.Config{Addr: addr, Protocol: proto, Certs: f.certs})
			ports[proto] = s.Port()
			services = append(services, s)
		}
	}
	inv := &model.Inventory{
		ServerIPs: []string{"127.0.0.3", "127.0.0.2"},
		Names: []model.Name{
			{Name: "smtp.domain2.test", Addresses: []string{"127.0.0.2"}, Here: model.HereAll},
			{Name: "server.main-domain.test", Addresses: []string{"127.0.0.2", "127.0.0.3"}, Here: model.HereAll},
			{Name: "mail.domain9.test", Addresses: []string{"127.0.0.3", "127.0.0.77"}, Here: model.HereSome},
			{Name: "elsewhere.test", Addresses: []string{"127.0.0.77"}, Here: model.HereNone},
		},
	}
	pp := []probe.Port{{Protocol: model.ProtoSubmission, Port: ports[model.ProtoSubmission]}, {Protocol: model.ProtoIMAPS, Port: ports[model.ProtoIMAPS]}}
	scope := probe.InventoryScope(inv, pp)
	// 2 IPs x 2 ports without SNI; smtp.domain2 1x2, server 2x2, domain9 1x2 with.
	if n := len(scope.Targets()); n != 4+2+4+2 {
		t.Fatalf("targets: %d", n)
	}
	p := probe.New(probe.Config{Roots: f.roots})
	r := p.Run(context.Background(), scope, nil)
	if r.Kind != model.KindProbe || r.Version != model.Version || r.Stats.Endpoints != 12 || r.Stats.EndpointErrors != 0 {
		t.Fatalf("header/stats: %+v %+v", r.Header, r.Stats)
	}
	if len(r.Coverage) != 8 || r.Stats.Names != 3 {
		t.Fatalf("coverage rows %d names %d", len(r.Coverage), r.Stats.Names)
	}
	var rows []string
	for _, c := range r.Coverage {
		rows = append(rows, c.Name+"@"+c.IP+":"+c.Protocol+"="+c.WithSNI+"/"+c.WithoutSNI)
	}
	want := []string{
		"mail.domain9.test@127.0.0.3:submission=mismatch/mismatch",
		"mail.domain9.test@127.0.0.3:imaps=mismatch/mismatch",
		"server.main-domain.test@127.0.0.2:submission=ok/ok",
		"server.main-domain.test@127.0.0.2:imaps=ok/ok",
		"server.main-domain.test@127.0.0.3:submission=ok/ok",
		"server.main-domain.test@127.0.0.3:imaps=ok/ok",
		"smtp.domain2.test@127.0.0.2:submission=ok/mismatch",
		"smtp.domain2.test@127.0.0.2:imaps=ok/mismatch",
	}
	// Rows are sorted by name, IP, port; the port order depends on the free
	// ports the listeners got.
	if ports[model.ProtoIMAPS] < ports[model.ProtoSubmission] {
		for i := 0; i < len(want); i += 2 {
			want[i], want[i+1] = want[i+1], want[i]
		}
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("coverage:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	if r.Stats.Broken != 4 {
		t.Errorf("broken %d", r.Stats.Broken)
	}
	// Endpoints are sorted by IP, port, SNI; the JSON contract's fields are there.
	for i := 1; i < len(r.Endpoints); i++ {
		a, b := r.Endpoints[i-1], r.Endpoints[i]
		if a.IP > b.IP || (a.IP == b.IP && (a.Port > b.Port || (a.Port == b.Port && a.SNI >= b.SNI))) {
			t.Errorf("endpoints not sorted at %d", i)
		}
	}
	b, _ := json.Marshal(r)
	for _, k := range []string{`"endpoints"`, `"coverage"`, `"sni":""`, `"leaf":{"subject_cn"`, `"dns_names"`, `"not_after"`, `"serial"`, `"spki_sha256"`, `"with_sni"`, `"without_sni"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON lacks %s", k)
		}
	}
	for _, s := range services {
		s.Close()
	}
}

// TestRunDeadHosts: an IP and port that accepts and never speaks, named by
// many SNI names, costs one timeout: its first handshake times out, the
// others there are skipped as timeouts at once, and the live services'
// results are not held back, even with fewer workers than dead targets.
func TestRunDeadHosts(t *testing.T) {
	f := newFixture(t)
	const timeout = 700 * time.Millisecond
	live := start(t, mailtest.Config{Addr: "127.0.0.2:0", Protocol: model.ProtoSMTP, Certs: f.certs})
	dead := start(t, mailtest.Config{Addr: "127.0.0.3:0", Protocol: model.ProtoSMTP, Certs: f.certs, Mode: mailtest.Silent})
	deadTLS := start(t, mailtest.Config{Addr: "127.0.0.3:0", Protocol: model.ProtoSMTPS, Certs: f.certs, Mode: mailtest.Silent})
	var scope probe.Scope
	for i := range 20 {
		name := "n" + strconv.Itoa(i) + ".domain2.test"
		for _, s := range []*mailtest.Server{live, dead, deadTLS} {
			scope.Names = append(scope.Names, probe.NameAt{Name: name, Service: probe.Service{IP: s.IP(), Port: s.Port(), Protocol: s.Protocol()}})
		}
	}
	p := probe.New(probe.Config{Roots: f.roots, Timeout: timeout, Concurrency: 4})
	begin := time.Now()
	var liveDone int
	var liveAt time.Duration
	r := p.Run(context.Background(), scope, func(ep model.Endpoint) {
		if ep.IP == live.IP() {
			if liveDone++; liveDone == 21 {
				liveAt = time.Since(begin)
			}
		}
	})
	el := time.Since(begin)
	// 42 dead targets at 4 a time would take 11 timeouts in series.
	if el > timeout+timeout/2+500*time.Millisecond {
		t.Errorf("run took %s, timeout %s", el, timeout)
	}
	if liveAt == 0 || liveAt > timeout {
		t.Errorf("live results out after %s", liveAt)
	}
	timedOut, skipped := 0, 0
	for _, ep := range r.Endpoints {
		if ep.IP == live.IP() {
			if ep.Error != "" {
				t.Errorf("live %s: %s", ep.SNI, ep.Error)
			}
			continue
		}
		if ep.ErrorKind != model.ErrorKindTimeout {
			t.Errorf("dead %d %q: kind %s (%s)", ep.Port, ep.SNI, ep.ErrorKind, ep.Error)
		}
		addr := ep.IP + ":" + strconv.Itoa(ep.Port)
		switch ep.Error {
		case "greeting: timed out", "tls handshake: timed out":
			timedOut++
		case "skipped: " + addr + " did not answer an earlier handshake":
			skipped++
		default:
			t.Errorf("dead %s %q: %s", addr, ep.SNI, ep.Error)
		}
	}
	if timedOut != 2 || skipped != 40 {
		t.Errorf("timed out %d, skipped %d; want 2 and 40", timedOut, skipped)
	}
}

// A default certificate is named by the server's own name when it covers
// it, not by its first SAN (which may be any customer's name): from
// --hostname, else from an SMTP greeting on the same IP (IMAP's carries
// none, so its port borrows it); a certificate that does not cover the
// server's name keeps its CN or first SAN.
func TestCertNameByServer(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	leaf := func(names ...string) *model.CertInfo {
		return &model.CertInfo{SubjectCN: names[0], DNSNames: names, NotBefore: "2026-10-01T00:00:00Z", NotAfter: "2027-01-01T00:00:00Z"}
	}
	shared := leaf("autoconfig.client1.test", "mail.domain2.test", "server.main-domain.test")
	other := leaf("autoconfig.client1.test", "mail.domain2.test")
	const imap = "* OK [CAPABILITY IMAP4rev1] Dovecot ready."
	for _, tt := range []struct {
		name     string
		leaf     *model.CertInfo
		banners  []string // one endpoint each, on 127.0.0.2
		hostname string
		want     string
	}{
		{"hostname", shared, []string{imap}, "server.main-domain.test", "server.main-domain.test"},
		{"smtp greeting", shared, []string{"220 Server.Main-Domain.test ESMTP Exim 4.96"}, "", "server.main-domain.test"},
		{"multi-line greeting", shared, []string{"220-server.main-domain.test ESMTP"}, "", "server.main-domain.test"},
		{"imap borrows the smtp greeting's name", shared, []string{imap, "220 server.main-domain.test ESMTP"}, "", "server.main-domain.test"},
		{"imap alone carries no name", shared, []string{imap}, "", "autoconfig.client1.test"},
		{"greeting that is no name", shared, []string{"220 ESMTP"}, "", "autoconfig.client1.test"},
		{"server name not covered", other, []string{"220 server.main-domain.test ESMTP"}, "server.main-domain.test", "autoconfig.client1.test"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var eps []model.Endpoint
			var scope probe.Scope
			for i, b := range tt.banners {
				eps = append(eps, model.Endpoint{IP: "127.0.0.2", Port: 2000 + i, Protocol: "p", Leaf: tt.leaf, Banner: b, Trusted: true, IssuerTrusted: true})
				scope.Names = append(scope.Names, probe.NameAt{Name: "smtp.domain9.test", Service: probe.Service{IP: "127.0.0.2", Port: 2000 + i, Protocol: "p"}})
			}
			scope.Hostname = tt.hostname
			rows := probe.Coverage(scope, eps, now)
			if len(rows) != len(eps) {
				t.Fatalf("%d coverage rows, want %d", len(rows), len(eps))
			}
			for _, c := range rows {
				if want := tt.want + ": name mismatch"; c.WithoutSNIDetail != want {
					t.Errorf("port %d: detail %q, want %q", c.Port, c.WithoutSNIDetail, want)
				}
			}
		})
	}
}
