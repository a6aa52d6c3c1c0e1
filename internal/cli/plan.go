package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/report"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// planOptions are the flags of "certplan plan".
type planOptions struct {
	inv   inventoryInput
	probe probeInput
	planFlags
	Previous string
	Profile  string
	// DNSProvider is issue's --dns-provider, read here for --wildcards
	// auto (the config file gives plan, issue and renew the same).
	DNSProvider string
}

// planFlags are the planning policy flags that plan, issue and renew share.
type planFlags struct {
	MaxNames     int
	MaxPerDomain int
	Repack       bool
	Include      []string
	Exclude      []string
	Hostname     string
	// DefaultCert is planner.DefaultCertPerIP or planner.DefaultCertShared.
	DefaultCert string
	// Wildcards is planner.WildcardsNever, WildcardsAuto or WildcardsAlways;
	// WildcardZones the zones auto may use.
	Wildcards     string
	WildcardZones []string
	// dns01 is set by the command: a DNS-01 provider is configured
	// (--dns-provider), which auto without zones reads as "every hosted
	// zone".
	dns01 bool
}

func (p *planFlags) addFlags(fs *pflag.FlagSet) {
	fs.IntVar(&p.MaxNames, "max-names", 0, "at most `n` names per certificate, overriding the profile's limit (for CAs other than Let's Encrypt)")
	fs.IntVar(&p.MaxPerDomain, "max-names-per-domain", 0, "at most `n` names of one client domain on a default certificate while other domains' names wait (default max(3, limit/20); MX hosts of several domains or pinned by DANE do not count)")
	fs.BoolVar(&p.Repack, "repack", false, "fill every certificate afresh, fairly, instead of leaving names where the previous plan put them (IDs are kept where a certificate continues)")
	fs.StringArrayVar(&p.Include, "include", nil, "a `name` the plan must cover even if DNS does not list it (repeatable)")
	fs.StringArrayVar(&p.Exclude, "exclude", nil, "leave out names matching `pattern`, such as autodiscover.* or *.example.test (repeatable)")
	fs.StringVar(&p.Hostname, "hostname", "", "the server's own `name` (Postfix myhostname): must-cover, first in line for every default certificate")
	fs.StringVar(&p.Wildcards, "wildcards", planner.WildcardsNever, "wildcard `mode`: never, auto (\"*.domain\" for two or more names under a domain in --wildcard-zones, or in every hosted zone when --dns-provider is set and no zone is listed) or always (every zone: DNS-01 works for all); CAA issuewild is honoured, and the orders need DNS-01")
	fs.StringArrayVar(&p.WildcardZones, "wildcard-zones", nil, "a `zone` whose TXT records the DNS-01 provider can write, for --wildcards auto: the zone and every name under it (repeatable)")
	fs.StringVar(&p.DefaultCert, "default-cert", planner.DefaultCertPerIP, "default certificate `mode`: per-ip (one per server IP, for servers that choose it by the address dialled, such as Postfix and Dovecot) or shared (one for every IP, as cPanel's Exim and Dovecot have: --source cpanel with several IPs needs it)")
}

