package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/certplan/certplan/internal/atomicfile"
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
func applyConfig(cmd *cobra.Command, g *globals) error {
	path := g.Config
	if path == "" && g.Getenv != nil {
		path = g.Getenv("CERTPLAN_CONFIG")
	}
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return withHint(fmt.Errorf("config: %w", err), `"certplan config init > certplan.yaml" writes a commented example`)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return nil // an empty file sets nothing
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return fmt.Errorf("config %s:%d: want a mapping of flag names to values", path, top.Line)
	}
	known := allFlagNames(cmd.Root())
	flags := cmd.Flags()
	// Every problem in the file is reported, not only the first.
	var errs []error
	unknown := false
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		key := k.Value
		if key == "config" {
			errs = append(errs, fmt.Errorf("config %s:%d: \"config\" cannot be set from a config file", path, k.Line))
			continue
		}
		if !known[key] {
			errs = append(errs, fmt.Errorf("config %s:%d: unknown key %q", path, k.Line, key))
			unknown = true
			continue
		}
		f := flags.Lookup(key)
		if f == nil || f.Changed {
			continue // another command's setting, or overridden on the command line
		}
		vals, err := configValues(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("config %s:%d: %s: %w", path, v.Line, key, err))
			continue
		}
		if len(vals) > 1 && !isSliceFlag(f) {
			errs = append(errs, fmt.Errorf("config %s:%d: %s takes one value, got a list", path, v.Line, key))
			continue
		}
		for _, s := range vals {
			if err := flags.Set(key, s); err != nil {
				errs = append(errs, fmt.Errorf("config %s:%d: %s: %w", path, v.Line, key, err))
				break
			}
		}
		f.Changed = false // the command line still counts as "not set" for commands that ask
	}
	if len(errs) == 0 {
		return nil
	}
	err = errors.Join(errs...)
	if unknown {
		return withHint(err, "keys are the long flag names listed by \"certplan <command> --help\"")
	}
	return err
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
			out = append(out, c.Value)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("want a value or a list of values")
	}
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
