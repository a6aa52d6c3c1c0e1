package realmail

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA issues every certificate of this package's tests.
var testCA = sync.OnceValue(func() *CA {
	ca, err := NewCA("realmail test CA")
	if err != nil {
		panic(err)
	}
	return ca
})

func issue(t testing.TB, names ...string) Cert {
	t.Helper()
	c, err := testCA().Issue(names...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantServed fails t unless the server presents want's leaf (within a few
// seconds: right after a reload an old process may answer).
func wantServed(t *testing.T, ip string, port int, starttls, sni string, want Cert) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitServed(ctx, ip, port, starttls, sni, want.Leaf); err != nil {
		t.Errorf("%s %s:%d sni %q: %v", starttlsName(starttls), ip, port, sni, err)
	}
}

func starttlsName(s string) string {
	if s == ImplicitTLS {
		return "implicit TLS"
	}
	return "STARTTLS " + s
}

func TestPostfixDefaultAndSNI(t *testing.T) {
	t.Parallel()
	def := issue(t, "server.main-domain.test")
	d2 := issue(t, "mail.domain2.test", "smtp.domain2.test")
	d3 := issue(t, "*.domain3.test")
	for _, mapType := range []string{"texthash", "hash"} {
		t.Run(mapType, func(t *testing.T) {
			t.Parallel()
			p := StartPostfix(t, PostfixOptions{
				Submission: true,
				SMTPS:      true,
				Default:    def,
				SNI: map[string]Cert{
					"mail.domain2.test": d2,
					"smtp.domain2.test": d2,
					".domain3.test":     d3, // every name under domain3.test
				},
				SNIMapType: mapType,
			})
			cases := []struct {
				sni  string
				want Cert
			}{
				{"", def},
				{"mail.domain2.test", d2},
				{"smtp.domain2.test", d2},
				{"mail.domain3.test", d3},
				{"unknown.test", def}, // no entry: the default chain
			}
			ports := []struct {
				port     int
				starttls string
			}{
				{p.SMTPPort, StartSMTP},
				{p.SubmissionPort, StartSMTP},
				{p.SMTPSPort, ImplicitTLS},
			}
			for _, pt := range ports {
				for _, c := range cases {
					wantServed(t, p.IP, pt.port, pt.starttls, c.sni, c.want)
				}
			}
			if t.Failed() {
				t.Logf("maillog:\n%s", p.Log())
			}
		})
	}
}

func TestPostfixReplaceAndReload(t *testing.T) {
	t.Parallel()
	a, b := issue(t, "server.main-domain.test"), issue(t, "server.main-domain.test")
	sniA, sniB := issue(t, "mail.domain2.test"), issue(t, "mail.domain2.test", "mail.domain4.test")
	p := StartPostfix(t, PostfixOptions{IP: "127.0.0.3", Default: a,
		SNI: map[string]Cert{"mail.domain2.test": sniA}, SNIMapType: "hash"})
	wantServed(t, p.IP, p.SMTPPort, StartSMTP, "", a)
	wantServed(t, p.IP, p.SMTPPort, StartSMTP, "mail.domain2.test", sniA)

	ctx := context.Background()
	if err := p.SetDefault(ctx, b); err != nil {
		t.Fatal(err)
	}
	wantServed(t, p.IP, p.SMTPPort, StartSMTP, "", b)
	if err := p.SetSNI(ctx, map[string]Cert{"mail.domain2.test": sniB, "mail.domain4.test": sniB}); err != nil {
		t.Fatal(err)
	}
	wantServed(t, p.IP, p.SMTPPort, StartSMTP, "mail.domain2.test", sniB)
	wantServed(t, p.IP, p.SMTPPort, StartSMTP, "mail.domain4.test", sniB)
	wantServed(t, p.IP, p.SMTPPort, StartSMTP, "", b)

	// A main.cf change through postconf, then reload: the default chain
	// named by smtpd_tls_chain_files is what is served.
	other := filepath.Join(p.Dir, "certs", "other.pem")
	if err := os.WriteFile(other, a.CombinedPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Postconf(ctx, map[string]string{"smtpd_tls_chain_files": other}); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantServed(t, p.IP, p.SMTPPort, StartSMTP, "", a)
}

func TestDovecotDefaultAndSNI(t *testing.T) {
	t.Parallel()
	def := issue(t, "server.main-domain.test")
	d2 := issue(t, "mail.domain2.test", "imap.domain2.test")
	d3 := issue(t, "*.domain3.test")
	d := StartDovecot(t, DovecotOptions{
		POP3:    true,
		Default: def,
		SNI: map[string]Cert{
			`"mail.domain2.test imap.domain2.test"`: d2, // one block, two names
			"*.domain3.test":                        d3,
		},
	})
	cases := []struct {
		sni  string
		want Cert
	}{
		{"", def},
		{"mail.domain2.test", d2},
		{"imap.domain2.test", d2},
		{"mail.domain3.test", d3},
		{"unknown.test", def},
	}
	ports := []struct {
		port     int
		starttls string
	}{
		{d.IMAPPort, StartIMAP},
		{d.IMAPSPort, ImplicitTLS},
		{d.POP3Port, StartPOP3},
		{d.POP3SPort, ImplicitTLS},
	}
	for _, pt := range ports {
		for _, c := range cases {
			wantServed(t, d.IP, pt.port, pt.starttls, c.sni, c.want)
		}
	}
	if t.Failed() {
		t.Logf("dovecot log:\n%s", d.Log())
	}
}

func TestDovecotReplaceAndReload(t *testing.T) {
	t.Parallel()
	a, b := issue(t, "server.main-domain.test"), issue(t, "server.main-domain.test")
	sniA, sniB := issue(t, "mail.domain2.test"), issue(t, "mail.domain2.test")
	d := StartDovecot(t, DovecotOptions{IP: "127.0.0.3", Default: a, SNI: map[string]Cert{"mail.domain2.test": sniA}})
	wantServed(t, d.IP, d.IMAPSPort, ImplicitTLS, "", a)
	wantServed(t, d.IP, d.IMAPSPort, ImplicitTLS, "mail.domain2.test", sniA)
	ctx := context.Background()
	if err := d.SetDefault(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := d.SetSNI(ctx, map[string]Cert{"mail.domain2.test": sniB}); err != nil {
		t.Fatal(err)
	}
	for _, port := range []struct {
		port     int
		starttls string
	}{{d.IMAPSPort, ImplicitTLS}, {d.IMAPPort, StartIMAP}} {
		wantServed(t, d.IP, port.port, port.starttls, "", b)
		wantServed(t, d.IP, port.port, port.starttls, "mail.domain2.test", sniB)
	}
}

// Several instances at once on one IP: distinct ports, each serving its own
// certificate, each stopped by its cleanup.
func TestParallelInstances(t *testing.T) {
	t.Parallel()
	RequirePostfix(t)
	RequireDovecot(t)
	const n = 3
	certs := make([]Cert, n)
	pfs := make([]*Postfix, n)
	dvs := make([]*Dovecot, n)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		certs[i] = issue(t, fmt.Sprintf("server%d.main-domain.test", i))
		wg.Add(2)
		go func() {
			defer wg.Done()
			p, err := NewPostfix(context.Background(), PostfixOptions{Default: certs[i]})
			pfs[i] = p
			errs <- err
		}()
		go func() {
			defer wg.Done()
			d, err := NewDovecot(context.Background(), DovecotOptions{Default: certs[i]})
			dvs[i] = d
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	t.Cleanup(func() {
		for i := range n {
			if pfs[i] != nil {
				pfs[i].Stop()
			}
			if dvs[i] != nil {
				dvs[i].Stop()
			}
		}
	})
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int]bool{}
	for i := range n {
		for _, port := range append(pfs[i].Ports(), dvs[i].Ports()...) {
			if seen[port] {
				t.Errorf("port %d used twice", port)
			}
			seen[port] = true
		}
		wantServed(t, pfs[i].IP, pfs[i].SMTPPort, StartSMTP, "", certs[i])
		wantServed(t, dvs[i].IP, dvs[i].IMAPSPort, ImplicitTLS, "", certs[i])
	}
}

// Stop ends every process of the instance and removes its directory; a
// second Stop is harmless.
func TestStop(t *testing.T) {
	t.Parallel()
	RequirePostfix(t)
	RequireDovecot(t)
	cert := issue(t, "server.main-domain.test")
	ctx := context.Background()
	p, err := NewPostfix(ctx, PostfixOptions{Default: cert})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDovecot(ctx, DovecotOptions{Default: cert})
	if err != nil {
		p.Stop()
		t.Fatal(err)
	}
	pfPid := readPid(filepath.Join(p.Dir, "queue", "pid", "master.pid"))
	dvPid := readPid(filepath.Join(d.Dir, "run", "master.pid"))
	if pfPid == 0 || dvPid == 0 {
		t.Fatalf("master pids: postfix %d, dovecot %d", pfPid, dvPid)
	}
	for _, stop := range []func() error{p.Stop, d.Stop, p.Stop, d.Stop} {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}
	for _, pid := range []int{pfPid, dvPid} {
		if processAlive(pid) {
			t.Errorf("master %d still running after Stop", pid)
		}
	}
	for _, dir := range []string{p.Dir, d.Dir} {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after Stop (%v)", dir, err)
		}
	}
	if err := waitListening(p.IP, p.Ports(), 200*time.Millisecond); err == nil {
		t.Errorf("postfix ports %v still accept connections", p.Ports())
	}
}

// An instance whose test binary died (no cleanup ran) is stopped and removed
// by the next start.
func TestSweepLeftovers(t *testing.T) {
	t.Parallel()
	RequirePostfix(t)
	RequireDovecot(t)
	cert := issue(t, "server.main-domain.test")
	ctx := context.Background()
	p, err := NewPostfix(ctx, PostfixOptions{Default: cert})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	d, err := NewDovecot(ctx, DovecotOptions{Default: cert})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	// A pid that certainly belonged to a process that is gone.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	deadPid := []byte(strconv.Itoa(gone.Process.Pid) + "\n")
	for _, dir := range []string{p.Dir, d.Dir} {
		if err := os.WriteFile(filepath.Join(dir, "owner"), deadPid, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pfPid := readPid(filepath.Join(p.Dir, "queue", "pid", "master.pid"))
	dvPid := readPid(filepath.Join(d.Dir, "run", "master.pid"))
	sweep()
	for _, pid := range []int{pfPid, dvPid} {
		if processAlive(pid) {
			t.Errorf("leftover master %d still running after sweep", pid)
		}
	}
	for _, dir := range []string{p.Dir, d.Dir} {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover %s still there after sweep (%v)", dir, err)
		}
	}
}

// fakeTB records what require does with a missing prerequisite.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                         {}
func (f *fakeTB) Skipf(format string, a ...any)   { f.skipped = fmt.Sprintf(format, a...) }
func (f *fakeTB) Fatalf(format string, a ...any)  { f.failed = fmt.Sprintf(format, a...) }
func (f *fakeTB) Errorf(format string, a ...any)  { f.failed = fmt.Sprintf(format, a...) }
func (f *fakeTB) Logf(format string, args ...any) {}

func TestRequireSkipsOrFails(t *testing.T) {
	missing := &MissingError{Server: "postfix", Missing: []string{"command postmap (package postfix)"}}
	for _, tt := range []struct {
		env        string
		wantSkip   bool
		wantFailed bool
	}{
		{"", true, false},
		{"0", true, false},
		{"1", false, true},
	} {
		t.Run("env="+tt.env, func(t *testing.T) {
			t.Setenv(RequireEnv, tt.env)
			f := &fakeTB{}
			require(f, missing)
			if (f.skipped != "") != tt.wantSkip || (f.failed != "") != tt.wantFailed {
				t.Fatalf("skipped %q, failed %q; want skip %v, fail %v", f.skipped, f.failed, tt.wantSkip, tt.wantFailed)
			}
			msg := f.skipped + f.failed
			if want := "postfix integration: missing command postmap (package postfix)"; !strings.Contains(msg, want) {
				t.Errorf("message %q does not say %q", msg, want)
			}
			f = &fakeTB{}
			require(f, nil)
			if f.skipped != "" || f.failed != "" {
				t.Errorf("nothing missing: skipped %q, failed %q", f.skipped, f.failed)
			}
		})
	}
}

// The chain openssl reports is the one configured: leaf, then the CA.
func TestServedChain(t *testing.T) {
	t.Parallel()
	cert := issue(t, "server.main-domain.test")
	d := StartDovecot(t, DovecotOptions{Default: cert})
	chain, err := ServedChain(context.Background(), d.IP, d.IMAPSPort, ImplicitTLS, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []*x509.Certificate{cert.Leaf, testCA().Cert}
	if len(chain) != len(want) {
		t.Fatalf("got %d certificates, want %d", len(chain), len(want))
	}
	for i := range want {
		if !chain[i].Equal(want[i]) {
			t.Errorf("chain[%d] = %q, want %q", i, chain[i].Subject, want[i].Subject)
		}
	}
	if got, want := SPKISHA256(chain[0]), SPKISHA256(cert.Leaf); got != want {
		t.Errorf("SPKI %s, want %s", got, want)
	}
}
