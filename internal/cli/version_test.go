package cli

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	vcs := func(rev, modified, when string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "-buildmode", Value: "exe"}, {Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: when}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "9036b99648985893fa30890ac3010db3b2e242c2"
	bi := func(v string, s []debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/certplan/certplan", Version: v}, Settings: s}
	}
	tests := []struct {
		name     string
		override string
		bi       *debug.BuildInfo
		want     string
	}{
		{"ldflags override wins", "v2.0.0-rc.1", bi("v1.2.3", vcs(rev, "false", "2026-11-27T06:49:17Z")), "v2.0.0-rc.1 (go1.26.8)"},
		{"release from go install", "", bi("v1.2.3", nil), "v1.2.3 (go1.26.8)"},
		{"prerelease", "", bi("v1.3.0-rc.2", nil), "v1.3.0-rc.2 (go1.26.8)"},
		{"release built dirty in its checkout", "", bi("v1.2.3+dirty", vcs(rev, "true", "2026-11-27T06:49:17Z")), "v1.2.3+dirty (go1.26.8)"},
		{"git checkout: pseudo-version", "", bi("v0.0.0-20261127064917-9036b9964898", vcs(rev, "false", "2026-11-27T06:49:17Z")),
			"9036b9964898 (2026-11-27T06:49:17Z, go1.26.8)"},
		{"git checkout with changes", "", bi("v0.0.0-20261127064917-9036b9964898+dirty", vcs(rev, "true", "2026-11-27T06:49:17Z")),
			"9036b9964898+dirty (2026-11-27T06:49:17Z, go1.26.8)"},
		{"after a tag", "", bi("v1.2.4-0.20261127064917-9036b9964898", vcs(rev, "false", "2026-11-27T06:49:17Z")),
			"9036b9964898 (2026-11-27T06:49:17Z, go1.26.8)"},
		{"devel with VCS (go run, worktrees)", "", bi("(devel)", vcs(rev, "true", "")), "9036b9964898+dirty (go1.26.8)"},
		{"go install at a commit", "", bi("v1.2.4-0.20261127064917-9036b9964898", nil), "v1.2.4-0.20261127064917-9036b9964898 (go1.26.8)"},
		{"nothing known", "", bi("(devel)", nil), "devel (go1.26.8)"},
		{"empty version", "", bi("", nil), "devel (go1.26.8)"},
		{"no build info", "", nil, "devel (" + runtime.Version() + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatVersion(tt.override, tt.bi); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestVersionLdflags builds certplan with -ldflags -X and runs --version.
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := filepath.Join(t.TempDir(), "certplan")
	build := exec.Command(goTool, "build", "-o", bin,
		"-ldflags", "-X github.com/certplan/certplan/internal/cli.Version=v9.8.7-test", "../../cmd/certplan")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("certplan --version: %v\n%s", err, out)
	}
	want := "certplan version v9.8.7-test (" + runtime.Version() + ")\n"
	if string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// TestVersionFlag: the binary under test prints a version and the Go version.
func TestVersionFlag(t *testing.T) {
	var out, errb strings.Builder
	code := Run(t.Context(), []string{"--version"}, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	if code != 0 || !strings.HasPrefix(out.String(), "certplan version ") || !strings.HasSuffix(out.String(), "("+runtime.Version()+")\n") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	if strings.Contains(out.String(), "(devel)") {
		t.Errorf("stdout %q still says (devel)", out.String())
	}
}
