package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionString(t *testing.T) {
	vcs := func(rev, modified, when string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "-buildmode", Value: "exe"}, {Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: when}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "9036b99648985893fa30890ac3010db3b2e242c2"
	const when = "2026-11-27T06:49:17Z"
	bi := func(v string, s []debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/certplan/certplan", Version: v}, Settings: s}
	}
	plat := runtime.GOOS + "/" + runtime.GOARCH
	type ld struct{ version, commit, date, modified string }
	tests := []struct {
		name string
		ld   ld
		bi   *debug.BuildInfo
		want string
	}{
		{"release build (-ldflags -X)", ld{"v1.2.3", rev, "2026-12-06T08:50:00Z", ""}, bi("(devel)", nil),
			"v1.2.3, commit 9036b9964898, built 2026-12-06T08:50:00Z, go1.26.8 " + plat},
		{"-X wins over what the toolchain recorded", ld{"v2.0.0-rc.1", "abc", "2026-12-06T08:50:00Z", "false"}, bi("v1.2.3", vcs(rev, "true", when)),
			"v2.0.0-rc.1, commit abc, built 2026-12-06T08:50:00Z, go1.26.8 " + plat},
		{"untagged release build of a dirty tree", ld{"", rev, "2026-12-06T08:50:00Z", "true"}, bi("(devel)", nil),
			"devel (no release tag), commit 9036b9964898 dirty, built 2026-12-06T08:50:00Z, go1.26.8 " + plat},
		{"go build in a clone without tags", ld{}, bi("(devel)", vcs(rev, "false", when)),
			"devel (no release tag), commit 9036b9964898, committed " + when + ", go1.26.8 " + plat},
		{"go build in a clone with changes", ld{}, bi("v0.0.0-20261127064917-9036b9964898+dirty", vcs(rev, "true", when)),
			"devel (no release tag), commit 9036b9964898 dirty, committed " + when + ", go1.26.8 " + plat},
		{"go build at a tag", ld{}, bi("v1.2.3", vcs(rev, "false", when)),
			"v1.2.3, commit 9036b9964898, committed " + when + ", go1.26.8 " + plat},
		{"go build at a tag, dirty", ld{}, bi("v1.2.3+dirty", vcs(rev, "true", when)),
			"v1.2.3, commit 9036b9964898 dirty, committed " + when + ", go1.26.8 " + plat},
		{"go install at a release", ld{}, bi("v1.2.3", nil), "v1.2.3, go1.26.8 " + plat},
		{"go install at a commit", ld{}, bi("v1.2.4-0.20261127064917-9036b9964898", nil),
			"devel (no release tag) v1.2.4-0.20261127064917-9036b9964898, go1.26.8 " + plat},
		{"no VCS stamping", ld{}, bi("(devel)", nil),
			"devel (no release tag), no commit recorded (built without VCS stamping: go build -buildvcs=true in a git clone records it), go1.26.8 " + plat},
		{"no build info", ld{}, nil,
			"devel (no release tag), no commit recorded (built without VCS stamping: go build -buildvcs=true in a git clone records it), " + runtime.Version() + " " + plat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readStamp(tt.ld.version, tt.ld.commit, tt.ld.date, tt.ld.modified, tt.bi).String()
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// buildCertplan builds ./cmd/certplan with extra go build flags.
func buildCertplan(t *testing.T, flags ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := filepath.Join(t.TempDir(), "certplan")
	args := append(append([]string{"build", "-o", bin}, flags...), "../../cmd/certplan")
	if out, err := exec.Command(goTool, args...).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(flags, " "), err, out)
	}
	return bin
}

func runBin(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("certplan %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestVersionLdflags builds certplan as packaging/build.sh does (-X, no VCS
// stamping) and runs --version and the version command.
func TestVersionLdflags(t *testing.T) {
	const pkg = "github.com/certplan/certplan/internal/cli."
	bin := buildCertplan(t, "-buildvcs=false", "-ldflags",
		"-X "+pkg+"Version=v9.8.7-test -X "+pkg+"Commit=0123456789abcdef0123 -X "+pkg+"Date=2026-12-06T08:50:00Z -X "+pkg+"Modified=true")
	want := "certplan v9.8.7-test, commit 0123456789ab dirty, built 2026-12-06T08:50:00Z, " +
		runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if got := runBin(t, bin, args...); got != want {
			t.Errorf("certplan %s:\ngot  %q\nwant %q", args[0], got, want)
		}
	}
	var s buildStamp
	if err := json.Unmarshal([]byte(runBin(t, bin, "version", "--format", "json")), &s); err != nil {
		t.Fatal(err)
	}
	if s.Version != "v9.8.7-test" || s.Commit != "0123456789abcdef0123" || !s.Modified || s.Built != "2026-12-06T08:50:00Z" {
		t.Errorf("version --format json: %+v", s)
	}
}

// TestVersionFromClone builds certplan with VCS stamping in this git clone,
// as "go build ./cmd/certplan" does, and checks that it names the commit
// and says it is no release.
func TestVersionFromClone(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skip("not in a git clone, or no git: nothing for the toolchain to stamp")
	}
	if tag, _ := exec.Command("git", "tag", "--points-at", "HEAD").Output(); len(tag) > 0 {
		t.Skipf("HEAD is tagged %s", tag)
	}
	if fi, err := os.Stat("../../.git"); err != nil || !fi.IsDir() {
		// The go command looks for a .git directory; in a git worktree
		// .git is a file, and the toolchain stamps nothing.
		t.Skip("../../.git is not a directory (a git worktree, or no clone): the go command records no VCS information")
	}
	bin := buildCertplan(t, "-buildvcs=true")
	got := runBin(t, bin, "--version")
	want := "certplan devel (no release tag), commit " + string(head[:12])
	if !strings.HasPrefix(got, want) || !strings.Contains(got, ", committed 20") {
		t.Errorf("got %q, want it to start %q and give the commit date", got, want)
	}
	if v := runBin(t, bin, "version"); v != got {
		t.Errorf("version says %q, --version %q", v, got)
	}
}

// TestVersionIgnoresBrokenConfig: the version is what a bug report starts
// with, so a broken CERTPLAN_CONFIG must not hide it.
func TestVersionIgnoresBrokenConfig(t *testing.T) {
	var out, errb strings.Builder
	getenv := func(k string) string {
		if k == "CERTPLAN_CONFIG" {
			return filepath.Join(t.TempDir(), "missing.yaml")
		}
		return ""
	}
	code := Run(t.Context(), []string{"version"}, strings.NewReader(""), &out, &errb, getenv)
	if code != 0 || out.String() != "certplan "+version()+"\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
