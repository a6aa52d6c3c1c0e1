package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Write or check a config file",
		Long: `A certplan config file is YAML whose keys are the long names of certplan's flags,
so that cron and systemd run "certplan --config FILE renew" with everything in
one place. A flag given on the command line overrides the file. Lists (such as
server-ip) take YAML lists. An unknown key is an error naming the key and line.`,
		Example: `  certplan config init > /etc/certplan/certplan.yaml
  certplan config check /etc/certplan/certplan.yaml
  certplan --config /etc/certplan/certplan.yaml renew`,
	}
	cmd.AddCommand(newConfigInitCmd(g), newConfigCheckCmd(g))
	return cmd
}

func newConfigInitCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented example config file",
		Long: `init writes a config file listing every setting with its help text and default,
commented out, and a few example values to edit: the server's IPs, the domain
source, the account email, the state directory and the deploy hook.`,
		Example: `  certplan config init > certplan.yaml
  certplan config init -o /etc/certplan/certplan.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.Output != "" && g.Output != "-" && !force {
				if _, err := os.Stat(g.Output); err == nil {
					return withHint(fmt.Errorf("%s exists", g.Output), "add --force to replace it")
				}
			}
			w, commit := g.output()
			w.Write(exampleConfig(cmd.Root()))
			return commit()
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing --output file")
	return cmd
}

func newConfigCheckCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "check FILE",
		Short:   "Check a config file: known keys, values of the right type",
		Example: `  certplan config check /etc/certplan/certplan.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("config check takes one argument, the config FILE to check (got %d)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkConfigFile(cmd.Root(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.Stderr, "certplan: %s: ok\n", args[0])
			return nil
		},
	}
}

// checkConfigFile applies every key of path to a fresh command tree, so
// that a value that does not parse as its flag's type is found now rather
// than at 3 a.m. in cron.
func checkConfigFile(root *cobra.Command, path string) error {
	var errs []error
	for _, c := range allCommands(root) {
		g := &globals{Config: path}
		if err := applyConfig(c, g, nil); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return err
			}
			errs = append(errs, err)
		}
	}
	// The same problem is found by every command that has the key: report
	// each line once.
	seen := map[string]bool{}
	var lines []string
	for _, e := range errs {
		for _, l := range strings.Split(e.Error(), "\n") {
			if !seen[l] {
				seen[l] = true
				lines = append(lines, l)
			}
		}
	}
	if len(lines) == 0 {
		return nil
	}
	err := errors.New(strings.Join(lines, "\n"))
	if strings.Contains(err.Error(), "unknown key") {
		return withHint(err, "keys are the long flag names listed by \"certplan <command> --help\"")
	}
	return err
}

func allCommands(root *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{root}
	for _, c := range root.Commands() {
		out = append(out, allCommands(c)...)
	}
	return out
}

// Sections of the example config: the commands in pipeline order. A key
// goes in the section of the first command that has it.
var configSections = []struct{ cmd, title string }{
	{"", "Every command"},
	{"inventory", "Domains and this server (inventory, probe, plan, issue, renew)"},
	{"probe", "Probing the servers (probe, plan, issue, renew, check)"},
	{"plan", "Planning (plan, issue, renew)"},
	{"issue", "The CA, challenges, keys and deployment (issue, renew, revoke)"},
	{"renew", "Renewal (renew)"},
	{"check", "Monitoring (check)"},
	{"emit", "Server configuration and serving paths (emit, issue, renew)"},
}

func hasSection(cmd string) bool {
	for _, s := range configSections {
		if s.cmd == cmd {
			return true
		}
	}
	return false
}

// configExamples are values set (uncommented) in the example, to be edited.
var configExamples = map[string][]string{
	"server-ip":   {"203.0.113.10", "2001:db8::10"},
	"domains":     {"/etc/certplan/domains.txt"},
	"email":       {"postmaster@example.net"},
	"state-dir":   {"/var/lib/certplan"},
	"deploy-hook": {"/etc/certplan/hooks/postfix.sh"},
	"hostname":    {"mail.example.net"},
}

