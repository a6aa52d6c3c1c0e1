package acme

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The DNS-01 providers a hosting company plugs in most (lego's exec, which
// runs the admin's script, and httpreq, which calls the admin's HTTP
// endpoint), each against a real hook that publishes the TXT record in the
// test DNS server, which Pebble then validates.

// TestMain lets the test binary stand in for an exec provider's script:
// with CERTPLAN_TEST_EXEC_DNS set, it is run as "SCRIPT present|cleanup
// FQDN VALUE" (lego's default mode) and sends an RFC 2136 update to that
// server, as an admin's nsupdate script would.
func TestMain(m *testing.M) {
	if addr := os.Getenv("CERTPLAN_TEST_EXEC_DNS"); addr != "" {
		if err := execHook(addr, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "hook:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func execHook(addr string, args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("want present|cleanup FQDN VALUE, got %q", args)
	}
	if log := os.Getenv("CERTPLAN_TEST_EXEC_LOG"); log != "" {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		fmt.Fprintln(f, strings.Join(args, " "))
		f.Close()
	}
	if os.Getenv("CERTPLAN_TEST_EXEC_FAIL") == args[0] {
		fmt.Println("the panel refused the record: quota exceeded")
		return fmt.Errorf("%s refused", args[0])
	}
	return txtUpdate(addr, args[0] == "present", args[1], args[2])
}

// txtUpdate adds (or removes) the TXT record fqdn=value with an RFC 2136
// update to the test DNS server at addr.
func txtUpdate(addr string, add bool, fqdn, value string) error {
	rr, err := dns.NewRR(fmt.Sprintf("%s 60 IN TXT %q", dns.Fqdn(fqdn), value))
	if err != nil {
		return err
	}
	m := new(dns.Msg)
	m.SetUpdate("d.test.")
	if add {
		m.Insert([]dns.RR{rr})
	} else {
		m.Remove([]dns.RR{rr})
	}
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 5 * time.Second}).Exchange(m, addr)
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("update: %s", dns.RcodeToString[r.Rcode])
	}
	return nil
}

