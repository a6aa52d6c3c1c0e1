package dnssectest

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/certplan/certplan/internal/dnstest"
)

// ask sends a question with the DO bit (RFC 3225) to server.
func ask(t *testing.T, server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, true)
	c := &dns.Client{Timeout: 5 * time.Second}
	in, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("%s %s at %s: %v", name, dns.TypeToString[qtype], server, err)
	}
	return in
}

const tlsa = "_25._tcp.mx IN TLSA 3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6\n"

func testConfig() Config {
	return Config{
		Zones: map[string]string{
			"signed.test.":   "mx IN A 127.0.0.10\n" + tlsa + "bad IN A 127.0.0.11\nhalf IN A 127.0.0.13\nhalf IN TXT x\n",
			"unsigned.test.": "mx IN A 127.0.0.12\n" + tlsa,
		},
		Insecure: []string{"unsigned.test."},
		Broken:   []string{"bad.signed.test.", "half.signed.test. TXT"},
	}
}

// TestVerdicts: the validating resolver sets AD for signed records, answers
// SERVFAIL for a tampered signature and no AD for the unsigned zone; the
// plain resolver never sets AD.
func TestVerdicts(t *testing.T) {
	r := Start(t, testConfig())
	for _, tt := range []struct {
		name, server, qname string
		qtype               uint16
		rcode               int
		ad                  bool
	}{
		{"signed A", r.Resolver, "mx.signed.test.", dns.TypeA, dns.RcodeSuccess, true},
		{"signed TLSA", r.Resolver, "_25._tcp.mx.signed.test.", dns.TypeTLSA, dns.RcodeSuccess, true},
		{"signed NXDOMAIN", r.Resolver, "nope.signed.test.", dns.TypeA, dns.RcodeNameError, true},
		{"root DNSKEY", r.Resolver, ".", dns.TypeDNSKEY, dns.RcodeSuccess, true},
		{"broken", r.Resolver, "bad.signed.test.", dns.TypeA, dns.RcodeServerFailure, false},
		{"broken type", r.Resolver, "half.signed.test.", dns.TypeTXT, dns.RcodeServerFailure, false},
		{"other type intact", r.Resolver, "half.signed.test.", dns.TypeA, dns.RcodeSuccess, true},
		{"insecure TLSA", r.Resolver, "_25._tcp.mx.unsigned.test.", dns.TypeTLSA, dns.RcodeSuccess, false},
		{"plain signed TLSA", r.PlainResolver, "_25._tcp.mx.signed.test.", dns.TypeTLSA, dns.RcodeSuccess, false},
		{"plain broken", r.PlainResolver, "bad.signed.test.", dns.TypeA, dns.RcodeSuccess, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := ask(t, tt.server, tt.qname, tt.qtype)
			if in.Rcode != tt.rcode || in.AuthenticatedData != tt.ad {
				t.Errorf("rcode %s AD %v, want %s AD %v\n%v", dns.RcodeToString[in.Rcode], in.AuthenticatedData,
					dns.RcodeToString[tt.rcode], tt.ad, in)
			}
			if tt.rcode == dns.RcodeSuccess && tt.qtype != dns.TypeDNSKEY && len(in.Answer) == 0 {
				t.Errorf("no answer: %v", in)
			}
		})
	}
}

