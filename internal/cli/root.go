// Package cli is certplan's command line: cobra commands, flags, the config
// file, output formats and exit codes. It wires flags to the libraries
// (dnscheck, probe, planner, acme) and holds no logic a library test could
// not reach.
//
// Output rules, for every command:
//   - data (tables, JSON, reports) goes to stdout, or to --output FILE,
//     which is written atomically;
//   - status, progress and diagnostics go to stderr;
//   - errors are printed once, as "certplan: error: ..." followed by
//     optional "certplan: hint: ..." lines; lowercase, no trailing period;
//   - exit codes are the Exit* constants, documented in each command's help.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes shared by the commands. `certplan check` uses the Nagios
// convention instead (see its help).
const (
	ExitOK      = 0 // done; nothing wrong found
	ExitFailure = 1 // could not run: bad input, I/O, network or CA failure
	ExitUsage   = 2 // bad flags or arguments
	ExitPartial = 3 // ran, and found or left problems (failed domains, broken names, some certificates not issued)
	ExitLocked  = 4 // another certplan run holds the state lock
)

// annotationUsageExit, on a command, is the exit code for its usage errors
// and failures (ExitUsage, ExitFailure) when it uses other codes.
const annotationUsageExit = "certplan/usage-exit-code"

// exitError carries an exit code and optional hints up to Run.
type exitError struct {
	code  int
	err   error // nil: exit silently with code (the command already reported)
	hints []string
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withHint wraps err so that Run prints hint lines after it.
func withHint(err error, hints ...string) error {
	return &exitError{code: ExitFailure, err: err, hints: hints}
}

// withCode wraps err with an exit code; err may be nil to exit quietly.
func withCode(code int, err error, hints ...string) error {
	return &exitError{code: code, err: err, hints: hints}
}

// usageError reports bad flags or arguments.
func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// globals holds the persistent flags and the process environment. Commands
// read it; tests construct it through Run.
type globals struct {
	Resolvers   []string
	Timeout     time.Duration
	Concurrency int
	Format      string
	LogLevel    string
	Config      string
	Output      string

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Now is the clock for commands that need one; the planner receives its
	// value, never reads it. CERTPLAN_NOW (RFC 3339) overrides it: for previews
	// (renew --dry-run, check at a future date) and for the tests (README).
	Now func() time.Time

	Logger *slog.Logger
}

// commands lists the subcommand constructors, in help order.
var commands = []func(*globals) *cobra.Command{
	newInitCmd,
	newInventoryCmd,
	newProbeCmd,
	newPlanCmd,
	newIssueCmd,
	newRenewCmd,
	newRevokeCmd,
	newRolloverCmd,
	newCheckCmd,
	newConfigCmd,
	newEmitCmd,
	newCertificatesCmd,
}

// Main runs certplan with the process's arguments and environment.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
}

// Run runs certplan with args and returns the exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	g := &globals{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: getenv, Now: time.Now}
	if s := getenv("CERTPLAN_NOW"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			fmt.Fprintf(stderr, "certplan: error: CERTPLAN_NOW=%q: want RFC 3339, such as 2026-11-27T00:00:00Z\n", s)
			return ExitUsage
		}
		g.Now = func() time.Time { return t }
	}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitFailure
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Ctrl-C or SIGTERM: the libraries report "context canceled";
		// say what happened instead. Output files are written only at
		// the end, so none was left half-written.
		fmt.Fprintf(stderr, "certplan: error: interrupted\n")
		if c, _, ferr := root.Find(args); ferr == nil {
			if v, ok := c.Annotations[annotationUsageExit]; ok {
				fmt.Sscan(v, &code) // check: UNKNOWN, not WARNING
			}
		}
		return code
	}
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
	} else if isUsageError(root, args, err) {
		code = ExitUsage
	}
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(stderr, "certplan: error: %s\n", line)
	}
	hinted := false
	for e := err; e != nil; e = errors.Unwrap(e) {
		if x, ok := e.(*exitError); ok {
			for _, h := range x.hints {
				fmt.Fprintf(stderr, "certplan: hint: %s\n", h)
				hinted = true
			}
		}
	}
	usage := code == ExitUsage || isUsageError(root, args, err)
	if code == ExitUsage || code == ExitFailure {
		// A command may map usage errors and failures to its own code
		// (check: Nagios UNKNOWN, where 1 would mean WARNING and 2 CRITICAL).
		if c, _, ferr := root.Find(args); ferr == nil {
			if v, ok := c.Annotations[annotationUsageExit]; ok {
				fmt.Sscan(v, &code)
			}
		}
	}
	if usage && !hinted {
		fmt.Fprintf(stderr, "certplan: hint: run \"%s --help\" for usage\n", commandPath(root, args))
	}
	return code
}

