package acme

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const nobody = 65534

// validToken is a token as a CA makes it: 32 random bytes, base64url.
const validToken = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the tree belongs to another user (nobody)")
	}
}

// customerTree makes base/docroot owned by nobody, as a customer's
// document root is, and base/secret: root's, 0700, outside the docroot.
func customerTree(t *testing.T) (docroot, secret string) {
	t.Helper()
	base := t.TempDir()
	docroot, secret = filepath.Join(base, "docroot"), filepath.Join(base, "secret")
	for _, d := range []string{docroot, secret} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(docroot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(docroot, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	return docroot, secret
}

// asNobody makes a directory or link as the customer would.
func asNobody(t *testing.T, path string, link string) {
	t.Helper()
	var err error
	if link != "" {
		err = os.Symlink(link, path)
	} else {
		err = os.Mkdir(path, 0o755)
	}
	if err == nil {
		err = os.Lchown(path, nobody, nobody)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func newWebroot(t *testing.T, cc ChallengeConfig) solver {
	t.Helper()
	cc.Type = HTTP01
	s, err := newSolver(context.Background(), cc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tree lists every path under dir with its mode, owner and content, to
// show that a refused write changed nothing.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := p + " " + fi.Mode().String() + " " + itoa(st.Uid)
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		}
		out = append(out, line)
		return nil
	})
	return out
}

// TestWebrootRefusesLinks: a customer's link on the challenge path, to a
// root-only directory outside the docroot or to one inside it, is refused
// with an error naming the docroot and the link, and nothing is written.
func TestWebrootRefusesLinks(t *testing.T) {
	needRoot(t)
	for _, tt := range []struct {
		name string
		make func(t *testing.T, docroot, secret string) (link string)
	}{
		{"well-known to outside", func(t *testing.T, docroot, secret string) string {
			asNobody(t, filepath.Join(docroot, ".well-known"), secret)
			return ".well-known"
		}},
		{"acme-challenge to outside", func(t *testing.T, docroot, secret string) string {
			asNobody(t, filepath.Join(docroot, ".well-known"), "")
			asNobody(t, filepath.Join(docroot, ".well-known", "acme-challenge"), secret)
			return ".well-known/acme-challenge"
		}},
		{"acme-challenge to outside, relative", func(t *testing.T, docroot, secret string) string {
			asNobody(t, filepath.Join(docroot, ".well-known"), "")
			asNobody(t, filepath.Join(docroot, ".well-known", "acme-challenge"), "../../secret")
			return ".well-known/acme-challenge"
		}},
		{"well-known inside the docroot", func(t *testing.T, docroot, secret string) string {
			asNobody(t, filepath.Join(docroot, "elsewhere"), "")
			asNobody(t, filepath.Join(docroot, ".well-known"), "elsewhere")
			return ".well-known"
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			docroot, secret := customerTree(t)
			link := tt.make(t, docroot, secret)
			before := tree(t, filepath.Dir(docroot))
			s := newWebroot(t, ChallengeConfig{Webroot: docroot})
			err := s.present(context.Background(), "mail.d.test", validToken, validToken+".ka")
			if err == nil {
				s.cleanup(context.Background(), "mail.d.test", validToken, "")
				t.Fatal("wrote through a link")
			}
			for _, want := range []string{docroot, link, "symbolic link"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			s.cleanup(context.Background(), "mail.d.test", validToken, "")
			if after := tree(t, filepath.Dir(docroot)); !slices.Equal(before, after) {
				t.Errorf("the tree changed:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// TestWebrootDocrootItself: the docroot path may pass through a link only
// root made in a directory only root can write; the customer's own link
// (public_html -> /somewhere) is refused, and so is a docroot owned by an
// account other than root or the domain's.
func TestWebrootDocrootItself(t *testing.T) {
	needRoot(t)
	docroot, secret := customerTree(t)
	home := filepath.Join(filepath.Dir(docroot), "home")
	asNobody(t, home, "")
	asNobody(t, filepath.Join(home, "public_html"), secret)
	s := newWebroot(t, ChallengeConfig{Webroot: filepath.Join(home, "public_html")})
	err := s.present(context.Background(), "mail.d.test", validToken, "x")
	if err == nil || !strings.Contains(err.Error(), "public_html is a symbolic link") {
		t.Errorf("a customer's link as the docroot: got %v", err)
	}
	if ents, _ := os.ReadDir(secret); len(ents) != 0 {
		t.Errorf("written to the link's target: %v", ents)
	}

	// root's link in a root-only directory is the admin's: followed.
	adminDir := filepath.Join(filepath.Dir(docroot), "admin")
	if err := os.Mkdir(adminDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(docroot, filepath.Join(adminDir, "www")); err != nil {
		t.Fatal(err)
	}
	s = newWebroot(t, ChallengeConfig{Webroot: filepath.Join(adminDir, "www")})
	if err := s.present(context.Background(), "mail.d.test", validToken, "x"); err != nil {
		t.Fatalf("through root's link: %v", err)
	}
	if _, err := os.Stat(filepath.Join(docroot, ".well-known/acme-challenge", validToken)); err != nil {
		t.Error(err)
	}
	s.cleanup(context.Background(), "mail.d.test", validToken, "")

	// The owner, where the domain source knows it.
	for _, tt := range []struct {
		owners  map[string]uint32
		wantErr string
	}{
		{map[string]uint32{"d.test": 1000}, "owned by uid 65534, not root nor uid 1000 (the account of d.test)"},
		{map[string]uint32{"d.test": nobody}, ""},
		{map[string]uint32{"mail.d.test": nobody, "d.test": 1000}, ""},
		{nil, ""},
	} {
		s = newWebroot(t, ChallengeConfig{Webroot: docroot, WebrootOwners: tt.owners})
		err := s.present(context.Background(), "mail.d.test", validToken, "x")
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("owners %v: got %v, want %q", tt.owners, err, tt.wantErr)
		}
		s.cleanup(context.Background(), "mail.d.test", validToken, "")
	}
	// Two domains on one docroot: the second is checked too, though the
	// first has the directory open already.
	s = newWebroot(t, ChallengeConfig{WebrootMap: map[string]string{"a.test": docroot, "b.test": docroot},
		WebrootOwners: map[string]uint32{"a.test": nobody, "b.test": 1000}})
	if err := s.present(context.Background(), "mail.a.test", validToken, "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.present(context.Background(), "mail.b.test", "B"+validToken[1:], "x"); err == nil || !strings.Contains(err.Error(), "(the account of b.test)") {
		t.Errorf("b.test on a.test's docroot: got %v", err)
	}
	s.cleanup(context.Background(), "mail.a.test", validToken, "")
	if ents, _ := os.ReadDir(docroot); len(ents) != 0 {
		t.Errorf("left in the docroot: %v", ents)
	}
}

// TestWebrootCreatesOnlyWhatIsMissing: an existing .well-known (the
// customer's, 0750) is used as it is, acme-challenge is made 0755 and the
// token 0644, and cleanup removes those two only.
func TestWebrootCreatesOnlyWhatIsMissing(t *testing.T) {
	needRoot(t)
	docroot, _ := customerTree(t)
	wk := filepath.Join(docroot, ".well-known")
	asNobody(t, wk, "")
	if err := os.Chmod(wk, 0o750); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o077) // cron's umask may be strict; the web server must read
	defer syscall.Umask(old)
	s := newWebroot(t, ChallengeConfig{WebrootMap: map[string]string{"d.test": docroot}})
	tokens := []string{validToken, strings.Repeat("A", 22)}
	for _, tok := range tokens {
		if err := s.present(context.Background(), "mail.d.test", tok, tok+".ka"); err != nil {
			t.Fatal(err)
		}
	}
	for p, want := range map[string]string{
		wk:                                   "drwxr-x--- 65534",
		wk + "/acme-challenge":               "drwxr-xr-x 0",
		wk + "/acme-challenge/" + validToken: "-rw-r--r-- 0",
	} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().String() + " " + itoa(fi.Sys().(*syscall.Stat_t).Uid); got != want {
			t.Errorf("%s: %s, want %s", p, got, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(wk, "acme-challenge", validToken)); string(b) != validToken+".ka" {
		t.Errorf("token file %q", b)
	}
	for _, tok := range tokens {
		s.cleanup(context.Background(), "mail.d.test", tok, "")
	}
	if ents, err := os.ReadDir(wk); err != nil || len(ents) != 0 {
		t.Errorf(".well-known after cleanup: %v %v, want it empty and kept", ents, err)
	}
	if fi, _ := os.Stat(wk); fi.Mode().Perm() != 0o750 {
		t.Errorf(".well-known is %v now", fi.Mode())
	}
}

func itoa(u uint32) string { return strconv.FormatUint(uint64(u), 10) }

// TestTokenIsData: a token is base64url of at least 128 bits (RFC 8555
// section 8.3); anything else is refused before it names a file, by the
// webroot and by the built-in listener.
func TestTokenIsData(t *testing.T) {
	base := t.TempDir()
	docroot := filepath.Join(base, "a", "b", "docroot")
	if err := os.MkdirAll(docroot, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(base, "x"), filepath.Join(base, "a", "x"), filepath.Join(docroot, "x")} {
		if err := os.WriteFile(p, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := tree(t, base)
	web := newWebroot(t, ChallengeConfig{Webroot: docroot})
	listener := newWebroot(t, ChallengeConfig{HTTPListen: "127.0.0.2:0"})
	// dns-01 through a RAW exec script, which gets the token as an argument.
	script, args := filepath.Join(t.TempDir(), "raw.sh"), filepath.Join(t.TempDir(), "args")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+args+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EXEC_PATH", script)
	t.Setenv("EXEC_MODE", "RAW")
	dns, err := newSolver(context.Background(), ChallengeConfig{Type: DNS01, DNSProvider: "exec", SkipPropagationCheck: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"../../x", "/../../x", "../../../x", "../../../../x", "short", strings.Repeat("A", 21), "AAAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAA/x", "AAAAAAAAAAAAAAAAAAAAAA.x", ""} {
		for _, s := range []solver{web, listener, dns} {
			err := s.present(context.Background(), "mail.d.test", tok, "ka")
			if err == nil || !strings.Contains(err.Error(), "not an ACME token") {
				t.Errorf("%T: token %q: got %v, want it refused", s, tok, err)
			}
			s.cleanup(context.Background(), "mail.d.test", tok, "ka")
		}
	}
	if after := tree(t, base); !slices.Equal(before, after) {
		t.Errorf("the tree changed:\nbefore %q\nafter  %q", before, after)
	}
	if b, err := os.ReadFile(args); err == nil {
		t.Errorf("the dns-01 script was run: %q", b)
	}
}

// TestObtainWebrootCustomerDocroot: against Pebble, a docroot owned by
// the domain's account issues, and leaves the docroot as it was; once the
// customer links .well-known elsewhere, even a dry run's self-check writes
// nothing there and drops the name, saying why.
func TestObtainWebrootCustomerDocroot(t *testing.T) {
	needRoot(t)
	e := newEnv(t)
	docroot, secret := customerTree(t)
	srv := &http.Server{Handler: http.FileServer(http.Dir(docroot))}
	ln, err := net.Listen("tcp", "127.0.0.2:"+strconv.Itoa(e.ca.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := e.client(func(cfg *Config) {
		cfg.Challenge.HTTPListen = ""
		cfg.Challenge.WebrootMap = map[string]string{"d.test": docroot}
		cfg.Challenge.WebrootOwners = map[string]uint32{"d.test": nobody}
	})
	names := []string{"mail.d.test"}
	res, err := e.obtain(c, Request{CertID: "c1", Names: names, Inventory: inventory(names...)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Issued, names) {
		t.Fatalf("issued %v dropped %+v", res.Issued, res.Dropped)
	}
	e.verify(res.Cert, names...)
	if ents, _ := os.ReadDir(docroot); len(ents) != 0 {
		t.Errorf("left in the docroot: %v", ents)
	}

	asNobody(t, filepath.Join(docroot, ".well-known"), secret)
	res, err = e.obtain(c, Request{CertID: "c1", Names: names, Inventory: inventory(names...), DryRun: true})
	if !errors.Is(err, ErrNothingToIssue) || res == nil {
		t.Fatalf("got %v, want ErrNothingToIssue with a result", err)
	}
	if len(res.Dropped) != 1 || res.Dropped[0].Code != DropSelfCheck || !strings.Contains(res.Dropped[0].Reason, "webroot "+docroot+": .well-known is a symbolic link (to "+secret+")") {
		t.Errorf("dropped %+v", res.Dropped)
	}
	if ents, _ := os.ReadDir(secret); len(ents) != 0 {
		t.Errorf("written through the link: %v", ents)
	}
}

// TestWebrootConcurrentChallenges: an order presents all its challenges at
// once; the directories made for the first are removed after the last.
func TestWebrootConcurrentChallenges(t *testing.T) {
	docroot := t.TempDir()
	s := newWebroot(t, ChallengeConfig{Webroot: docroot + "/"})
	var wg sync.WaitGroup
	tokens := make([]string, 32)
	for i := range tokens {
		tokens[i] = validToken[:30] + strconv.Itoa(100+i)
	}
	for _, tok := range tokens {
		wg.Go(func() {
			if err := s.present(context.Background(), "mail.d.test", tok, tok); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ents, _ := os.ReadDir(filepath.Join(docroot, ".well-known", "acme-challenge")); len(ents) != len(tokens) {
		t.Errorf("%d challenge files, want %d", len(ents), len(tokens))
	}
	for _, tok := range tokens {
		wg.Go(func() { s.cleanup(context.Background(), "mail.d.test", tok, tok) })
	}
	wg.Wait()
	if ents, _ := os.ReadDir(docroot); len(ents) != 0 {
		t.Errorf("left in the docroot: %v", ents)
	}
}
