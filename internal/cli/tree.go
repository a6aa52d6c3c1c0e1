package cli

import (
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// CommandTree returns certplan's command tree, not wired to any input or
// output, for generating its man pages and shell completions
// (packaging/gendocs). Running it is not supported: use Run.
func CommandTree() *cobra.Command {
	g := &globals{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard,
		Getenv: func(string) string { return "" }, Now: time.Now}
	return newRootCmd(g)
}