// flagErr marks errors from cobra's flag parsing (SetFlagErrorFunc).
type flagErr struct{ error }

// argsErr marks errors from a command's positional-argument validator
// (cobra.ExactArgs and friends; see tagArgs).
type argsErr struct{ error }

func (e argsErr) Unwrap() error { return e.error }
func (e flagErr) Unwrap() error { return e.error }

// tagArgs wraps the Args validator of cmd and of every command below it so
// that what they return is recognisably a usage error.
func tagArgs(cmd *cobra.Command) {
	if v := cmd.Args; v != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := v(c, args); err != nil {
				return argsErr{err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		tagArgs(sub)
	}
}

// isUsageError reports errors of parsing the command line: a bad flag, bad
// positional arguments, or an unknown command. Cobra returns the last as a
// plain error from its command lookup (Find), so it is recognised by
// provenance: after Execute, when looking args up fails, Execute failed
// there too (the lookup is deterministic, and it is Execute's first step).
func isUsageError(root *cobra.Command, args []string, err error) bool {
	var fe flagErr
	var ae argsErr
	if errors.As(err, &fe) || errors.As(err, &ae) {
		return true
	}
	_, _, ferr := root.Find(args)
	return ferr != nil
}

func commandPath(root *cobra.Command, args []string) string {
	c, _, err := root.Find(args)
	if err != nil {
		return root.Name()
	}
	return c.CommandPath()
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "certplan",
		Short: "Plan, issue and renew the certificates of a shared mail server",
		Long: `certplan finds every name that mail clients use to reach a shared mail server
(MX and SRV targets, mail./smtp./imap. names, autoconfig and autodiscover), shows
what each client gets today with and without SNI, plans the certificates that
make every name verify for every client, issues them through ACME, deploys
them and renews them from cron.

Every stage reads and writes a versioned JSON document, so it can run alone:
inventory -> probe -> plan -> issue (deploy, verify) -> renew.

Every flag can also be set in a YAML config file (--config), keyed by the
flag's long name; flags on the command line win.`,
		Example: `  # Try it on the built-in lab (loopback only):
  go run ./examples/lab

  # Which names do clients use for these domains, and do they point here?
  certplan inventory --server-ip 203.0.113.10 --domains domains.txt

  # What does each client see today, with and without SNI?
  certplan probe --inventory inv.json --ports 25,587,465,993`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			// "config init" and "config check" work on config files: a
			// missing or broken one in --config or CERTPLAN_CONFIG must not
			// stop them (init is what its error hint suggests).
			if p := cmd.Parent(); p == nil || p.Name() != "config" {
				if err := applyConfig(cmd, g, args); err != nil {
					return err
				}
			}
			if err := g.setup(); err != nil {
				return err
			}
			// Find an unwritable --output before the work, not after it.
			return checkOutputPath("--output", g.Output)
		},
	}
	pf := root.PersistentFlags()
	pf.StringArrayVar(&g.Resolvers, "resolver", nil, "DNS resolver `host:port` to query (repeatable; default: the system's resolv.conf)")
	pf.DurationVar(&g.Timeout, "timeout", 5*time.Second, "timeout for one network operation (a DNS query, a handshake)")
	pf.IntVar(&g.Concurrency, "concurrency", 64, "how many lookups or handshakes run at once")
	pf.StringVar(&g.Format, "format", "text", "output format: text or json (plan also: html, markdown)")
	pf.StringVar(&g.LogLevel, "log-level", "warn", "diagnostics on stderr: debug, info, warn or error")
	pf.StringVar(&g.Config, "config", "", "YAML config `file` whose keys are long flag names (env CERTPLAN_CONFIG)")
	pf.StringVarP(&g.Output, "output", "o", "", "write the output to `file` (atomically; a device, named pipe or symbolic link such as /dev/null is written in place) instead of stdout")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return flagErr{err} })
	for _, newCmd := range commands {
		root.AddCommand(newCmd(g))
	}
	addVersion(root, g)
	tagArgs(root)
	return root
}

