package realmail

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/certplan/certplan/internal/proc"
)

// commandTimeout bounds every administrative command (postfix start, doveadm
// reload, openssl): none takes more than a second when things work.
const commandTimeout = 30 * time.Second

// run runs a command and returns its combined output; the error carries the
// output when the command fails.
func run(ctx context.Context, name string, args ...string) (string, error) {
	path, err := proc.LookPath(name)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	s := strings.TrimSpace(out.String())
	if err != nil {
		if s != "" {
			return s, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, s)
		}
		return s, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return s, nil
}

// runTTY runs a command line under script(1), for Postfix: its postfix(1)
// command writes some errors only to a terminal. Without script it runs the
// command directly (those errors still reach the instance's maillog_file).
func runTTY(ctx context.Context, name string, args ...string) (string, error) {
	if _, err := proc.LookPath("script"); err != nil {
		return run(ctx, name, args...)
	}
	path, err := proc.LookPath(name)
	if err != nil {
		return "", err
	}
	line := shellQuote(path)
	for _, a := range args {
		line += " " + shellQuote(a)
	}
	// -e: return the command's exit status; -q: no "Script started" lines.
	// run's error would repeat the whole script(1) line: name the command.
	out, err := run(ctx, "script", "-qec", line, "/dev/null")
	out = strings.ReplaceAll(out, "\r", "")
	if err != nil {
		if out == "" {
			out = err.Error()
		}
		return out, fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), out)
	}
	return out, nil
}
