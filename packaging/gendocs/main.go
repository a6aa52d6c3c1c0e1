// Command gendocs writes certplan's man pages and shell completions, for
// the release build (packaging/build.sh):
//
//	go run ./packaging/gendocs -out DIR -version v1.2.3
//
// writes DIR/man/certplan.1 and one page per command (certplan-renew.1,
// certplan-config-init.1, ...), and DIR/completions/certplan.bash,
// _certplan (zsh) and certplan.fish. The pages are dated from
// SOURCE_DATE_EPOCH (required), so that a rebuild of the same commit
// writes the same bytes (https://reproducible-builds.org/specs/source-date-epoch/).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/certplan/certplan/internal/cli"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func main() {
	out := flag.String("out", "", "output `directory` (man/ and completions/ are made in it)")
	version := flag.String("version", "", "certplan `version` for the pages' footer")
	flag.Parse()
	if err := run(*out, *version, os.Getenv("SOURCE_DATE_EPOCH")); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: error: %v\n", err)
		os.Exit(1)
	}
}

func run(out, version, epoch string) error {
	if out == "" || version == "" || flag.NArg() != 0 {
		return errors.New("usage: gendocs -out DIR -version VERSION (with SOURCE_DATE_EPOCH set)")
	}
	secs, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", epoch)
	}
	date := time.Unix(secs, 0).UTC()
	root := cli.CommandTree()
	root.InitDefaultCompletionCmd() // certplan completion ... gets its pages too
	visit(root, func(c *cobra.Command) { c.DisableAutoGenTag = true })
	man := filepath.Join(out, "man")
	comp := filepath.Join(out, "completions")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	header := &doc.GenManHeader{Section: "1", Date: &date, Source: "certplan " + version, Manual: "certplan manual"}
	if err := doc.GenManTree(root, header, man); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	return completions(root, comp)
}

// completions writes the bash, zsh and fish completion scripts.
func completions(root *cobra.Command, dir string) error {
	gens := map[string]func(*os.File) error{
		"certplan.bash": func(f *os.File) error { return root.GenBashCompletionV2(f, true) },
		"_certplan":     func(f *os.File) error { return root.GenZshCompletion(f) },
		"certplan.fish": func(f *os.File) error { return root.GenFishCompletion(f, true) },
	}
	for name, gen := range gens {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		err = gen(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("completion %s: %w", name, err)
		}
	}
	return nil
}

func visit(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		visit(sub, f)
	}
}