// setup validates the global flags and builds the logger.
func (g *globals) setup() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.LogLevel)); err != nil {
		return usageError("--log-level %q: want debug, info, warn or error", g.LogLevel)
	}
	g.Logger = slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: level}))
	if g.Timeout <= 0 {
		return usageError("--timeout %s: must be positive", g.Timeout)
	}
	if g.Concurrency < 1 {
		return usageError("--concurrency %d: must be at least 1", g.Concurrency)
	}
	return nil
}

// checkFormat returns a usage error unless --format is one of allowed.
func (g *globals) checkFormat(allowed ...string) error {
	for _, a := range allowed {
		if g.Format == a {
			return nil
		}
	}
	return usageError("--format %q: want %s", g.Format, strings.Join(allowed, ", "))
}

// output returns where data goes and a function that commits it: stdout, or
// an atomic write of --output when commit is called. Call commit once, after
// all data is written; on error nothing is written to --output.
func (g *globals) output() (w io.Writer, commit func() error) {
	if g.Output == "" || g.Output == "-" {
		return g.Stdout, func() error { return nil }
	}
	var buf strings.Builder
	return &buf, func() error {
		return writeOutputFile("--output", g.Output, []byte(buf.String()), 0o644)
	}
}

// checkOutputPath checks, before a command does its work, that path (the
// value of flag, such as --output or --prom-file) can be written: not a
// directory, in a directory that exists and where a file can be created.
// "" and "-" (stdout) pass.
func checkOutputPath(flag, path string) error {
	if path == "" || path == "-" {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return usageError("%s %s: is a directory; give a file name, such as %s", flag, path, filepath.Join(path, "certplan.out"))
	}
	if inPlace(path) {
		return nil // written where it is: its directory needs no new file
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return withHint(fmt.Errorf("%s %s: directory %s does not exist", flag, path, dir), "create it first (mkdir -p "+dir+"), or write elsewhere")
	case err != nil:
		return withHint(fmt.Errorf("%s %s: %w", flag, path, err), "write the file somewhere this user can reach")
	case !fi.IsDir():
		return usageError("%s %s: %s is not a directory", flag, path, dir)
	}
	f, err := os.CreateTemp(dir, ".certplan-check-*")
	if err != nil {
		return withHint(fmt.Errorf("%s %s: cannot create files in %s: %w", flag, path, dir, errors.Unwrap(err)), "run as a user that may write there, or write elsewhere")
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// inPlace reports whether an output path names something written where
// it is rather than replaced: a device (/dev/null), a named pipe, or a
// symbolic link (/dev/stdout, or a link the admin made to a file).
// Renaming a new file over it, as the atomic write does, would replace
// the device or the link itself: run as root, "-o /dev/null" turned the
// machine's /dev/null into a regular file.
func inPlace(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && !fi.Mode().IsRegular() && !fi.IsDir()
}

// openInPlace opens an inPlace path for writing, through a link; a
// regular file at its end is truncated (not atomic: the link's choice).
func openInPlace(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
}

// writeInPlace writes data to an inPlace path.
func writeInPlace(path string, data []byte, _ os.FileMode) error {
	f, err := openInPlace(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeOutputFile writes path atomically (in place when inPlace), with
// errors that name flag and path rather than the temporary file.
func writeOutputFile(flag, path string, data []byte, perm os.FileMode) error {
	if err := checkOutputPath(flag, path); err != nil {
		return err
	}
	write := writeFileAtomic
	if inPlace(path) {
		write = writeInPlace
	}
	if err := write(path, data, perm); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return nil
}
