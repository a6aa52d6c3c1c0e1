// Package proc runs the admin's programs (deploy hooks, DNS-01 scripts):
// in a process group of their own, killed as a whole when their context
// ends, with the end of their combined output kept.
package proc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// MaxOutput bounds what is kept of a program's output: its last bytes.
const MaxOutput = 64 << 10

// Run runs cmd (made with exec.CommandContext) with stdout and stderr
// combined into a buffer of at most MaxOutput bytes. cmd runs in its own
// process group, and the whole group is killed when the context ends: a
// script's children (curl, nsupdate, a reload) must not outlive it.
// waitDelay bounds the wait for output from a child that left the group
// and kept the pipe open. It returns the output's end and cmd.Run's error.
func Run(cmd *exec.Cmd, waitDelay time.Duration) ([]byte, error) {
	var out TailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	err := cmd.Run()
	return out.Bytes(), err
}

// TailBuffer keeps the last MaxOutput bytes written to it.
type TailBuffer struct{ b bytes.Buffer }

func (t *TailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= MaxOutput {
		t.b.Reset()
		p = p[len(p)-MaxOutput:]
	} else if t.b.Len()+len(p) > MaxOutput {
		keep := t.b.Bytes()[t.b.Len()+len(p)-MaxOutput:]
		rest := append([]byte(nil), keep...)
		t.b.Reset()
		t.b.Write(rest)
	}
	t.b.Write(p)
	return n, nil
}

// Bytes returns what is kept.
func (t *TailBuffer) Bytes() []byte { return t.b.Bytes() }

// LookPath finds a command in $PATH or in the sbin directories, which a
// non-login root shell (cron, a CI job) may lack in $PATH: the test
// servers' daemons (postfix, nsd, unbound) live there.
func LookPath(cmd string) (string, error) {
	if p, err := exec.LookPath(cmd); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, cmd)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found", cmd)
}