// policy is the planner policy for these flags; profile "" is the CA's
// default, Let's Encrypt's classic.
func (p *planFlags) policy(inv *inventoryInput, profile string, caSet bool) (planner.Policy, error) {
	if profile == "" {
		profile = planner.ProfileClassic
	}
	if _, ok := planner.ProfileLimits[profile]; !ok && p.MaxNames == 0 {
		return planner.Policy{}, usageError("--profile %q: the name limit of classic (100), tlsserver and shortlived (25) is known; for another profile give --max-names", profile)
	}
	if p.MaxNames < 0 {
		return planner.Policy{}, usageError("--max-names %d: must be positive", p.MaxNames)
	}
	if p.MaxPerDomain < 0 {
		return planner.Policy{}, usageError("--max-names-per-domain %d: must be positive", p.MaxPerDomain)
	}
	if p.DefaultCert != planner.DefaultCertPerIP && p.DefaultCert != planner.DefaultCertShared {
		return planner.Policy{}, usageError("--default-cert %q: want per-ip (a default certificate per server IP) or shared (one for every IP)", p.DefaultCert)
	}
	switch p.Wildcards {
	case planner.WildcardsNever, planner.WildcardsAuto, planner.WildcardsAlways:
	default:
		return planner.Policy{}, usageError("--wildcards %q: want never, auto (for --wildcard-zones, or every hosted zone with --dns-provider) or always", p.Wildcards)
	}
	for _, z := range p.WildcardZones {
		if _, err := planner.WildcardZone(z); err != nil {
			return planner.Policy{}, withCode(ExitUsage, fmt.Errorf("--wildcard-zones %v", err), "a zone is a domain name such as example.com: it matches itself and every name under it")
		}
	}
	// Check names and patterns now, in words, before the inventory and the
	// probe take their minutes.
	check := func(flag, n string) error {
		if _, err := names.Normalize(n); err != nil {
			return withCode(ExitUsage, fmt.Errorf("%s %v", flag, err), flag+" takes a full host name, such as mail.example.com")
		}
		return nil
	}
	if p.Hostname != "" {
		if err := check("--hostname", p.Hostname); err != nil {
			return planner.Policy{}, err
		}
	}
	for _, n := range p.Include {
		if err := check("--include", n); err != nil {
			return planner.Policy{}, err
		}
	}
	for _, x := range p.Exclude {
		if _, err := planner.ParsePattern(x); err != nil {
			return planner.Policy{}, withCode(ExitUsage, fmt.Errorf("--exclude %v", err),
				`a pattern is a name whose "*" labels stand for one or more labels, such as autodiscover.* or *.example.test`)
		}
	}
	pol := planner.Policy{ServerIPs: inv.ServerIPs, Profile: profile, MaxNames: p.MaxNames,
		Hostname: p.Hostname, Include: p.Include, Exclude: p.Exclude,
		MaxNamesPerDomain: p.MaxPerDomain, Repack: p.Repack, DefaultCert: p.DefaultCert,
		Wildcards: p.Wildcards, WildcardZones: p.WildcardZones, DNS01: p.dns01}
	if caSet {
		pol.CAIdentifier = inv.CAIdentifier
	}
	return pol, nil
}

