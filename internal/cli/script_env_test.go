package cli

import "github.com/rogpeppe/go-internal/testscript"

// scriptSetup prepares each script's environment. Servers that scripts need
// (DNS, mail listeners, Pebble) are started by commands in scriptCmds.
func scriptSetup(env *testscript.Env) error {
	env.Setenv("CERTPLAN_CONFIG", "")
	return nil
}

// scriptCmds are extra commands available to scripts.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){}
