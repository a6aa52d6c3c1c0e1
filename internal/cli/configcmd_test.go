package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// examples/certplan.yaml is what "certplan config init" writes: a new flag
// shows up in it (run go test ./internal/cli -run TestExampleConfig -update).
func TestExampleConfig(t *testing.T) {
	var out, errw bytes.Buffer
	if code := Run(context.Background(), []string{"config", "init"}, strings.NewReader(""), &out, &errw, func(string) string { return "" }); code != 0 {
		t.Fatalf("config init: exit %d: %s", code, errw.String())
	}
	const path = "../../examples/certplan.yaml"
	if *update {
		os.WriteFile(path, out.Bytes(), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("%s is not what \"certplan config init\" writes; rerun with -update", path)
	}
	// It passes its own check, and every key of every command is in it.
	errw.Reset()
	if code := Run(context.Background(), []string{"config", "check", path}, strings.NewReader(""), &out, &errw, func(string) string { return "" }); code != 0 {
		t.Errorf("config check of the example: exit %d: %s", code, errw.String())
	}
	root := newRootCmd(&globals{})
	for k := range allFlagNames(root) {
		if configSkip[k] {
			continue
		}
		if !bytes.Contains(want, []byte("\n"+k+":")) && !bytes.Contains(want, []byte("\n#"+k+":")) {
			t.Errorf("the example config lacks %q", k)
		}
	}
}

func TestConfigCheckErrors(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/bad.yaml"
	os.WriteFile(bad, []byte("timeout: soon\nserver-ip: [127.0.0.2]\nconcurrency: [1, 2]\n"), 0o644)
	var out, errw bytes.Buffer
	code := Run(context.Background(), []string{"config", "check", bad}, strings.NewReader(""), &out, &errw, func(string) string { return "" })
	if code == 0 || !strings.Contains(errw.String(), "bad.yaml:1: timeout") || !strings.Contains(errw.String(), "bad.yaml:3: concurrency takes one value, got a list") {
		t.Errorf("exit %d, stderr:\n%s", code, errw.String())
	}
	if strings.Count(errw.String(), "bad.yaml:1: timeout") != 1 {
		t.Errorf("the same error reported more than once:\n%s", errw.String())
	}
	// init refuses to replace a file without --force.
	errw.Reset()
	code = Run(context.Background(), []string{"config", "init", "-o", bad}, strings.NewReader(""), &out, &errw, func(string) string { return "" })
	if code == 0 || !strings.Contains(errw.String(), "add --force") {
		t.Errorf("init over a file: exit %d, %s", code, errw.String())
	}
}
