package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
	"github.com/spf13/pflag"
)

//	go test -run XXX -fuzz FuzzConfig -fuzztime 150s -parallel 1 ./internal/cli/

// scriptFiles returns the files of testdata/script whose names keep says
// to, as seeds.
func scriptFiles(tb testing.TB, keep func(name string) bool) [][]byte {
	paths, err := filepath.Glob("testdata/script/*.txtar")
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

// FuzzConfig checks any file as "certplan config check" does, applying it
// to every command. Whatever the file holds, every line of the error names
// the file, and no flag is left marked as set on the command line (which
// would stop the file's domain sources from being used, or a later key from
// applying).
func FuzzConfig(f *testing.F) {
	for _, b := range scriptFiles(f, func(n string) bool { return strings.Contains(n, ".yaml") }) {
		f.Add(b)
	}
	example, err := os.ReadFile("../../examples/certplan.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add(exampleConfig(newRootCmd(&globals{})))
	f.Add([]byte("server-ip: [127.0.0.2, \"::1\"]\nresolver: 127.0.0.1:5353\ntimeout: 2s\nzones: /var/named\n"))
	f.Add([]byte("a: &x [*x]\nb: *x\n"))
	dir := fuzzTempDir(f)
	path := filepath.Join(dir, "certplan.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		root := newRootCmd(&globals{})
		err := checkConfigFile(root, path)
		if err != nil {
			for _, l := range strings.Split(err.Error(), "\n") {
				if !strings.Contains(l, path) {
					t.Fatalf("error line %q does not name the file", l)
				}
			}
		}
		for _, c := range allCommands(root) {
			c.Flags().VisitAll(func(fl *pflag.Flag) {
				if fl.Changed {
					t.Fatalf("%s --%s left as set on the command line", c.CommandPath(), fl.Name)
				}
			})
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
