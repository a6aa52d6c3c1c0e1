package cli

import "github.com/spf13/cobra"

func newIssueCmd(*globals) *cobra.Command { return notYet("issue", "Issue") }
