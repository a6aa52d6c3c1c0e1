package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/model"
)

// nobody is the uid of the "owned by another user" tests.
const nobody = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: chowns directories to another user")
	}
}

// TestOpenRefusesUnsafeDirs: a state directory that another user could
// change, directly or through a directory above it, is refused, and
// nothing is created in it.
func TestOpenRefusesUnsafeDirs(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name string
		// setup prepares base and returns the state dir and the path the
		// error must name ("" when Open must succeed).
		setup func(t *testing.T, base string) (dir, bad string)
	}{
		{"parent owned by nobody", func(t *testing.T, base string) (string, string) {
			p := mkdir(t, base, "p", 0o755)
			chown(t, p, nobody)
			return filepath.Join(p, "state"), p
		}},
		{"parent world-writable without sticky bit", func(t *testing.T, base string) (string, string) {
			p := mkdir(t, base, "p", 0o777)
			return filepath.Join(p, "state"), p
		}},
		{"parent group-writable", func(t *testing.T, base string) (string, string) {
			p := mkdir(t, base, "p", 0o775)
			return filepath.Join(p, "state"), p
		}},
		{"grandparent owned by nobody, state dir exists", func(t *testing.T, base string) (string, string) {
			g := mkdir(t, base, "g", 0o755)
			chown(t, g, nobody)
			p := mkdir(t, g, "p", 0o755)
			return mkdir(t, p, "state", 0o700), g
		}},
		{"state dir owned by nobody", func(t *testing.T, base string) (string, string) {
			d := mkdir(t, base, "state", 0o700)
			chown(t, d, nobody)
			return d, d
		}},
		{"state dir sticky and world-writable", func(t *testing.T, base string) (string, string) {
			d := mkdir(t, base, "state", 0o1777)
			return d, d
		}},
		{"link owned by nobody in a sticky dir", func(t *testing.T, base string) (string, string) {
			sticky := mkdir(t, base, "tmp", 0o1777)
			target := mkdir(t, base, "real", 0o700)
			link := filepath.Join(sticky, "state")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(link, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			return link, link
		}},
		{"link to a dir under a parent owned by nobody", func(t *testing.T, base string) (string, string) {
			p := mkdir(t, base, "p", 0o755)
			chown(t, p, nobody)
			target := mkdir(t, p, "real", 0o700)
			link := filepath.Join(base, "state")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link, p
		}},
		{"sticky root-owned parent, like /tmp: accepted", func(t *testing.T, base string) (string, string) {
			p := mkdir(t, base, "tmp", 0o1777)
			return filepath.Join(p, "state"), ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dir, bad := tt.setup(t, base)
			_, existed := os.Lstat(dir)
			s, err := Open(dir)
			if bad == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if err := s.Lock(); err != nil {
					t.Fatal(err)
				}
				s.Close()
				return
			}
			var ue *UnsafeDirError
			if !errors.As(err, &ue) {
				t.Fatalf("Open: got %v, want an UnsafeDirError", err)
			}
			if ue.Path != bad || !strings.Contains(err.Error(), bad+" ") {
				t.Errorf("error names %q (%v), want %s", ue.Path, err, bad)
			}
			if _, err := os.Lstat(dir); existed != nil && err == nil {
				t.Error("a refused state directory was created")
			}
		})
	}
}

func TestUnsafeDirErrorText(t *testing.T) {
	needRoot(t)
	p := mkdir(t, t.TempDir(), "p", 0o775)
	chown(t, p, nobody)
	_, err := Open(filepath.Join(p, "state"))
	want := p + " is owned by uid 65534 (nobody), not by root, and group-writable (mode 0775)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want it to say %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(p, "state")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused state dir was created: %v", err)
	}
}

