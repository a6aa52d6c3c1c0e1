package store

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certplan/certplan/model"
)

// testFiles makes a self-signed certificate and its key.
func testFiles(t *testing.T, serial int64, names ...string) Files {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	return Files{
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}),
		CertPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		ChainPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
}

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Lock(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSaveLoadCert(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	f := testFiles(t, 10, "mail.d.test", "smtp.d.test")
	c, err := s.SaveCert("default-127.0.0.2", f, Meta{Names: []string{"mail.d.test", "smtp.d.test"}, PlanID: "p1", ARICertID: "x.y"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Meta.Serial != "a" || c.Meta.Version != "v000001" || c.Meta.PlanID != "p1" || c.Meta.SPKISHA256 == "" {
		t.Errorf("meta %+v", c.Meta)
	}
	cd := filepath.Join(dir, "certs", "default-127.0.0.2")
	for file, mode := range map[string]os.FileMode{FileKey: 0o600, FileCombined: 0o600, FileCert: 0o644, FileFullchain: 0o644, FileChain: 0o644, FileMeta: 0o644} {
		fi, err := os.Stat(filepath.Join(cd, "current", file))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", file, fi.Mode().Perm(), mode)
		}
	}
	for _, d := range []string{filepath.Join(dir, "certs"), cd, filepath.Join(cd, "v000001")} {
		if fi, _ := os.Stat(d); fi.Mode().Perm() != 0o700 {
			t.Errorf("%s mode %v, want 0700", d, fi.Mode().Perm())
		}
	}
	combined, _ := os.ReadFile(c.Path(FileCombined))
	if !strings.HasPrefix(string(combined), "-----BEGIN PRIVATE KEY-----") || !strings.HasSuffix(string(combined), string(f.CertPEM)+string(f.ChainPEM)) {
		t.Errorf("combined.pem is not key then chain:\n%s", combined)
	}

	// Three more versions: current and the previous one are kept.
	for i := int64(11); i <= 13; i++ {
		if _, err := s.SaveCert("default-127.0.0.2", testFiles(t, i, "mail.d.test"), Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	vs, _ := s.versions("certs/default-127.0.0.2")
	if strings.Join(vs, ",") != "v000003,v000004" {
		t.Errorf("versions %v, want v000003,v000004", vs)
	}
	c, err = s.LoadCert("default-127.0.0.2")
	if err != nil || c.Meta.Serial != "d" {
		t.Fatalf("load: %v %+v", err, c)
	}
	ids, _ := s.ListCerts()
	if len(ids) != 1 || ids[0] != "default-127.0.0.2" {
		t.Errorf("ids %v", ids)
	}
	if _, err := s.LoadCert("other"); !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
	to, err := s.RetireCert("default-127.0.0.2", time.Unix(100, 0))
	if err != nil || filepath.Base(to) != "default-127.0.0.2-100" {
		t.Fatalf("retire: %q %v", to, err)
	}
	if ids, _ := s.ListCerts(); len(ids) != 0 {
		t.Errorf("after retire: %v", ids)
	}
	if _, err := s.LoadCert("default-127.0.0.2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after retire: %v", err)
	}
}

func TestSaveRejectsMismatch(t *testing.T) {
	s := open(t, t.TempDir())
	a, b := testFiles(t, 1, "a.test"), testFiles(t, 2, "b.test")
	a.KeyPEM = b.KeyPEM
	if _, err := s.SaveCert("c", a, Meta{}); err == nil {
		t.Fatal("saved a key that does not match the certificate")
	}
	if _, err := s.SaveCert("../x", b, Meta{}); err == nil {
		t.Fatal("accepted a path as an id")
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir)
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: got %v, want ErrLocked", err)
	}
	if err := b.SavePlan(&model.Plan{ID: "x"}); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("write without lock: got %v, want ErrNotLocked", err)
	}
	a.Unlock()
	if err := b.Lock(); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	b.Close()

	// Another process, while this one holds the lock (a stays in use, so
	// that no finalizer closes its descriptor and drops the lock early).
	a = open(t, dir)
	defer a.Unlock()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "STORE_HELPER=lock", "STORE_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "locked") {
		t.Fatalf("helper: %v\n%s", err, out)
	}
}

// TestCrashBetweenKeyAndCert kills a process writing a new version after
// the key and before the certificate, then checks the previous version is
// intact and the next write completes.
func TestCrashBetweenKeyAndCert(t *testing.T) {
	for _, point := range []string{"after-" + FileKey, "after-" + FileCombined, "before-switch"} {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			first, err := s.SaveCert("c", testFiles(t, 1, "mail.d.test"), Meta{})
			if err != nil {
				t.Fatal(err)
			}
			s.Unlock()

			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), "STORE_HELPER=crash", "STORE_DIR="+dir, "STORE_FAULT="+point)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("helper was not killed: %v\n%s", err, out)
			}
			// The helper got as far as a new version directory.
			if _, err := os.Stat(filepath.Join(dir, "certs", "c", "v000002", FileKey)); err != nil {
				t.Fatalf("the helper wrote no new key: %v", err)
			}

			if err := s.Lock(); err != nil {
				t.Fatal(err)
			}
			c, err := s.LoadCert("c")
			if err != nil {
				t.Fatalf("after the crash: %v", err)
			}
			if c.Meta.Serial != first.Meta.Serial || c.Meta.Version != "v000001" {
				t.Errorf("current is %+v, want the first certificate", c.Meta)
			}
			// The next run completes cleanly.
			c, err = s.SaveCert("c", testFiles(t, 3, "mail.d.test"), Meta{})
			if err != nil {
				t.Fatal(err)
			}
			if c.Meta.Serial != "3" || c.Meta.Version != "v000002" {
				t.Errorf("after redo: %+v", c.Meta)
			}
			vs, _ := s.versions("certs/c")
			if strings.Join(vs, ",") != "v000001,v000002" {
				t.Errorf("versions %v", vs)
			}
		})
	}
}

