package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "privkey.pem")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Replacing keeps the asked mode even when the old file was looser.
	os.Chmod(p, 0o644)
	if err := WriteFile(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "two" || fi.Mode().Perm() != 0o600 {
		t.Errorf("got %q mode %v, want \"two\" 0600", b, fi.Mode().Perm())
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("dir has %d entries, want 1", len(ents))
	}
}

func TestWriteFileFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cert.pem")
	if err := WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The target is a directory now: rename fails, the temporary file goes.
	if err := WriteFile(filepath.Join(dir, "missing", "x"), []byte("new"), 0o644); err == nil {
		t.Fatal("write into a missing directory: want an error")
	}
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "keep"), nil, 0o644)
	if err := WriteFile(sub, []byte("new"), 0o644); err == nil {
		t.Fatal("replacing a non-empty directory: want an error")
	}
	b, _ := os.ReadFile(p)
	if string(b) != "old" {
		t.Errorf("got %q, want the old content", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("dir has %d entries after failures, want 2 (no temporary files left)", len(ents))
	}
}

// Create's file replaces the target only on Commit; Abort leaves the old
// file and no temporary one.
func TestCreateCommitAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.json")
	os.WriteFile(path, []byte("old"), 0o600)
	f, err := Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("half")
	f.Abort()
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("after Abort: %q, want the old file", b)
	}
	f, err = Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("new")
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("before Commit: %q, want the old file", b)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort() // after Commit: nothing
	b, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	ents, _ := os.ReadDir(dir)
	if string(b) != "new" || fi.Mode().Perm() != 0o644 || len(ents) != 1 {
		t.Errorf("after Commit: %q, mode %v, %d files in the directory; want \"new\", 0644, 1", b, fi.Mode().Perm(), len(ents))
	}
}