// TestOpenReadOnly: a reader (certplan check from a monitoring user) may
// read a state directory it does not own, under any parent; it creates
// nothing and cannot lock.
func TestOpenReadOnly(t *testing.T) {
	needRoot(t)
	p := mkdir(t, t.TempDir(), "p", 0o755)
	dir := filepath.Join(p, "state")
	w := open(t, dir)
	if err := w.SavePlan(planWithID("p1")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	chown(t, p, nobody)
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if pl, err := r.LoadPlan(); err != nil || pl.ID != "p1" {
		t.Errorf("read-only LoadPlan: %+v %v", pl, err)
	}
	if err := r.Lock(); err == nil {
		t.Error("a read-only store took the lock")
	}
	if _, err := OpenReadOnly(filepath.Join(p, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dir: got %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(p, "missing")); err == nil {
		t.Error("OpenReadOnly created the directory")
	}
}

// TestLinksNotFollowed: state files replaced by symbolic links to files
// elsewhere are neither read nor written through; the targets stay as they
// were.
func TestLinksNotFollowed(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	target := filepath.Join(outside, "target")
	writeFile(t, target, `{"id": "outside"}`)
	snapshot := tree(t, outside)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	link(t, target, filepath.Join(dir, "lock"))
	if err := s.Lock(); err == nil {
		t.Error("Lock through a symlinked lock file succeeded")
	}
	os.Remove(filepath.Join(dir, "lock"))
	if err := s.Lock(); err != nil {
		t.Fatal(err)
	}

	link(t, target, filepath.Join(dir, "plan.json"))
	if p, err := s.LoadPlan(); err == nil {
		t.Errorf("LoadPlan read through a link: %+v", p)
	}
	link(t, target, filepath.Join(dir, "inner"))
	os.Remove(filepath.Join(dir, "plan.json"))
	link(t, "inner", filepath.Join(dir, "plan.json")) // a link inside, to a link out
	if p, err := s.LoadPlan(); err == nil {
		t.Errorf("LoadPlan read through a link: %+v", p)
	}
	if err := s.SavePlan(planWithID("p2")); err != nil {
		t.Fatal(err)
	}
	if p, err := s.LoadPlan(); err != nil || p.ID != "p2" {
		t.Errorf("after SavePlan replaced the link: %+v %v", p, err)
	}

	// Renewal state and a whole certificate directory as links.
	mkdir(t, dir, "certs", 0o700)
	mkdir(t, filepath.Join(dir, "certs"), "c", 0o700)
	link(t, target, filepath.Join(dir, "certs", "c", "renewal.json"))
	if st, err := s.LoadRenewal("c"); err == nil {
		t.Errorf("LoadRenewal read through a link: %+v", st)
	}
	if err := s.SaveRenewal("c", RenewalState{Failures: 1}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "certs", "c", "renewal.json")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("renewal.json after SaveRenewal: %v %v, want a regular file", fi, err)
	}
	link(t, outside, filepath.Join(dir, "certs", "d"))
	if err := s.SaveRenewal("d", RenewalState{Failures: 1}); err == nil {
		t.Error("SaveRenewal wrote through a linked certificate directory")
	}
	if _, err := s.SaveCert("d", testFiles(t, 1, "a.test"), Meta{}); err == nil {
		t.Error("SaveCert wrote through a linked certificate directory")
	}
	link(t, outside, filepath.Join(dir, "accounts"))
	if err := s.SaveAccount(&Account{DirectoryURL: "https://127.0.0.1/dir", KeyPEM: []byte("k")}); err == nil {
		t.Error("SaveAccount wrote through a linked accounts directory")
	}
	if got := tree(t, outside); !slices.Equal(got, snapshot) {
		t.Errorf("outside the state dir changed:\n got %v\nwant %v", got, snapshot)
	}
}

// TestCurrentOutsideRefused: a "current" link that names anything but one
// of its own version directories is corrupt; nothing outside the
// certificate's directory is read or written.
func TestCurrentOutsideRefused(t *testing.T) {
	for _, tc := range []struct{ name, target string }{
		{"parent path", "../../elsewhere"},
		{"absolute", "@OUTSIDE@/v000001"},
		{"other certificate", "../other/v000001"},
		{"trailing slash", "v000001/"},
		{"not a version", "next"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			outside := t.TempDir()
			s := open(t, dir)
			if _, err := s.SaveCert("c", testFiles(t, 1, "c.test"), Meta{}); err != nil {
				t.Fatal(err)
			}
			// Valid certificates where the link points: read, they would
			// load without error.
			if _, err := s.SaveCert("other", testFiles(t, 99, "other.test"), Meta{}); err != nil {
				t.Fatal(err)
			}
			copyDir(t, filepath.Join(dir, "certs", "other", "v000001"), filepath.Join(outside, "v000001"))
			copyDir(t, filepath.Join(dir, "certs", "other", "v000001"), filepath.Join(dir, "elsewhere"))
			snapshot := tree(t, outside)

			cur := filepath.Join(dir, "certs", "c", "current")
			os.Remove(cur)
			link(t, strings.ReplaceAll(tc.target, "@OUTSIDE@", outside), cur)
			c, err := s.LoadCert("c")
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "current") {
				t.Fatalf("LoadCert: got %v (%v), want ErrCorrupt naming current", err, c != nil)
			}
			if ids, err := s.ListCerts(); err != nil || !slices.Contains(ids, "c") {
				t.Errorf("ListCerts: %v %v, want c listed (check reports it)", ids, err)
			}
			// A new version replaces the bad link and keeps the old one.
			c, err = s.SaveCert("c", testFiles(t, 2, "c.test"), Meta{})
			if err != nil || c.Meta.Version != "v000002" || c.Meta.Serial != "2" {
				t.Fatalf("SaveCert: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "certs", "c", "v000001", FileKey)); err != nil {
				t.Errorf("the version before the bad link was removed: %v", err)
			}
			if got := tree(t, outside); !slices.Equal(got, snapshot) {
				t.Errorf("outside changed:\n got %v\nwant %v", got, snapshot)
			}
		})
	}
}

// ---- helpers

func planWithID(id string) *model.Plan { return &model.Plan{ID: id} }

func mkdir(t *testing.T, parent, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(parent, name)
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	// Mkdir applies the umask; Chmod sets what the test needs.
	if err := os.Chmod(p, mode&fs.ModePerm|modeBits(mode)); err != nil {
		t.Fatal(err)
	}
	return p
}

// modeBits turns the octal sticky bit of a test's mode into fs.ModeSticky.
func modeBits(m os.FileMode) os.FileMode {
	if m&0o1000 != 0 {
		return fs.ModeSticky
	}
	return 0
}

func chown(t *testing.T, p string, uid int) {
	t.Helper()
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chown(p, 0, 0) })
}

func link(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// tree lists every path under dir with its size, mode and modification
// time, to see that nothing changed.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, strings.Join([]string{p, fi.Mode().String(), fi.ModTime().Format(time.RFC3339Nano)}, " "))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
