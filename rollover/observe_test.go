package rollover

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/store"
)

const (
	curSPKI  = "1111111111111111111111111111111111111111111111111111111111111111"
	nextSPKI = "2222222222222222222222222222222222222222222222222222222222222222"
)

// zoneWith is d.test with n authoritative servers, ns1 to ns<n> on
// 127.0.0.2 and up, and the current key's record at _25._tcp.mx.
func zoneWith(n int) string {
	var b strings.Builder
	b.WriteString("$ORIGIN d.test.\n@ 3600 IN SOA ns1.d.test. hostmaster.d.test. 1 3600 600 86400 300\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "@ 3600 IN NS ns%d.d.test.\nns%d IN A 127.0.0.%d\n", i, i, i+1)
	}
	b.WriteString("mx IN A 127.0.0.1\n_25._tcp.mx 300 IN TLSA 3 1 1 " + curSPKI + "\n")
	return b.String()
}

// servers starts n authoritative servers of zoneWith(n).
func servers(t *testing.T, n int, extra string) ([]*dnstest.Server, int) {
	var ips []string
	for i := 1; i <= n; i++ {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", i+1))
	}
	return authServers(t, zoneWith(n)+extra, ips...)
}

// authServers starts one dnstest server per address, all on one port
// (the port Observer.AuthPort names), each serving text.
func authServers(t *testing.T, text string, ips ...string) ([]*dnstest.Server, int) {
	t.Helper()
	for try := 0; try < 20; try++ {
		var srvs []*dnstest.Server
		port := "0"
		for _, ip := range ips {
			s := dnstest.New()
			if err := s.AddZone("d.test.", text); err != nil {
				t.Fatal(err)
			}
			if err := s.Start(net.JoinHostPort(ip, port)); err != nil {
				break
			}
			srvs = append(srvs, s)
			_, port, _ = net.SplitHostPort(s.Addr())
		}
		if len(srvs) == len(ips) {
			t.Cleanup(func() {
				for _, s := range srvs {
					s.Close()
				}
			})
			p, _ := strconv.Atoi(port)
			return srvs, p
		}
		for _, s := range srvs {
			s.Close()
		}
	}
	t.Fatal("no common port for the authoritative servers")
	return nil, 0
}

// resolver is a resolver's stand-in forwarding to backend (dnstest.Resolver).
func resolver(t *testing.T, backend string, validating bool) string {
	t.Helper()
	r, err := dnstest.StartResolver(backend, validating)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.Addr()
}

func addNext(t *testing.T, srvs ...*dnstest.Server) {
	t.Helper()
	for _, s := range srvs {
		if err := s.Add("_25._tcp.mx.d.test. 300 IN TLSA 3 1 1 " + nextSPKI); err != nil {
			t.Fatal(err)
		}
	}
}

func observer(res string, port int) *Observer {
	return &Observer{Resolver: res, AuthPort: port, Timeout: 2 * time.Second}
}

// TestObserveEveryServer: the next key's record on all three servers and
// validated is seen everywhere; the zone and its servers come from SOA and
// NS through the resolver.
func TestObserveEveryServer(t *testing.T) {
	srvs, port := servers(t, 3, "")
	addNext(t, srvs...)
	o := observer(resolver(t, srvs[0].Addr(), true), port)
	seen := o.Observe(context.Background(), []string{"mx.d.test"}, nextSPKI)
	s := seen[0]
	if !s.Everywhere() || s.Zone != "d.test." || s.TTL != 300 {
		t.Fatalf("seen %+v", s)
	}
	if n, of := s.OnServers(); n != 3 || of != 3 {
		t.Fatalf("on %d of %d servers", n, of)
	}
	for i, sv := range s.Servers {
		if want := fmt.Sprintf("127.0.0.%d:%d", i+2, port); sv.Addr != want {
			t.Errorf("server %d at %s, want %s", i, sv.Addr, want)
		}
		if srvs[i].QueryCount("_25._tcp.mx.d.test.", dns.TypeTLSA) == 0 {
			t.Errorf("server %d was not asked", i)
		}
	}
}

// TestObserveOneServerMissing: a server without the record (its zone not
// yet transferred) keeps the rollover staged, and says which.
func TestObserveOneServerMissing(t *testing.T) {
	srvs, port := servers(t, 3, "")
	addNext(t, srvs[0], srvs[1])
	o := observer(resolver(t, srvs[0].Addr(), true), port)
	s := o.Observe(context.Background(), []string{"mx.d.test"}, nextSPKI)[0]
	if !s.Validated || s.Everywhere() {
		t.Fatalf("seen %+v", s)
	}
	st, _ := Step(nkFor("mx.d.test"), []Seen{s}, time.Now())
	if st.State != StateStaged || !strings.Contains(st.Waits, "on 2 of 3 authoritative servers") || !strings.Contains(st.Waits, "ns3.d.test. 127.0.0.4") {
		t.Fatalf("status %+v", st)
	}
}

