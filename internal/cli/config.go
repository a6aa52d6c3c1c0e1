package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certplan/certplan/internal/atomicfile"
	"github.com/certplan/certplan/sources"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// applyConfig reads the YAML config file named by --config (or
// CERTPLAN_CONFIG) and sets every flag of cmd that the file names and the
// command line did not set. Keys are long flag names. The file is strict: a
// key that no certplan command knows is an error naming the key and its
// line; a key that only other commands know is ignored, so one file serves
// every command.
// domainSources are the keys that say which domains to work on. When the
// command line names domains in any way, the file's sources are not added:
// "certplan plan x.test" plans x.test, not x.test and every zone.
var domainSources = []string{"domains", "zones", "source", "inventory"}

func applyConfig(cmd *cobra.Command, g *globals, args []string) error {
	path := g.Config
	if path == "" && g.Getenv != nil {
		path = g.Getenv("CERTPLAN_CONFIG")
	}
	if path == "" {
		return nil
	}
	top, err := readConfigFile(path)
	if top == nil || err != nil {
		return err
	}
	c := configRun{path: path, known: allFlagNames(cmd.Root()), flags: cmd.Flags(), seen: map[string]int{}, cliSources: len(args) > 0}
	for _, k := range domainSources {
		if f := c.flags.Lookup(k); f != nil && f.Changed {
			c.cliSources = true
		}
	}
	// Every problem in the file is reported, not only the first.
	for i := 0; i+1 < len(top.Content); i += 2 {
		c.apply(top.Content[i], top.Content[i+1])
	}
	if len(c.errs) == 0 {
		return nil
	}
	err = errors.Join(c.errs...)
	if c.unknown {
		return withHint(err, "keys are the long flag names listed by \"certplan <command> --help\"")
	}
	return err
}

// readConfigFile reads path's top-level mapping (nil for an empty file).
func readConfigFile(path string) (*yaml.Node, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, withHint(fmt.Errorf("config: %w", err), `"certplan config init > certplan.yaml" writes a commented example`)
	} else if err != nil {
		return nil, withHint(fmt.Errorf("config: %w", err), "run as a user that may read it (certplan renew usually runs as root)")
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file sets nothing
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config %s:%d: want a mapping of flag names to values", path, top.Line)
	}
	return top, nil
}

// configRun is one config file applied to a command's flags.
type configRun struct {
	path       string
	known      map[string]bool // every command's flags
	flags      *pflag.FlagSet  // this command's
	cliSources bool            // domain sources given on the command line
	seen       map[string]int  // key -> line
	errs       []error
	unknown    bool
}

func (c *configRun) fail(line int, format string, a ...any) {
	c.errs = append(c.errs, fmt.Errorf("config %s:%d: "+format, append([]any{c.path, line}, a...)...))
}

// apply sets the flag of one key, unless the command line set it or it is
// another command's.
func (c *configRun) apply(k, v *yaml.Node) {
	key := k.Value
	switch first, dup := c.seen[key]; {
	case key == "config":
		c.fail(k.Line, "\"config\" cannot be set from a config file")
		return
	case key == "output":
		// Every command would write there, check's status line and
		// config init's example included. -o FILE goes on the command line.
		c.fail(k.Line, "\"output\" cannot be set from a config file; give -o FILE on the command line")
		return
	case dup:
		c.fail(k.Line, "%s is set twice (first on line %d); for several values use a YAML list", key, first)
		return
	}
	c.seen[key] = k.Line
	if !c.known[key] {
		c.fail(k.Line, "unknown key %q", key)
		c.unknown = true
		return
	}
	f := c.flags.Lookup(key)
	if f == nil || f.Changed || (c.cliSources && slices.Contains(domainSources, key)) {
		return // another command's setting, or overridden on the command line
	}
	vals, err := configValues(v)
	if err != nil {
		c.fail(v.Line, "%s: %w", key, err)
		return
	}
	if len(vals) > 1 && !isSliceFlag(f) {
		c.fail(v.Line, "%s takes one value, got a list", key)
		return
	}
	for _, s := range vals {
		if err := c.flags.Set(key, s); err != nil {
			c.fail(v.Line, "%s: %s", key, typeError(f, s))
			break
		}
		if err := checkConfigValue(key, s); err != nil {
			c.fail(v.Line, "%s: %w", key, err)
			break
		}
	}
	f.Changed = false // the command line still counts as "not set" for commands that ask
	markFromConfig(f) // but issue and renew tell it from a remembered setting
}

func configValues(v *yaml.Node) ([]string, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		return []string{v.Value}, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(v.Content))
		for _, c := range v.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: list items must be plain values", c.Line)
			}
			if c.Tag == "!!null" || c.Value == "" {
				return nil, fmt.Errorf("line %d: an empty list item", c.Line)
			}
			out = append(out, c.Value)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("want a value or a list of values")
	}
}

// typeError says in words what a flag of f's type takes, for a value that
// does not parse (rather than strconv's "parsing "yes": invalid syntax").
func typeError(f *pflag.Flag, s string) string {
	switch strings.TrimSuffix(strings.TrimSuffix(f.Value.Type(), "Slice"), "Array") {
	case "bool":
		return fmt.Sprintf("%q: want true or false", s)
	case "int", "int64", "uint", "uint64":
		return fmt.Sprintf("%q: want a whole number", s)
	case "float64", "float32":
		return fmt.Sprintf("%q: want a number", s)
	case "duration":
		return fmt.Sprintf("%q: want a duration such as 30s, 5m or 1h30m", s)
	}
	return fmt.Sprintf("%q: not a valid value", s)
}

// checkConfigValue checks what a config value must be beyond its type, so
// that "certplan config check" and every command find it at the file's
// line rather than later: addresses, positive durations and counts, the
// log level.
func checkConfigValue(key, s string) error {
	switch key {
	case "server-ip":
		if _, err := netip.ParseAddr(s); err != nil {
			return fmt.Errorf("%q: not an IP address", s)
		}
	case "timeout", "verify-wait", "hook-timeout":
		if d, err := time.ParseDuration(s); err == nil && d <= 0 {
			return fmt.Errorf("%q: must be positive", s)
		}
	case "concurrency":
		if n, err := strconv.Atoi(s); err == nil && n < 1 {
			return fmt.Errorf("%q: must be at least 1", s)
		}
	case "source":
		if !slices.Contains(sources.Kinds, strings.ToLower(s)) {
			return fmt.Errorf("%q: want one of %s", s, strings.Join(sources.Kinds, ", "))
		}
	case "log-level":
		var l slog.Level
		if err := l.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("%q: want debug, info, warn or error", s)
		}
	}
	return nil
}

func isSliceFlag(f *pflag.Flag) bool {
	t := f.Value.Type()
	return strings.HasSuffix(t, "Slice") || strings.HasSuffix(t, "Array")
}

func allFlagNames(root *cobra.Command) map[string]bool {
	m := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { m[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { m[f.Name] = true })
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	delete(m, "help")
	return m
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteFile(path, data, perm)
}
