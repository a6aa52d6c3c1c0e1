package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// notYet stands in for a command that is being built: hidden, and failing
// with a clear error. Each stub_*.go file goes when its command lands.
func notYet(use, short string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short + " (not implemented yet)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errors.New(use + ": not implemented yet") }}
}