// TestObserveServerDown: a server that does not answer has not got it.
func TestObserveServerDown(t *testing.T) {
	srvs, port := servers(t, 2, "")
	addNext(t, srvs...)
	srvs[1].SetFault("_25._tcp.mx.d.test.", dnstest.FaultRefused)
	o := observer(resolver(t, srvs[0].Addr(), true), port)
	s := o.Observe(context.Background(), []string{"mx.d.test"}, nextSPKI)[0]
	if s.Everywhere() || s.Servers[1].Err == "" {
		t.Fatalf("seen %+v", s)
	}
}

// TestObserveNotValidated: a resolver that does not set AD never makes
// the record count, however many servers have it.
func TestObserveNotValidated(t *testing.T) {
	srvs, port := servers(t, 2, "")
	addNext(t, srvs...)
	o := observer(resolver(t, srvs[0].Addr(), false), port)
	s := o.Observe(context.Background(), []string{"mx.d.test"}, nextSPKI)[0]
	if s.Validated || s.Everywhere() || !strings.Contains(s.Resolver, "AD") {
		t.Fatalf("seen %+v", s)
	}
	if n, of := s.OnServers(); n != 2 || of != 2 {
		t.Fatalf("on %d of %d", n, of)
	}
}

// TestObserveNowhere: once removed from every server, the old record is
// gone (Finish's test); on one server still, it is not.
func TestObserveNowhere(t *testing.T) {
	srvs, port := servers(t, 2, "")
	o := observer(resolver(t, srvs[0].Addr(), true), port)
	if s := o.Observe(context.Background(), []string{"mx.d.test"}, curSPKI)[0]; s.Nowhere() {
		t.Fatalf("present, seen as gone: %+v", s)
	}
	srvs[0].Remove("_25._tcp.mx.d.test.", dns.TypeTLSA)
	if s := o.Observe(context.Background(), []string{"mx.d.test"}, curSPKI)[0]; s.Nowhere() {
		t.Fatalf("on one server still, seen as gone: %+v", s)
	}
	srvs[1].Remove("_25._tcp.mx.d.test.", dns.TypeTLSA)
	if s := o.Observe(context.Background(), []string{"mx.d.test"}, curSPKI)[0]; !s.Nowhere() {
		t.Fatalf("removed everywhere, not seen as gone: %+v", s)
	}
}

// TestPinnedNames: validated 3 1 1 records pin, no records do not, and a
// failed lookup pins (an unknown state never lets a key change).
func TestPinnedNames(t *testing.T) {
	srvs, port := servers(t, 1, "mx2 IN A 127.0.0.1\nbad IN A 127.0.0.1\n_25._tcp.* IN TLSA 3 1 1 "+curSPKI+"\n")
	srvs[0].SetFault("_25._tcp.bad.d.test.", dnstest.FaultServfail)
	o := observer(resolver(t, srvs[0].Addr(), true), port)
	pinned, why := o.PinnedNames(context.Background(), []string{"mx.d.test", "mx2.d.test", "bad.d.test", "*.d.test"})
	if strings.Join(pinned, " ") != "mx.d.test bad.d.test" || len(why) != 2 {
		t.Fatalf("pinned %q (%q)", pinned, why)
	}
}

func nkFor(names ...string) store.NextKey {
	return store.NextKey{SPKISHA256: nextSPKI, Names: names}
}

// TestPinnedSubmissionPort: a key pinned only at a submission port
// (_587._tcp, which the inventory records in PortTLSA and the planner
// keeps the key for) is pinned for the rollover too, and its next record
// is observed and printed at that owner.
func TestPinnedSubmissionPort(t *testing.T) {
	srvs, port := servers(t, 2, "smtp IN A 127.0.0.1\n_587._tcp.smtp IN TLSA 3 1 1 "+curSPKI+"\n_587._tcp.smtp IN TLSA 3 1 1 "+nextSPKI+"\n")
	o := observer(resolver(t, srvs[0].Addr(), true), port)
	pinned, why := o.PinnedNames(context.Background(), []string{"smtp.d.test"})
	if strings.Join(pinned, " ") != "_587._tcp.smtp.d.test" || len(why) != 1 || !strings.Contains(why[0], "_587._tcp.smtp.d.test") {
		t.Fatalf("pinned %q (%q), want the port 587 owner", pinned, why)
	}
	s := o.Observe(context.Background(), pinned, nextSPKI)[0]
	if !s.Validated || !s.Everywhere() {
		t.Fatalf("seen %+v: want validated on every server", s)
	}
	if srvs[1].QueryCount("_587._tcp.smtp.d.test.", dns.TypeTLSA) == 0 {
		t.Error("the authoritative server was not asked at the port 587 owner")
	}
	if got, want := Records(pinned, 60, nextSPKI)[0].String(), "_587._tcp.smtp.d.test. 60 IN TLSA 3 1 1 "+nextSPKI; got != want {
		t.Errorf("record %q, want %q", got, want)
	}
}
