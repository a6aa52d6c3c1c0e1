package cli

import "github.com/spf13/cobra"

func newCheckCmd(*globals) *cobra.Command { return notYet("check", "Check") }
