package cli

import (
	"encoding/json"
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Set at link time by the release build (packaging/build.sh), which knows
// what the Go toolchain cannot record: the release tag, and a build date
// that is the same on every rebuild (SOURCE_DATE_EPOCH, the commit's date).
// The release build uses -buildvcs=false, so these are its only source:
//
//	go build -ldflags "-X github.com/certplan/certplan/internal/cli.Version=v1.2.3
//	  -X github.com/certplan/certplan/internal/cli.Commit=2c6f06a...
//	  -X github.com/certplan/certplan/internal/cli.Date=2026-12-06T08:50:00Z" ./cmd/certplan
var (
	Version  string // release tag, such as v1.2.3; empty: not a release
	Commit   string // full commit hash
	Date     string // build date, RFC 3339 UTC
	Modified string // "true" when built from a work tree with uncommitted changes
)

// buildStamp is what is known about this binary's origin.
type buildStamp struct {
	Version   string `json:"version"`         // release version; "" when not a release
	Pseudo    string `json:"pseudo,omitzero"` // a Go pseudo-version, when that is all there is
	Commit    string `json:"commit,omitzero"`
	Modified  bool   `json:"modified"`
	Built     string `json:"built,omitzero"`     // build date (release build)
	Committed string `json:"committed,omitzero"` // commit date (plain go build in a clone)
	Go        string `json:"go"`
	Platform  string `json:"platform"`
}

// readStamp combines the link-time variables and the build information the
// toolchain records (debug.ReadBuildInfo: the module version, and
// vcs.revision, vcs.time and vcs.modified when "go build" runs in a git
// clone with VCS stamping on). A link-time value wins over a recorded one.
// bi may be nil (a binary without build information).
func readStamp(version, commit, date, modified string, bi *debug.BuildInfo) buildStamp {
	s := buildStamp{Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if bi.GoVersion != "" {
			s.Go = bi.GoVersion
		}
		switch v := bi.Main.Version; {
		case v == "" || v == "(devel)":
		case pseudoVersion.MatchString(v):
			s.Pseudo = v
		default:
			// go install ...@v1.2.3, or go build at a tag; "dirty" is
			// said once, from vcs.modified.
			s.Version = strings.TrimSuffix(v, "+dirty")
		}
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				s.Commit = kv.Value
			case "vcs.modified":
				s.Modified = kv.Value == "true"
			case "vcs.time":
				s.Committed = kv.Value
			}
		}
	}
	if version = strings.TrimSpace(version); version != "" {
		s.Version, s.Pseudo = version, ""
	}
	if commit = strings.TrimSpace(commit); commit != "" {
		s.Commit, s.Committed = commit, ""
		s.Modified = strings.TrimSpace(modified) == "true"
	}
	s.Built = strings.TrimSpace(date)
	return s
}

// String is the line "certplan version" and "certplan --version" print,
// after "certplan ", one line for bug reports:
//
//	v1.2.3, commit 2c6f06a1b2c3, built 2026-12-06T08:50:00Z, go1.26.8 linux/amd64
//	devel (no release tag), commit 2c6f06a1b2c3 dirty, committed 2026-12-06T08:50:00Z, go1.26.8 linux/amd64
//	devel (no release tag), no commit recorded (built without VCS stamping), go1.26.8 linux/amd64
func (s buildStamp) String() string {
	var b strings.Builder
	switch {
	case s.Version != "":
		b.WriteString(s.Version)
	case s.Pseudo != "" && s.Commit == "":
		// go install ...@commit: the pseudo-version names the commit.
		b.WriteString("devel (no release tag) " + s.Pseudo)
	default:
		b.WriteString("devel (no release tag)")
	}
	switch {
	case s.Commit != "":
		b.WriteString(", commit " + shortCommit(s.Commit))
		if s.Modified {
			b.WriteString(" dirty")
		}
	case s.Version == "" && s.Pseudo == "":
		b.WriteString(", no commit recorded (built without VCS stamping: go build -buildvcs=true in a git clone records it)")
	}
	if s.Built != "" {
		b.WriteString(", built " + s.Built)
	} else if s.Committed != "" {
		b.WriteString(", committed " + s.Committed)
	}
	b.WriteString(", " + s.Go + " " + s.Platform)
	return b.String()
}

// shortCommit keeps 12 hex digits, as Go pseudo-versions do.
func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// stamp is this binary's buildStamp.
func stamp() buildStamp {
	bi, _ := debug.ReadBuildInfo()
	return readStamp(Version, Commit, Date, Modified, bi)
}

// version is what "certplan --version" prints after "certplan ".
func version() string { return stamp().String() }

// addVersion gives root its --version flag and version command, which
// print the same line.
func addVersion(root *cobra.Command, g *globals) {
	root.Version = version()
	root.SetVersionTemplate("certplan {{.Version}}\n")
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Long: `version prints which certplan this is: the release (or "devel (no release tag)"
for a build from a clone), the commit ("dirty" when the work tree had changes),
the build date, and the Go version and platform. --format json prints the same
as an object. --version prints the same line.`,
		Args: cobra.NoArgs,
		// A broken --config or CERTPLAN_CONFIG must not hide the version:
		// it is what a bug report starts with.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error { return g.setup() },
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkFormat("text", "json"); err != nil {
				return err
			}
			w, commit := g.output()
			if g.Format == "json" {
				data, _ := json.MarshalIndent(stamp(), "", "  ")
				fmt.Fprintf(w, "%s\n", data)
			} else {
				fmt.Fprintf(w, "certplan %s\n", version())
			}
			return commit()
		},
	}
	root.AddCommand(cmd)
}

// pseudoVersion matches a Go module pseudo-version (vX.Y.Z-[pre.]0.
// yyyymmddhhmmss-abcdefabcdef, or vX.0.0-yyyymmddhhmmss-abcdefabcdef),
// with the "+incompatible" and "+dirty" suffixes the toolchain may add: a
// version made from a commit, not a release.
var pseudoVersion = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+-(?:[0-9A-Za-z.-]*\.)?(?:0\.)?[0-9]{14}-[0-9a-f]{12}(?:\+incompatible)?(?:\+dirty)?$`)
