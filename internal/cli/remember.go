package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/certplan/certplan/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// rememberedKeys are the settings issue and renew keep in the state
// directory (store.Settings) after applying a plan, so that "certplan
// renew" from cron needs no flags: what the inventory, the plan, the CA,
// the challenge, the deploy and its verification were given. Per-run
// switches (--dry-run, --no-verify, --jitter, --max-orders, ...), the
// state directory itself, --agree-tos and the EAB credentials (the
// account is registered once) are not kept.
var rememberedKeys = []string{
	"domains", "zones", "source", "root", "server-ip", "resolver", "ca-identifier",
	"hostname", "include", "exclude", "max-names", "profile", "default-cert", "wildcards", "wildcard-zones",
	"ca", "ca-roots", "issuer-roots", "email", "key-type", "reuse-key",
	"challenge", "http-listen", "http-port", "webroot", "webroot-map", "dns-provider", "dns-resolver", "tls-listen",
	"deploy-hook", "hook-timeout", "live-dir", "key-group", "ports", "ca-file",
	"mta-sts-ca", "no-mta-sts", "mta-sts-port",
}

// rememberedSources are the domain sources among them: they go together, so
// that a command line or config naming any domain source (or domains as
// arguments) replaces all the remembered ones, rather than adding to them.
var rememberedSources = []string{"domains", "zones", "source", "root"}

// annotationFromConfig marks a flag that applyConfig set from the config file.
const annotationFromConfig = "certplan/from-config"

func markFromConfig(f *pflag.Flag) {
	if f.Annotations == nil {
		f.Annotations = map[string][]string{}
	}
	f.Annotations[annotationFromConfig] = []string{"true"}
}

// flagGiven reports whether the command line or the config file set f.
func flagGiven(f *pflag.Flag) bool {
	_, fromConfig := f.Annotations[annotationFromConfig]
	return f.Changed || fromConfig
}

// flagValues are f's values as the command line would give them.
func flagValues(f *pflag.Flag) []string {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.GetSlice()
	}
	return []string{f.Value.String()}
}

// recall sets, from the settings the state directory kept, every
// remembered setting that neither the command line nor the config file
// gives, and reports on stderr each one they give differently (one line
// each). It records in o.settings what to keep after this run applies its
// plan. A plan file (--plan) is applied as it is: nothing is recalled or kept.
func (o *applyOptions) recall(cmd *cobra.Command, g *globals, args []string) ([]string, error) {
	if o.planFile != "" {
		return args, nil
	}
	flags := cmd.Flags()
	prev := o.loadSettings()
	sourcesGiven := len(args) > 0 || o.inv.InventoryFile != ""
	for _, k := range rememberedSources {
		if f := flags.Lookup(k); f != nil && flagGiven(f) {
			sourcesGiven = true
		}
	}
	o.settings = store.Settings{}
	for _, key := range rememberedKeys {
		f := flags.Lookup(key)
		if f == nil {
			continue // --default-cert, before it exists
		}
		old, had := prev[key]
		given := flagGiven(f) || sourcesGiven && slices.Contains(rememberedSources, key)
		if !given && had {
			for _, v := range old {
				if err := flags.Set(key, v); err != nil {
					return nil, withHint(fmt.Errorf("remembered setting %s %q: %s", key, v, typeError(f, v)),
						"give --"+key+" (or set it in the config file); the next run that applies a plan keeps the new value")
				}
			}
		}
		if !given && !had {
			continue
		}
		now := flagValues(f)
		if prev != nil && given {
			if !had {
				old = defaultValues(f)
			}
			if showValues(old) != showValues(now) {
				fmt.Fprintf(g.Stderr, "certplan: note: %s changed since the last applied run: %s -> %s\n", key, showValues(old), showValues(now))
			}
		}
		if flagGiven(f) || had {
			o.settings[key] = now
		}
	}
	return o.recallArgs(g, prev, args, sourcesGiven), nil
}

// recallArgs are the domains given as arguments, remembered under the
// key "arguments" as the domain source they are.
func (o *applyOptions) recallArgs(g *globals, prev store.Settings, args []string, sourcesGiven bool) []string {
	old, had := prev[argumentsKey]
	switch {
	case !sourcesGiven && had:
		args = old
	case len(args) > 0 && had && !slices.Equal(old, args):
		fmt.Fprintf(g.Stderr, "certplan: note: the domain arguments changed since the last applied run: %s -> %s\n", showValues(old), showValues(args))
	}
	if len(args) > 0 {
		o.settings[argumentsKey] = args
	}
	return args
}

// argumentsKey keeps the domains given as arguments; no flag has its name.
const argumentsKey = "arguments"

// loadSettings reads the remembered settings; none when the state
// directory is new, unsafe (opening it for the run reports that) or holds
// none yet.
func (o *applyOptions) loadSettings() store.Settings {
	if store.CheckDir(o.stateDir) != nil {
		return nil
	}
	st, err := store.OpenReadOnly(o.stateDir)
	if err != nil {
		return nil
	}
	defer st.Close()
	s, err := st.LoadSettings()
	if err != nil {
		return nil
	}
	return s
}

// keepSettings stores o.settings after a run applied its plan. Failing to
// is a warning: the certificates are issued, only the next flagless renew
// would miss them.
func (o *applyOptions) keepSettings(g *globals, st *store.Store) {
	if o.settings == nil || st == nil || o.dryRun {
		return
	}
	err := st.Lock()
	if err == nil {
		err = st.SaveSettings(o.settings)
		if uerr := st.Unlock(); err == nil {
			err = uerr
		}
	}
	if err != nil && !errors.Is(err, store.ErrLocked) {
		fmt.Fprintf(g.Stderr, "certplan: warning: the settings of this run were not kept for renew: %v\n", err)
	}
}

func showValues(v []string) string {
	if len(v) == 0 || len(v) == 1 && v[0] == "" {
		return "(not set)"
	}
	return strings.Join(v, ",")
}
