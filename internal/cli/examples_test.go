package cli

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleInvocations parses every certplan command line in the cron and
// systemd examples, so that a renamed flag breaks the build of the examples
// rather than an admin's 3 a.m. cron run.
func TestExampleInvocations(t *testing.T) {
	files, _ := filepath.Glob("../../examples/cron/*")
	more, _ := filepath.Glob("../../examples/systemd/*.service")
	files = append(files, more...)
	if len(files) < 2 {
		t.Fatalf("found %d example files", len(files))
	}
	found := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			i := strings.Index(line, "certplan --")
			if j := strings.Index(line, "bin/certplan --"); j >= 0 {
				i = j + len("bin/")
			}
			if i < 0 {
				continue
			}
			cmdline := line[i:]
			if k := strings.IndexAny(cmdline, "><|;&"); k >= 0 {
				cmdline = cmdline[:k]
			}
			args := strings.Fields(cmdline)[1:]
			found++
			root := newRootCmd(&globals{Getenv: func(string) string { return "" }})
			cmd, rest, err := root.Find(args)
			if err != nil || cmd == root {
				t.Errorf("%s: %q: no such command: %v", f, cmdline, err)
				continue
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%s: %q: %v", f, cmdline, err)
			}
		}
		fh.Close()
	}
	if found < 3 {
		t.Errorf("found %d certplan command lines, want at least 3", found)
	}
}
