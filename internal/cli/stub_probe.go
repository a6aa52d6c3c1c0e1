package cli

import "github.com/spf13/cobra"

func newProbeCmd(*globals) *cobra.Command { return notYet("probe", "Probe") }
