package cli

import "github.com/rogpeppe/go-internal/testscript"

// scriptSetup prepares each script's environment. Servers that scripts need
// (DNS, mail listeners, Pebble) are started by commands in scriptCmds.
func scriptSetup(env *testscript.Env) error {
	env.Setenv("CERTPLAN_CONFIG", "")
	// Under -race, each exit waits a second for the race detector's report
	// unless told not to: scripts run certplan hundreds of times.
	env.Setenv("GORACE", "atexit_sleep_ms=0")
	return nil
}

// scriptCmds are extra commands available to scripts.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){}
