package cli

import "github.com/spf13/cobra"

func newRenewCmd(*globals) *cobra.Command { return notYet("renew", "Renew") }