// TestUpdate: a record added and re-signed while running is seen at once,
// validated, with the zone's TTL.
func TestUpdate(t *testing.T) {
	r := Start(t, testConfig())
	if in := ask(t, r.Resolver, "_25._tcp.new.signed.test.", dns.TypeTLSA); in.Rcode != dns.RcodeNameError {
		t.Fatalf("before the update: %v", in)
	}
	next := "_25._tcp.new IN TLSA 3 1 1 d2abde240d7cd3ee6b4b28c54df034b97983a1d16e8a410e4561cb106618e971\n"
	r.Update("signed.test.", "mx IN A 127.0.0.10\n"+tlsa+next+"bad IN A 127.0.0.11\n")
	in := ask(t, r.Resolver, "_25._tcp.new.signed.test.", dns.TypeTLSA)
	if in.Rcode != dns.RcodeSuccess || !in.AuthenticatedData || len(in.Answer) == 0 {
		t.Fatalf("after the update: %v", in)
	}
	if ttl := in.Answer[0].Header().Ttl; ttl == 0 || ttl > 5 {
		t.Errorf("TTL %d, want the zone's default 5 or a little less", ttl)
	}
	if in := ask(t, r.Auth, "signed.test.", dns.TypeSOA); in.Answer[0].(*dns.SOA).Serial != 2 {
		t.Errorf("NSD serves %v, want serial 2", in.Answer[0])
	}
	if in := ask(t, r.Resolver, "bad.signed.test.", dns.TypeA); in.Rcode != dns.RcodeServerFailure {
		t.Errorf("broken name after the update: %v", in)
	}
}

// TestAuthAddr: NSD on a chosen address (port 53, as root), the NS records'
// addresses pointing to it, and the resolvers still validating through it.
func TestAuthAddr(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("port 53 needs root")
	}
	cfg := testConfig()
	cfg.AuthAddr = "127.0.0.153:53"
	r := Start(t, cfg)
	if r.Auth != cfg.AuthAddr {
		t.Fatalf("Auth %s, want %s", r.Auth, cfg.AuthAddr)
	}
	in := ask(t, r.Resolver, "ns1.signed.test.", dns.TypeA)
	if len(in.Answer) == 0 {
		t.Fatalf("ns1.signed.test: no answer: %v", in)
	}
	if a, ok := in.Answer[0].(*dns.A); !ok || a.A.String() != "127.0.0.153" || !in.AuthenticatedData {
		t.Errorf("ns1.signed.test: %v, want 127.0.0.153 with AD", in)
	}
}

// TestStubs: a rig from Run, with a zone of another (unsigned) server as a
// stub, answers for both: the stub's records without AD (and its SERVFAIL
// as SERVFAIL), the signed zone's with AD; Close stops the resolver.
func TestStubs(t *testing.T) {
	Require(t)
	other := dnstest.New()
	if err := other.AddZone("plain.test.", "@ IN SOA ns hm 1 60 60 600 5\nmx IN A 127.0.0.20\n"); err != nil {
		t.Fatal(err)
	}
	if err := other.AddZone("fails.test.", "@ IN SOA ns hm 1 60 60 600 5\nmx IN A 127.0.0.21\n"); err != nil {
		t.Fatal(err)
	}
	other.SetFault("mx.fails.test", dnstest.FaultServfail)
	if err := other.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	r, err := Run(t.TempDir(), Config{Zones: map[string]string{"signed.test.": "mx IN A 127.0.0.10\n" + tlsa},
		Stubs: map[string]string{"plain.test.": other.Addr(), "fails.test": other.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if in := ask(t, r.Resolver, "mx.plain.test.", dns.TypeA); in.Rcode != dns.RcodeSuccess || in.AuthenticatedData || len(in.Answer) != 1 {
		t.Errorf("stub zone: %v", in)
	}
	if in := ask(t, r.Resolver, "mx.fails.test.", dns.TypeA); in.Rcode != dns.RcodeServerFailure {
		t.Errorf("failing stub zone: %v", in)
	}
	if in := ask(t, r.Resolver, "_25._tcp.mx.signed.test.", dns.TypeTLSA); in.Rcode != dns.RcodeSuccess || !in.AuthenticatedData {
		t.Errorf("signed zone beside the stubs: %v", in)
	}
	if err := r.UpdateZone("signed.test.", "mx IN A 127.0.0.11\n"); err != nil {
		t.Fatal(err)
	}
	if in := ask(t, r.Resolver, "mx.signed.test.", dns.TypeA); len(in.Answer) == 0 || !strings.Contains(in.Answer[0].String(), "127.0.0.11") {
		t.Errorf("after UpdateZone: %v", in)
	}
	r.Close()
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("mx.signed.test.", dns.TypeA)
	if _, _, err := c.Exchange(m, r.Resolver); err == nil {
		t.Error("the resolver still answers after Close")
	}
}
