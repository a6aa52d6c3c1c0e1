package dnscheck

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/certplan/certplan/examples/lab/zones"
	"github.com/certplan/certplan/names"
	"github.com/rogpeppe/go-internal/txtar"
)

// The fuzz targets of the domain sources: --domains lists (ReadDomains)
// and --zones directories (ZoneDirDomains, zoneFileOrigin).
//
//	go test -run XXX -fuzz FuzzReadDomains -fuzztime 150s -parallel 1 ./dnscheck/

// scriptFiles returns the files of the command line's test scripts whose
// names keep says to, as seeds.
func scriptFiles(tb testing.TB, keep func(name string) bool) [][]byte {
	paths, err := filepath.Glob("../internal/cli/testdata/script/*.txtar")
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no test scripts: %v", err)
	}
	var out [][]byte
	for _, p := range paths {
		a, err := txtar.ParseFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		for _, f := range a.Files {
			if keep(f.Name) {
				out = append(out, f.Data)
			}
		}
	}
	return out
}

// zoneSeeds are the lab's zone files, the end-to-end tests' and the
// scripts'.
func zoneSeeds(tb testing.TB) [][]byte {
	out := scriptFiles(tb, func(n string) bool { return strings.HasPrefix(n, "zones/") })
	files, _ := fs.Glob(zones.FS, "*.db")
	for _, file := range files {
		b, err := fs.ReadFile(zones.FS, file)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	e2e, _ := filepath.Glob("../e2e/testdata/*/*.db")
	for _, p := range e2e {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzReadDomains: a list ReadDomains accepts gives sorted, distinct,
// normalised names, no more than it has lines, and reads back the same when
// written one a line; a list it rejects gets errors that name the file and a
// line, ten at most.
func FuzzReadDomains(f *testing.F) {
	for _, b := range scriptFiles(f, func(n string) bool { return strings.HasSuffix(n, ".txt") }) {
		f.Add(b)
	}
	f.Add([]byte("\ufeffdomain2.test\r\nBücher.test.  # IDN\r\n\r\n  # comment\nmail.example.test\n"))
	f.Add([]byte("domain2.test domain3.test\n*.wild.test\n_dmarc.x.test\n127.0.0.1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ReadDomains(bytes.NewReader(data), "list.txt")
		if err != nil {
			checkLineErrors(t, err, "list.txt", maxListErrors+1)
			return
		}
		if !slices.IsSorted(out) || len(slices.Compact(slices.Clone(out))) != len(out) {
			t.Fatalf("names not sorted and distinct: %q", out)
		}
		if lines := bytes.Count(data, []byte("\n")) + 1; len(out) > lines {
			t.Fatalf("%d names from %d lines", len(out), lines)
		}
		for _, n := range out {
			if m, err := names.Normalize(n); err != nil || m != n {
				t.Fatalf("name %q not normalised: %q, %v", n, m, err)
			}
		}
		again, err := ReadDomains(strings.NewReader(strings.Join(out, "\n")), "again")
		if err != nil || !slices.Equal(again, out) {
			t.Fatalf("names %q read back as %q, %v", out, again, err)
		}
	})
}

// checkLineErrors checks that err joins at most max errors, each naming
// file (and, for a *LineError, a line from 1 on).
func checkLineErrors(t *testing.T, err error, file string, max int) {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	if len(errs) > max {
		t.Fatalf("%d errors, want at most %d", len(errs), max)
	}
	for _, e := range errs {
		if !strings.Contains(e.Error(), file) {
			t.Fatalf("error %q does not name %s", e, file)
		}
		var le *LineError
		if errors.As(e, &le) && le.Line < 1 {
			t.Fatalf("error %q: line %d", e, le.Line)
		}
	}
}

// FuzzZoneDirDomains reads one zone file in a --zones directory: its $ORIGIN
// (before the first record) is a word of the line it reports, and the
// directory gives at most one domain, normalised, or an error naming the
// file. The file is named after the lab's domain2.test, which the origin
// overrides.
func FuzzZoneDirDomains(f *testing.F) {
	for _, b := range zoneSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte("; no origin: the file's name\n$TTL 300\n@ IN SOA ns. host. 1 2 3 4 5\n"))
	f.Add([]byte("$origin Bücher.test. ; comment\n"))
	f.Add([]byte("$ORIGIN\n"))
	f.Add([]byte("$ORIGIN 0.0.127.in-addr.arpa.\n"))
	dir := fuzzTempDir(f)
	path := filepath.Join(dir, "domain2.test.db")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		origin, line, err := zoneFileOrigin(path)
		switch {
		case err != nil:
			checkLineErrors(t, err, path, 1)
		case origin != "":
			lines := strings.Split(string(data), "\n")
			if line < 1 || line > len(lines) || !slices.Contains(strings.Fields(strings.Split(lines[line-1], ";")[0]), origin) {
				t.Fatalf("origin %q on line %d: not a word of that line", origin, line)
			}
		}
		out, err := ZoneDirDomains(dir)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name %s", err, path)
			}
			return
		}
		if len(out) > 1 {
			t.Fatalf("one file, %d domains: %q", len(out), out)
		}
		for _, n := range out {
			if m, err := names.Normalize(n); err != nil || m != n {
				t.Fatalf("domain %q not normalised: %q, %v", n, m, err)
			}
		}
		if origin == "" && err == nil && !slices.Equal(out, []string{"domain2.test"}) {
			t.Fatalf("no $ORIGIN: domains %q, want the file's name", out)
		}
	})
}

// fuzzTempDir is a directory for the files a fuzz target writes at every
// input: on tmpfs when there is one (writing to disk is most of the time
// of a run otherwise), removed at the end.
func fuzzTempDir(f *testing.F) string {
	dir, err := os.MkdirTemp("/dev/shm", "certplanfuzz")
	if err != nil {
		dir, err = os.MkdirTemp("", "certplanfuzz")
	}
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