// newPlanCmd is long for its help text (what plan reads and decides, the
// exclusion codes, the key line, examples) and its flags; the work is in
// runPlan and the planner.
func newPlanCmd(g *globals) *cobra.Command {
	o := &planOptions{}
	cmd := &cobra.Command{
		Use:   "plan [domain...]",
		Short: "Plan the certificates that make every name verify, with and without SNI",
		Long: `Plan computes the certificates the server needs: for each server IP a default
certificate listing every planned name that resolves to it (clients without SNI
get that one), and SNI certificates for the names that do not fit. It explains
every name left out (points elsewhere, no address, CAA forbids the CA, failed
lookup, --exclude, wildcard-only, dane-pinned), and with a probe shows what each
client gets today and after.

A name whose key DANE TLSA records pin goes only on a certificate whose key
they already list (3 1 1), or stays on the one that served it; otherwise it is
left out as "dane-pinned" with the records to publish, and the rest is planned.
The text shows each certificate's key decision (key: keep or next).

A conventional name (smtp., imap., pop., autoconfig., autodiscover.) that
resolves only as its domain's wildcard record does, and that no MX, SRV or
MTA-STS record names, is left out as "wildcard-only": a wildcard makes every
such name resolve, whether or not clients were ever given it. mail.<domain>
stays; --include NAME plans one anyway.

It reads a saved inventory and probe (--inventory, --probe) or runs them. With
--previous, names stay in the certificate they are in, new names fill
certificates with room, and unchanged certificates keep their name set and ID,
so renewals stay inside the CA's rate-limit exemptions.

A client without SNI (most MTAs) gets the IP's default certificate, so when
not every name fits it is filled fairly: every client domain's MX targets
before any domain's other names, then submission names, then the rest,
round-robin across domains, one domain holding at most --max-names-per-domain
names while others wait (an MX host of several domains, or one pinned by DANE,
does not count). With --previous names stay where they are unless --repack.

DANE and MTA-STS: a certificate with a name whose key TLSA records pin
(validated 3 1 1 or 1 x x at _25._tcp, or a lookup that failed: an unknown
state counts as pinned) keeps its key ("key": "keep" in the JSON plan), or
takes its staged next key once that key's record is published and validated
("key": "next"). DANE-TA records (2 x x) that pin an intermediate rather
than the CA's root are warned about (dane-ta), with the records for the
roots. MX hosts an MTA-STS enforce policy lists come first on the default
certificate, like --hostname.

The name limit per certificate comes from the ACME profile (classic 100,
tlsserver and shortlived 25) unless --max-names sets it. --exclude takes
patterns where a "*" label stands for one or more labels: "autodiscover.*"
leaves out autodiscover.<any domain>, "*.example.test" every name below
example.test. Must-cover names (--hostname, --include) are never excluded by a
pattern, and are planned on every server IP when the inventory lacks them.

--wildcards auto plans "*.domain" in place of two or more names one label
under the same domain (mail., smtp., imap., ...), so that the default
certificate covers about six times more domains for clients without SNI: for
the zones given with --wildcard-zones (the zones the DNS-01 provider can
write), or every hosted zone when --dns-provider is set and no zone is given.
--wildcards always uses every zone. Names deeper than one label, the domain
itself (an apex MX), must-cover names and names whose CAA forbids a wildcard
(issuewild) stay explicit; warnings say which names each wildcard replaced.
Wildcards are issued through DNS-01 only (see certplan issue).

--default-cert shared plans one default certificate for every server IP (its
most important names up to the limit, the hostname first), for servers with
one default certificate whatever the address, such as cPanel's Exim and
Dovecot; the default, per-ip, plans one per IP (IPs with the same names share
it).

Formats: text (a summary, then details), json (the plan document for
"certplan issue" and --previous), markdown, and html (one self-contained file
with the before/after coverage matrix).

Exit status:
  0  plan made (names excluded or SNI-only are listed, not an error)
  1  could not run: unreadable input, bad document; or the plan is refused
     because it would stop inbound mail: a name whose key DANE TLSA records
     pin would get another key (the records to publish are named), or an MX
     host an MTA-STS enforce policy lists would not fit on its IP's default
  2  bad flags or arguments
  3  plan made, but a must-cover name (--hostname, --include) cannot be
     planned, or some domains failed their DNS lookups`,
		Example: `  # Plan from saved documents, write the JSON plan and an HTML report:
  certplan plan --inventory inv.json --probe probe.json --hostname mail.hoster.example --format json -o plan.json
  certplan plan --inventory inv.json --probe probe.json --format html -o report.html

  # Replan against the plan in use, with the 25-name profile, leaving out autodiscover names:
  certplan plan --inventory inv.json --no-probe --previous plan.json --profile tlsserver --exclude 'autodiscover.*'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Without --ca-identifier (on the command line or in the config), the
			// plan is for the CA the inventory checked CAA for.
			caSet := cmd.Flags().Changed("ca-identifier") || o.inv.CAIdentifier != cmd.Flags().Lookup("ca-identifier").DefValue
			return runPlan(cmd.Context(), g, o, caSet, args)
		},
	}
	fs := cmd.Flags()
	o.inv.addFlags(fs, true)
	o.probe.addFlags(fs, true)
	fs.StringVar(&o.Previous, "previous", "", "the JSON plan in use (`file`): keep its certificates' name sets and IDs where possible")
	fs.StringVar(&o.DNSProvider, "dns-provider", "", "the DNS-01 `provider` \"certplan issue\" uses: with --wildcards auto and no --wildcard-zones, wildcards for every hosted zone")
	fs.StringVar(&o.Profile, "profile", planner.ProfileClassic, "ACME profile, for the names-per-certificate limit: classic (100), tlsserver (25), shortlived (25)")
	o.planFlags.addFlags(fs)
	return cmd
}

func runPlan(ctx context.Context, g *globals, o *planOptions, caSet bool, args []string) error {
	if err := g.checkFormat("text", "json", "markdown", "html"); err != nil {
		return err
	}
	if !o.inv.given(args) {
		return usageError("plan needs names: --inventory FILE, or domains as arguments, --domains FILE, --zones DIR or --source KIND")
	}
	if o.probe.NoProbe && o.probe.ProbeFile != "" {
		return usageError("--probe and --no-probe: give one")
	}
	o.dns01 = o.DNSProvider != ""
	pol, err := o.policy(&o.inv, o.Profile, caSet)
	if err != nil {
		return err
	}
	// The inventory is one large structure that lives until the plan is
	// made; the garbage collector's default headroom (GOGC=100: the heap
	// may grow to twice what is live) would reserve as much again beside
	// it. Half that keeps plan --inventory under the targets of
	// bench/README.md, 300 MiB at 100,000 domains and 2.5 GiB at
	// 1,000,000 (2.6 GiB with the default), for about 5 % more CPU.
	defer debug.SetGCPercent(debug.SetGCPercent(planGCPercent))
	inv, pr, prev, err := o.inputs(ctx, g, pol.Hostname, args)
	if err != nil {
		return err
	}
	pol.Keys = daneKeys(nil, prev, cmp.Or(pol.CAIdentifier, inv.CAIdentifier))
	plan, err := planner.Plan(inv, pr, pol, prev, g.Now())
	if err != nil {
		return planError(err)
	}
	inputWarnings(plan, inv)
	exit := planExit(plan, inv)
	if g.Format == "json" {
		// The JSON plan needs nothing more of the inventory: collect it
		// now, while little else is live (marking costs what is live), so
		// that the encoding's buffers (the plan's JSON twice, compact and
		// indented) reuse its memory instead of coming on top of it.
		inv = nil
		runtime.GC()
	}
	if err := writePlan(g, plan, inv); err != nil {
		return err
	}
	return exit
}

// planGCPercent is plan's GOGC (see runPlan).
const planGCPercent = 50

// inputs reads or computes plan's inventory, probe and previous plan.
func (o *planOptions) inputs(ctx context.Context, g *globals, hostname string, args []string) (*model.Inventory, *model.ProbeReport, *model.Plan, error) {
	o.inv.forPlan = true
	inv, err := o.inv.load(ctx, g, args)
	if err != nil {
		return nil, nil, nil, err
	}
	o.probe.Hostname = hostname
	pr, err := o.probe.load(ctx, g, inv)
	if err != nil {
		return nil, nil, nil, err
	}
	var prev *model.Plan
	if o.Previous != "" {
		prev = &model.Plan{}
		if err := readDocument("--previous", o.Previous, model.KindPlan, prev); err != nil {
			return nil, nil, nil, err
		}
	}
	return inv, pr, prev, nil
}

// writePlan renders the plan in --format to stdout or --output; inv is
// read by the reports (text, markdown, html) alone.
func writePlan(g *globals, plan *model.Plan, inv *model.Inventory) error {
	var b []byte
	switch g.Format {
	case "json":
		var err error
		if b, err = model.Marshal(plan); err != nil {
			return err
		}
	case "markdown":
		b = report.Markdown(plan, inv)
	case "html":
		b = report.HTML(plan, inv)
	default:
		b = report.Text(plan, inv)
	}
	w, commit := g.output()
	if _, err := w.Write(b); err != nil {
		return err
	}
	return commit()
}

// planExit is ExitPartial when a must-cover name is excluded or domains
// failed their lookups, else nil.
func planExit(plan *model.Plan, inv *model.Inventory) error {
	var problems []string
	if m := report.Summarize(plan).MustCoverExcluded; len(m) > 0 {
		problems = append(problems, "must-cover names cannot be planned: "+strings.Join(m, ", "))
	}
	failed := 0
	for _, d := range inv.Domains {
		if d.Error != "" {
			failed++
		}
	}
	if failed > 0 {
		what := fmt.Sprintf("%d domains failed their DNS lookups: their names may be missing from the plan", failed)
		if failed == 1 {
			what = "1 domain failed its DNS lookups: its names may be missing from the plan"
		}
		problems = append(problems, what)
	}
	if n := len(inv.InputErrors); n > 0 {
		problems = append(problems, fmt.Sprintf("%s (the plan's input-error warnings): the domains they would have named are not planned", plural(n, "input error")))
	}
	if len(problems) == 0 {
		return nil
	}
	return withCode(ExitPartial, errors.New(strings.Join(problems, "; ")),
		"the plan's excluded names say why and how to fix it; plan again once fixed")
}
