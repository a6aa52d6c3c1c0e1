package cli

import (
	"context"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript scripts run the real command as "certplan".
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"certplan": func() {
			os.Exit(Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
		},
		// dnshook is a DNS-01 exec script (see script_dnshook_test.go).
		"dnshook": dnshookMain,
	})
}

// TestScripts runs testdata/script/*.txtar. Regenerate expected output with
// TESTSCRIPT_UPDATE=1 (see testscript's -update).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup:               scriptSetup,
		Cmds:                scriptCmds,
	})
}
