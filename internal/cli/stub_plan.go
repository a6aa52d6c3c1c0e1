package cli

import "github.com/spf13/cobra"

func newPlanCmd(*globals) *cobra.Command { return notYet("plan", "Plan") }