func TestObtainDNS01Exec(t *testing.T) {
	e := newEnv(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "hook.log")
	t.Setenv("EXEC_PATH", self)
	t.Setenv("EXEC_PROPAGATION_TIMEOUT", "10")
	t.Setenv("CERTPLAN_TEST_EXEC_DNS", e.dns.Addr())
	t.Setenv("CERTPLAN_TEST_EXEC_LOG", log)
	c := e.client(func(cfg *Config) {
		cfg.Challenge = ChallengeConfig{Type: DNS01, DNSProvider: "exec", Resolvers: []string{e.dns.Addr()}, PropagationTimeout: 10 * time.Second}
	})
	names := []string{"mail.d.test", "smtp.d.test"}
	res, err := e.obtain(c, Request{CertID: "c1", Names: names, Inventory: inventory(names...)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Issued, names) {
		t.Errorf("issued %v", res.Issued)
	}
	e.verify(res.Cert, names...)

	// The script was run once per name to present and once to clean up,
	// with the challenge's FQDN.
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Split(strings.TrimSpace(string(b)), "\n")
	count := map[string]int{}
	for _, c := range calls {
		f := strings.Fields(c)
		if len(f) != 3 {
			t.Fatalf("hook call %q", c)
		}
		count[f[0]+" "+f[1]]++
	}
	for _, n := range names {
		for _, op := range []string{"present", "cleanup"} {
			if k := op + " _acme-challenge." + n + "."; count[k] != 1 {
				t.Errorf("%q: %d calls; all calls: %q", k, count[k], calls)
			}
		}
	}
	// Cleaned up: no challenge record is left in the zone.
	for _, n := range names {
		if r := txtAt(t, e.dns.Addr(), "_acme-challenge."+n); len(r) != 0 {
			t.Errorf("%s: TXT left behind: %v", n, r)
		}
	}
}

// A script that fails to present: the name cannot be validated, the run
// fails naming the name and the script's failure, and nothing is stored.
func TestObtainDNS01ExecFails(t *testing.T) {
	e := newEnv(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("EXEC_PATH", self)
	t.Setenv("EXEC_PROPAGATION_TIMEOUT", "10")
	t.Setenv("CERTPLAN_TEST_EXEC_DNS", e.dns.Addr())
	t.Setenv("CERTPLAN_TEST_EXEC_FAIL", "present")
	c := e.client(func(cfg *Config) {
		cfg.Challenge = ChallengeConfig{Type: DNS01, DNSProvider: "exec", Resolvers: []string{e.dns.Addr()}, PropagationTimeout: 10 * time.Second}
	})
	names := []string{"mail.d.test"}
	// The caller's policy (apply's must-cover check) names the failed
	// name with its reason.
	check := func(ds []Dropped) error {
		if len(ds) > 0 {
			return errors.New(ds[0].Name + ": " + ds[0].Reason)
		}
		return nil
	}
	res, err := e.obtain(c, Request{CertID: "c1", Names: names, Check: check, Inventory: inventory(names...)})
	if err == nil {
		t.Fatalf("issued %v with a failing hook", res.Issued)
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"mail.d.test", "present _acme-challenge.mail.d.test.", "exit status 1", "the panel refused the record: quota exceeded"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q: want %q (the name, the call, the script's exit status and its own words)", err, want)
		}
	}
	if _, err := e.store.LoadCert("c1"); err == nil {
		t.Error("a certificate was stored")
	}
}

func TestObtainDNS01HTTPReq(t *testing.T) {
	e := newEnv(t)
	// The admin's endpoint: lego's httpreq protocol (POST /present and
	// /cleanup with {"fqdn", "value"}, basic auth), publishing in DNS.
	var mu sync.Mutex
	var calls []string
	mux := http.NewServeMux()
	for _, op := range []string{"present", "cleanup"} {
		mux.HandleFunc("POST /"+op, func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "certplan" || p != "s3cret" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			var msg struct{ FQDN, Value string }
			if err := json.NewDecoder(r.Body).Decode(&msg); err != nil || msg.FQDN == "" || msg.Value == "" {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			mu.Lock()
			calls = append(calls, op+" "+msg.FQDN)
			mu.Unlock()
			if err := txtUpdate(e.dns.Addr(), op == "present", msg.FQDN, msg.Value); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
			}
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("HTTPREQ_ENDPOINT", "http://"+ln.Addr().String())
	t.Setenv("HTTPREQ_USERNAME", "certplan")
	t.Setenv("HTTPREQ_PASSWORD", "s3cret")
	t.Setenv("HTTPREQ_PROPAGATION_TIMEOUT", "10")
	c := e.client(func(cfg *Config) {
		cfg.Challenge = ChallengeConfig{Type: DNS01, DNSProvider: "httpreq", Resolvers: []string{e.dns.Addr()}, PropagationTimeout: 10 * time.Second}
	})
	names := []string{"imap.d.test", "away.d.test"} // away points elsewhere: no matter for DNS-01
	res, err := e.obtain(c, Request{CertID: "c1", Names: names, Inventory: inventory(names...)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Issued, []string{"away.d.test", "imap.d.test"}) {
		t.Errorf("issued %v", res.Issued)
	}
	e.verify(res.Cert, names...)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(calls)
	want := []string{"cleanup _acme-challenge.away.d.test.", "cleanup _acme-challenge.imap.d.test.", "present _acme-challenge.away.d.test.", "present _acme-challenge.imap.d.test."}
	if !slices.Equal(calls, want) {
		t.Errorf("endpoint calls %q, want %q", calls, want)
	}
}

func txtAt(t *testing.T, addr, name string) []dns.RR {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	return r.Answer
}

func TestExecProviderErrors(t *testing.T) {
	t.Setenv("EXEC_PATH", "")
	if _, err := DNSProvider("exec"); err == nil || !strings.Contains(err.Error(), "EXEC_PATH is not set") {
		t.Errorf("unset: %v", err)
	}
	t.Setenv("EXEC_PATH", filepath.Join(t.TempDir(), "missing.sh"))
	if _, err := DNSProvider("exec"); err == nil || !strings.Contains(err.Error(), "missing.sh") {
		t.Errorf("missing: %v", err)
	}

	// A script that hangs is killed after EXEC_TIMEOUT; its output so far
	// is in the error.
	script := filepath.Join(t.TempDir(), "hang.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho calling the panel API\nsleep 30\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EXEC_PATH", script)
	t.Setenv("EXEC_TIMEOUT", "x")
	if _, err := DNSProvider("exec"); err == nil || !strings.Contains(err.Error(), "EXEC_TIMEOUT") {
		t.Errorf("bad timeout: %v", err)
	}
	t.Setenv("EXEC_TIMEOUT", "300ms")
	p, err := DNSProvider("exec")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = p.Present(context.Background(), "mail.d.test", "tok", "tok.key")
	if err == nil || !strings.Contains(err.Error(), "no result after 300ms") || !strings.Contains(err.Error(), "calling the panel API") {
		t.Errorf("hanging script: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("hanging script took %s", d)
	}
}

// EXEC_MODE=RAW passes the domain, token and key authorization, as lego's
// exec provider does; a failure names the domain.
func TestExecProviderRaw(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "raw.sh")
	log := filepath.Join(dir, "args")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+log+"\n[ \"$1\" = present ] || { echo cleanup refused; exit 2; }\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EXEC_PATH", script)
	t.Setenv("EXEC_MODE", "RAW")
	t.Setenv("EXEC_TIMEOUT", "")
	p, err := DNSProvider("exec")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Present(context.Background(), "mail.d.test", "tok", "tok.key"); err != nil {
		t.Fatal(err)
	}
	err = p.CleanUp(context.Background(), "mail.d.test", "tok", "tok.key")
	if err == nil || !strings.Contains(err.Error(), "raw.sh cleanup mail.d.test: exit status 2: cleanup refused") {
		t.Errorf("cleanup: %v", err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "present -- mail.d.test tok tok.key\ncleanup -- mail.d.test tok tok.key\n"; got != want {
		t.Errorf("script got %q, want %q", got, want)
	}
}