// Keys not worth a line in a config file.
var configSkip = map[string]bool{"help": true, "config": true, "output": true, "force": true, "dry-run": true, "part": true, "check": true, "reason": true, "no-reissue": true, "include-private": true, "mta-sts-port": true, "dane-publish": true}

func exampleConfig(root *cobra.Command) []byte {
	type entry struct {
		flag *pflag.Flag
		cmds []string
	}
	entries := map[string]*entry{}
	section := map[string]string{}
	var visit func(c *cobra.Command, path string)
	visit = func(c *cobra.Command, path string) {
		add := func(f *pflag.Flag) {
			if configSkip[f.Name] || f.Hidden {
				return
			}
			e := entries[f.Name]
			if e == nil {
				e = &entry{flag: f}
				entries[f.Name] = e
			}
			// A flag's section is the first command with a section of
			// its own that has it (certificates has none; state-dir
			// belongs to check's).
			if _, ok := section[f.Name]; !ok && hasSection(path) {
				section[f.Name] = path
			}
			if path != "" && !contains(e.cmds, path) {
				e.cmds = append(e.cmds, path)
			}
		}
		c.PersistentFlags().VisitAll(add)
		c.LocalNonPersistentFlags().VisitAll(add)
		// init writes a config rather than reading one: its flags are
		// issue's and inventory's, or one-time (--include-private).
		for _, s := range c.Commands() {
			if !s.Hidden && s.Name() != "config" && s.Name() != "init" && s.Name() != "help" && s.Name() != "completion" {
				visit(s, strings.TrimSpace(path+" "+s.Name()))
			}
		}
	}
	visit(root, "")
	var b bytes.Buffer
	b.WriteString(`# certplan configuration: "certplan --config FILE <command>".
#
# Keys are the long names of certplan's flags; a flag on the command line
# overrides the file. Lists take YAML lists. A key no command knows is an
# error. Check a file with "certplan config check FILE".
# Written by "certplan config init": edit the uncommented values.
`)
	for _, sec := range configSections {
		var keys []string
		for k, s := range section {
			if s == sec.cmd {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			continue
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, "\n# ---- %s\n", sec.title)
		for _, k := range keys {
			e := entries[k]
			usage := e.flag.Usage
			if _, u := pflag.UnquoteUsage(e.flag); u != "" {
				usage = u
			}
			fmt.Fprintf(&b, "\n# %s\n", usage)
			if len(e.cmds) > 0 && sec.cmd != "" {
				fmt.Fprintf(&b, "# (used by: %s)\n", strings.Join(e.cmds, ", "))
			}
			if ex, ok := configExamples[k]; ok {
				b.WriteString(yamlLine(k, ex, e.flag))
			} else {
				b.WriteString("#" + yamlLine(k, defaultValues(e.flag), e.flag))
			}
		}
	}
	return b.Bytes()
}

func defaultValues(f *pflag.Flag) []string {
	if isSliceFlag(f) {
		d := strings.Trim(f.DefValue, "[]")
		if d == "" {
			return nil
		}
		return strings.Split(d, ",")
	}
	return []string{f.DefValue}
}

func yamlLine(key string, vals []string, f *pflag.Flag) string {
	list := isSliceFlag(f)
	plain := map[string]bool{"int": true, "float64": true, "bool": true}[f.Value.Type()]
	q := func(s string) string {
		if plain {
			return s // numbers and booleans as YAML writes them
		}
		out, _ := yaml.Marshal(s)
		return strings.TrimSpace(string(out))
	}
	if !list {
		v := ""
		if len(vals) > 0 {
			v = vals[0]
		}
		return fmt.Sprintf("%s: %s\n", key, q(v))
	}
	if len(vals) == 0 {
		return key + ": []\n"
	}
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = q(v)
	}
	return fmt.Sprintf("%s: [%s]\n", key, strings.Join(parts, ", "))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
