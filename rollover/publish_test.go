package rollover

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// TestPublishAddRemove: the records an UPDATE adds are served by the
// primary, beside the current one, and a removal takes exactly them.
func TestPublishAddRemove(t *testing.T) {
	srvs, port := servers(t, 1, "")
	o := observer(resolver(t, srvs[0].Addr(), true), port)
	p := &Publisher{Server: srvs[0].Addr()}
	next := Records([]string{"mx.d.test"}, 300, nextSPKI)
	if err := p.Add(context.Background(), "d.test.", next); err != nil {
		t.Fatal(err)
	}
	if s := o.Observe(context.Background(), []string{"mx.d.test"}, nextSPKI)[0]; !s.Everywhere() {
		t.Fatalf("after add: %+v", s)
	}
	if s := o.Observe(context.Background(), []string{"mx.d.test"}, curSPKI)[0]; !s.Everywhere() {
		t.Fatalf("the current record went: %+v", s)
	}
	if err := p.Remove(context.Background(), "d.test.", Records([]string{"mx.d.test"}, 300, curSPKI)); err != nil {
		t.Fatal(err)
	}
	if s := o.Observe(context.Background(), []string{"mx.d.test"}, curSPKI)[0]; !s.Nowhere() {
		t.Fatalf("after remove: %+v", s)
	}
	if s := o.Observe(context.Background(), []string{"mx.d.test"}, nextSPKI)[0]; !s.Everywhere() {
		t.Fatalf("the next record went with the old one: %+v", s)
	}
}

// TestPublishTSIG: updates are signed with the key the DNSUPDATE_*
// variables give; a server that checks TSIG accepts them, and refuses
// them under another secret.
func TestPublishTSIG(t *testing.T) {
	const key, secret = "certplan.", "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []*dns.Msg
	srv := &dns.Server{Listener: ln, TsigSecret: map[string]string{key: secret},
		MsgAcceptFunc: func(dh dns.Header) dns.MsgAcceptAction { return dns.MsgAccept },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(req)
			if req.IsTsig() == nil || w.TsigStatus() != nil {
				m.Rcode = dns.RcodeNotAuth
			} else {
				mu.Lock()
				got = append(got, req)
				mu.Unlock()
				m.SetTsig(key, dns.HmacSHA256, 300, int64(req.IsTsig().TimeSigned))
			}
			w.WriteMsg(m)
		})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	env := map[string]string{"DNSUPDATE_NAMESERVER": ln.Addr().String(), "DNSUPDATE_TSIG_KEY": key,
		"DNSUPDATE_TSIG_SECRET": secret, "DNSUPDATE_TSIG_ALGORITHM": dns.HmacSHA256}
	p, err := PublisherFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Add(context.Background(), "d.test", Records([]string{"mx.d.test"}, 300, nextSPKI)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != 1 || len(got[0].Ns) != 1 || got[0].Ns[0].String() != "_25._tcp.mx.d.test.\t300\tIN\tTLSA\t3 1 1 "+nextSPKI {
		t.Fatalf("update: %v", got)
	}
	mu.Unlock()
	p.TSIGSecret = "b3RoZXItc2VjcmV0"
	if err := p.Add(context.Background(), "d.test", Records([]string{"mx.d.test"}, 300, nextSPKI)); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
}

func TestPublisherFromEnv(t *testing.T) {
	for _, env := range []map[string]string{
		{},
		{"DNSUPDATE_NAMESERVER": "127.0.0.1", "DNSUPDATE_TSIG_KEY": "k."},
		{"DNSUPDATE_NAMESERVER": "127.0.0.1", "DNSUPDATE_TSIG_FILE": "/etc/k"},
	} {
		if _, err := PublisherFromEnv(func(k string) string { return env[k] }); err == nil {
			t.Errorf("%v: no error", env)
		}
	}
	p, err := PublisherFromEnv(func(k string) string { return map[string]string{"DNSUPDATE_NAMESERVER": "127.0.0.1"}[k] })
	if err != nil || p.Server != "127.0.0.1:53" {
		t.Fatalf("%+v, %v", p, err)
	}
}
