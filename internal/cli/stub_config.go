package cli

import "github.com/spf13/cobra"

func newConfigCmd(*globals) *cobra.Command { return notYet("config", "Config") }
