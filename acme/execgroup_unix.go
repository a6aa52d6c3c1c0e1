//go:build unix

package acme

import (
	"os/exec"
	"syscall"
)

// inGroup runs cmd in a process group of its own and makes cancelling it
// kill the whole group: a script's children (curl, nsupdate, sleep) go
// with it.
func inGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