// TestHelperProcess is run as a subprocess by other tests.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv("STORE_DIR")
	switch os.Getenv("STORE_HELPER") {
	case "lock":
		s, _ := Open(dir)
		err := s.Lock()
		if errors.Is(err, ErrLocked) {
			os.Stdout.WriteString("locked\n")
			os.Exit(0)
		}
		os.Stdout.WriteString("not locked: " + func() string {
			if err != nil {
				return err.Error()
			}
			return "nil"
		}() + "\n")
		os.Exit(1)
	case "crash":
		s, _ := Open(dir)
		if err := s.Lock(); err != nil {
			os.Exit(3)
		}
		point := os.Getenv("STORE_FAULT")
		s.fault = func(p string) {
			if p == point {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				time.Sleep(time.Minute)
			}
		}
		s.SaveCert("c", testFiles(t, 2, "mail.d.test"), Meta{})
		os.Exit(4)
	}
}

func TestRenewalNextKeyAccountPlan(t *testing.T) {
	s := open(t, t.TempDir())
	now := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	if st, err := s.LoadRenewal("c"); err != nil || st.Failures != 0 {
		t.Fatalf("empty state: %v %+v", err, st)
	}
	want := RenewalState{LastAttempt: now, Failures: 2, BackoffUntil: now.Add(10 * time.Minute), LastError: "x"}
	if err := s.SaveRenewal("c", want); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadRenewal("c"); err != nil || got != want {
		t.Errorf("renewal %+v %v, want %+v", got, err, want)
	}

	f := testFiles(t, 1, "a.test")
	nk := &NextKey{KeyPEM: f.KeyPEM, KeyType: "ec256", SPKISHA256: "ab", CreatedAt: now,
		Names: []string{"mx.a.test"}, FirstSeenAt: now.Add(time.Minute), TTL: 300}
	if err := s.SaveNextKey("c", nk); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadNextKey("c")
	if err != nil || string(got.KeyPEM) != string(f.KeyPEM) || got.SPKISHA256 != "ab" ||
		!got.FirstSeenAt.Equal(nk.FirstSeenAt) || got.TTL != 300 || len(got.Names) != 1 {
		t.Fatalf("next key %+v %v", got, err)
	}
	if fi, _ := os.Stat(filepath.Join(s.Dir(), "certs", "c", "next", FileKey)); fi.Mode().Perm() != 0o600 {
		t.Errorf("next key mode %v", fi.Mode().Perm())
	}
	s.DropNextKey("c")
	if _, err := s.LoadNextKey("c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after drop: %v", err)
	}

	if _, err := s.LoadRolledKey("c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("rolled key before any: %v", err)
	}
	rk := &RolledKey{OldSPKISHA256: "ab", NewSPKISHA256: "cd", Names: []string{"mx.a.test"}, TTL: 300, SwitchedAt: now}
	if err := s.SaveRolledKey("c", rk); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadRolledKey("c"); err != nil || got.OldSPKISHA256 != "ab" || got.NewSPKISHA256 != "cd" || !got.SwitchedAt.Equal(now) {
		t.Errorf("rolled key %+v %v", got, err)
	}
	if err := s.DropRolledKey("c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadRolledKey("c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("rolled key after drop: %v", err)
	}
	if err := s.DropRolledKey("c"); err != nil {
		t.Errorf("dropping it twice: %v", err)
	}

	a := &Account{DirectoryURL: "https://127.0.0.1:14000/dir", Email: "a@b.test", URI: "https://127.0.0.1:14000/my-account/1", KeyPEM: f.KeyPEM}
	if err := s.SaveAccount(a); err != nil {
		t.Fatal(err)
	}
	ga, err := s.LoadAccount(a.DirectoryURL)
	if err != nil || ga.URI != a.URI || string(ga.KeyPEM) != string(a.KeyPEM) {
		t.Fatalf("account %+v %v", ga, err)
	}
	if fi, _ := os.Stat(filepath.Join(s.Dir(), "accounts", "127.0.0.1_14000_dir", "key.pem")); fi == nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("account key not 0600 at the expected path")
	}
	if _, err := s.LoadAccount("https://other.test/dir"); !errors.Is(err, ErrNotFound) {
		t.Errorf("other CA: %v", err)
	}

	if _, err := s.LoadPlan(); !errors.Is(err, ErrNotFound) {
		t.Errorf("plan: %v", err)
	}
	if err := s.SavePlan(&model.Plan{ID: "p1"}); err != nil {
		t.Fatal(err)
	}
	if p, err := s.LoadPlan(); err != nil || p.ID != "p1" {
		t.Errorf("plan %+v %v", p, err)
	}
}
