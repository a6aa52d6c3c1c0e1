package cli

import (
	"os/exec"
	"strings"
	"testing"
)

// floors is the README's layout table: a library imports only packages on
// lower floors; the commands and the test servers are not on any floor, and
// no library may import them.
var floors = map[string]int{
	"model": 0, "names": 0, "detect": 0, "internal/atomicfile": 0, "internal/proc": 0,
	"store": 1, "dnscheck": 2, "mtasts": 1, "planner": 1, "sources": 1, "deploy": 1, "dane": 1,
	"acme": 2, "emit": 2, "monitor": 2, "probe": 2, "rollover": 2,
	"apply":  3,
	"report": 4,
}

// TestLayoutFloors checks the import graph against floors with go list, so
// that the README's table stays true.
func TestLayoutFloors(t *testing.T) {
	const mod = "github.com/certplan/certplan/"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		floor, library := floors[pkg]
		for _, imp := range f[1:] {
			dep, ok := strings.CutPrefix(imp, mod)
			if !ok || !library {
				continue
			}
			depFloor, onFloor := floors[dep]
			switch {
			case !onFloor:
				t.Errorf("%s (floor %d) imports %s, which is on no floor (a command or a test server)", pkg, floor, dep)
			case depFloor >= floor:
				t.Errorf("%s (floor %d) imports %s (floor %d): only lower floors (README, Layout)", pkg, floor, dep, depFloor)
			}
		}
		if !library && !strings.HasPrefix(pkg, "internal/") && !strings.HasPrefix(pkg, "cmd/") &&
			!strings.HasPrefix(pkg, "bench") && !strings.HasPrefix(pkg, "examples/") && pkg != "e2e" && !strings.HasPrefix(pkg, "packaging/") {
			t.Errorf("package %s is on no floor: add it to the README's layout table and to floors", pkg)
		}
	}
}
