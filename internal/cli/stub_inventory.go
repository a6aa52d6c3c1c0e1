package cli

import "github.com/spf13/cobra"

func newInventoryCmd(*globals) *cobra.Command { return notYet("inventory", "Inventory") }
