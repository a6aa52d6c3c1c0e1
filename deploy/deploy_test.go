package deploy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunEnv(t *testing.T) {
	dir := t.TempDir()
	c := Cert{ID: "default-127.0.0.2", Dir: dir, Names: []string{"mail.domain2.test", "server.main-domain.test"},
		DefaultIPs: []string{"127.0.0.2"}, Change: "new"}
	out, err := Run(context.Background(), `printf '%s|%s|%s|%s|%s|%s' "$CERTPLAN_CERT_ID" "$CERTPLAN_CERT_DIR" "$CERTPLAN_NAMES" "$CERTPLAN_DEFAULT_IPS" "$CERTPLAN_CHANGE" "$PWD" > seen`, c, time.Minute)
	if err != nil {
		t.Fatalf("Run: %v (output %q)", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "seen"))
	if err != nil {
		t.Fatal(err)
	}
	want := "default-127.0.0.2|" + dir + "|mail.domain2.test server.main-domain.test|127.0.0.2|new|" + dir
	if string(b) != want {
		t.Errorf("hook saw %q, want %q", b, want)
	}
}

func TestRunFailures(t *testing.T) {
	c := Cert{ID: "sni-domain2.test", Dir: t.TempDir()}
	tests := []struct {
		name     string
		hook     string
		timeout  time.Duration
		exit     int
		timedOut bool
		msg      string
	}{
		{"non-zero exit", "echo reloading; echo 'postfix: fatal: bad config' >&2; exit 3", time.Minute, 3, false, "deploy hook for sni-domain2.test: exit status 3: postfix: fatal: bad config"},
		{"timeout", "sleep 30", 200 * time.Millisecond, -1, true, "deploy hook for sni-domain2.test: timed out"},
		{"missing command", "/nonexistent/reload-mail", time.Minute, 127, false, "exit status 127"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Run(context.Background(), tt.hook, c, tt.timeout)
			var he *HookError
			if !errors.As(err, &he) {
				t.Fatalf("got %v, want a *HookError", err)
			}
			if he.ExitCode != tt.exit || he.TimedOut != tt.timedOut {
				t.Errorf("got exit %d timedOut %v, want %d %v", he.ExitCode, he.TimedOut, tt.exit, tt.timedOut)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
		})
	}
	if _, err := Run(context.Background(), "  ", c, time.Minute); err == nil {
		t.Error("empty hook: want an error")
	}
}
