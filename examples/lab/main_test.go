package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestLab runs the README's first command's pipeline and checks that each
// stage shows what it is there to show.
func TestLab(t *testing.T) {
	if testing.Short() {
		t.Skip("the lab runs every stage: skipped in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errw bytes.Buffer
	err := run(ctx, labOptions{dir: t.TempDir(), randomPorts: true}, &out, &errw)
	if err != nil {
		t.Fatalf("lab: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errw.String())
	}
	got := out.String()
	for _, want := range []string{
		"== 1. inventory",
		"mail.domain2.test",
		"== 2. probe",
		"smtp.domain2.test on 127.0.0.2:",
		"clients without SNI get server.main-domain.test: name mismatch (with SNI: ok)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lab output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", got, errw.String())
	}
}
