package cli

import (
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version, when set at link time, is the version "certplan --version"
// prints, in place of what the Go toolchain recorded:
//
//	go build -ldflags "-X github.com/certplan/certplan/internal/cli.Version=v1.2.3" ./cmd/certplan
var Version string

// version is what "certplan --version" prints (after "certplan version ").
func version() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(Version, bi)
}

// formatVersion says which certplan this is, for --version and bug
// reports, then the Go version in parentheses. The first of these that is
// known:
//   - override (the -ldflags variable [Version]): "v1.2.3 (go1.26.8)";
//   - the main module's version when it is a release, as
//     "go install ...@v1.2.3" records it: "v1.2.3 (go1.26.8)";
//   - the VCS revision, "+dirty" when the work tree had changes, and the
//     commit time, as "go build" in a git checkout records them:
//     "9036b9964898+dirty (2026-11-27T06:49:17Z, go1.26.8)";
//   - a pseudo-version without VCS details ("go install ...@commit"):
//     "v0.0.0-20261127064917-9036b9964898 (go1.26.8)";
//   - "devel (go1.26.8)".
//
// bi may be nil (a binary without build information).
func formatVersion(override string, bi *debug.BuildInfo) string {
	goVersion := runtime.Version()
	if bi != nil && bi.GoVersion != "" {
		goVersion = bi.GoVersion
	}
	if override = strings.TrimSpace(override); override != "" {
		return override + " (" + goVersion + ")"
	}
	if bi == nil {
		return "devel (" + goVersion + ")"
	}
	v := bi.Main.Version
	if v != "" && v != "(devel)" && !pseudoVersion.MatchString(v) {
		return v + " (" + goVersion + ")"
	}
	var rev, vcsTime string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		case "vcs.time":
			vcsTime = s.Value
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+dirty"
		}
		if vcsTime != "" {
			return rev + " (" + vcsTime + ", " + goVersion + ")"
		}
		return rev + " (" + goVersion + ")"
	}
	if v != "" && v != "(devel)" {
		return v + " (" + goVersion + ")"
	}
	return "devel (" + goVersion + ")"
}

// pseudoVersion matches a Go module pseudo-version (vX.Y.Z-[pre.]0.
// yyyymmddhhmmss-abcdefabcdef, or vX.0.0-yyyymmddhhmmss-abcdefabcdef),
// with the "+incompatible" and "+dirty" suffixes the toolchain may add: a
// version made from a commit, not a release.
var pseudoVersion = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+-(?:[0-9A-Za-z.-]*\.)?(?:0\.)?[0-9]{14}-[0-9a-f]{12}(?:\+incompatible)?(?:\+dirty)?$`)
