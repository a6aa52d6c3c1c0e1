package hooks

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// dns-nsupdate.sh, the exec provider's example script, adds its value and
// removes only its own (issue 19: "*.d" and "d" in one order need both
// TXT values at _acme-challenge.d at once). nsupdate is not installed
// here: a stand-in records the commands the script sends it.
func TestNSUpdateScriptAddsAndRemovesItsValue(t *testing.T) {
	dir := t.TempDir()
	got := filepath.Join(dir, "commands")
	fake := filepath.Join(dir, "nsupdate")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"args: $*\" >>"+got+"\ncat >>"+got+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(env []string, args ...string) (string, error) {
		cmd := exec.Command("./dns-nsupdate.sh", args...)
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", "NSUPDATE=" + fake}, env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	env := []string{"NSUPDATE_SERVER=127.0.0.1:5353", "NSUPDATE_KEY=/etc/certplan/tsig.key"}
	const fqdn, value = "_acme-challenge.d.test.", "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"
	for _, op := range []string{"present", "cleanup"} {
		if out, err := run(env, op, fqdn, value); err != nil {
			t.Fatalf("%s: %v\n%s", op, err, out)
		}
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	want := "args: -k /etc/certplan/tsig.key\nserver 127.0.0.1 5353\nupdate add " + fqdn + " 60 IN TXT \"" + value + "\"\nsend\n" +
		"args: -k /etc/certplan/tsig.key\nserver 127.0.0.1 5353\nupdate delete " + fqdn + " IN TXT \"" + value + "\"\nsend\n"
	if string(b) != want {
		t.Errorf("nsupdate got:\n%s\nwant:\n%s", b, want)
	}

	// Bad input is refused before nsupdate runs.
	os.Remove(got)
	for _, args := range [][]string{
		{"present", fqdn, `x" ; update delete d.test. ANY`},
		{"replace", fqdn, value},
		{"present", fqdn},
	} {
		if out, err := run(env, args...); err == nil || !strings.Contains(out, "dns-nsupdate: error:") {
			t.Errorf("%q: %v\n%s", args, err, out)
		}
	}
	if out, err := run(nil, "present", fqdn, value); err == nil || !strings.Contains(out, "NSUPDATE_SERVER") {
		t.Errorf("no server: %v\n%s", err, out)
	}
	if _, err := os.Stat(got); err == nil {
		t.Error("nsupdate ran on bad input")
	}
}
