package cli

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/certplan/certplan/dnscheck"
	"github.com/certplan/certplan/model"
	"github.com/spf13/cobra"
)

// newInventoryCmd is long for its help text (what the inventory asks, the
// exit codes, examples); the wiring is a few lines, the work in dnscheck.
func newInventoryCmd(g *globals) *cobra.Command {
	var in inventoryInput
	cmd := &cobra.Command{
		Use:   "inventory [domain...]",
		Short: "Find, over DNS, every name mail clients use to reach the hosted domains",
		Long: `inventory finds every name that mail clients and MTAs use to reach the hosted
domains: MX targets (except a null MX), the targets of the _submission,
_submissions, _imap, _imaps, _pop3, _pop3s and _autodiscover SRV records
(except "."), the conventional names mail., smtp., imap., pop., autoconfig. and
autodiscover. that resolve, and mta-sts. when _mta-sts has a "v=STSv1" record.
A domain with a wildcard record (*.domain) makes every conventional name
resolve: one lookup of a name that cannot exist detects it, and the
conventional names that resolve just like it are marked "wildcard" (plan
leaves them out unless a record names them or they are mail.<domain>).

For each name it shows the CNAME chain, the addresses, whether they are this
server's (--server-ip: all, some or none), the CAA verdict for the CA
(RFC 8659: the closest CAA set climbing towards the root, following CNAMEs),
and for MX targets the DANE TLSA records at _25._tcp.<name>. CAA and TLSA are
looked up only for names that may go on a certificate: those that point here
(or whose lookup failed, or all when no --server-ip is given); the others show
"-" in the CAA column.

For a domain with an _mta-sts record (RFC 8461) it fetches the MTA-STS policy,
as a sending MTA would: https://mta-sts.<domain>/.well-known/mta-sts.txt at the
addresses the inventory found for mta-sts.<domain>, the certificate verified
(trusting the system's roots plus --mta-sts-ca), no redirect followed, only
text/plain, at most 64 KiB and 10 seconds each, 16 at once beside the DNS
lookups. It records the mode, max_age and mx patterns (senders in enforce mode
refuse an MX whose certificate does not match them), or why the fetch failed;
a failed fetch is not a failed domain. --no-mta-sts fetches none.

It asks only what the answers leave open: no AAAA after an A NXDOMAIN (the
name does not exist), and _tcp.<domain> before the seven SRV owners below it,
which are not asked when it answers NXDOMAIN (RFC 8020: nothing exists below
a name that does not exist). A name server that wrongly answers NXDOMAIN for
an empty non-terminal would hide the SRV records that way: --no-nxdomain-cut
asks them all. The summary counts the DNS queries by type, to size --qps.

Domains come from arguments, --domains FILE (one a line, # comments, - for
stdin), --zones DIR (BIND zone files such as cPanel's /var/named/*.db; the
origin of each *.db or *.zone file is a hosted domain: its $ORIGIN, else the
file name) and --source KIND, the server's own files under --root (default /):
  cpanel       /etc/userdomains, /etc/localdomains, /etc/secondarymx, less
               /etc/remotedomains; docroots from /var/cpanel/userdata
  directadmin  /etc/virtual/domains
  postfix      mydestination, virtual_mailbox_domains, virtual_alias_domains
               and relay_domains of /etc/postfix/main.cf, with the files and
               hash:/texthash:/lmdb:/btree: tables they name
  exim         dc_other_hostnames and dc_relay_domains of Debian's
               /etc/exim4/update-exim4.conf.conf, with the files they name
Names are normalised: lowercase, no trailing dot, IDNs as A-labels. A domain
named by several inputs is listed once, with the first as its "source".

A bad line or file of an input (a line that is not a domain, a zone file
that is not one, a database table that cannot be listed) costs only itself:
it is printed as a warning and listed under "input errors" (JSON
"input_errors", with file and line), the other domains are looked up, and
the exit code is 3.

A shared name (one MX host for many domains) is looked up once. A domain whose
own lookups fail is reported with the failing query and does not stop the
others; a failing name of another zone (another provider's MX or SRV target)
is an error of that name, and a failing TLSA lookup is the name's
"tlsa_error": neither fails the domain.

--format json writes the inventory document (sorted; one entry per name with
all its domains) to -o FILE as it is encoded, the results kept in a temporary
file next to FILE meanwhile, so memory stays small for large hosts. --format
jsonl writes JSON Lines instead, a line per domain as it completes (first a
header line, last an "end" line with the counts); every --inventory reads
either.

Exit codes:
  0  every domain was looked up
  1  could not run (bad input file, no resolver, interrupted)
  2  bad flags or arguments
  3  some domains failed (listed, with the failing query), or some input
     lines or files could not be read (listed under "input errors")`,
		Example: `  # The names clients use for two domains, and whether they point here:
  certplan inventory --server-ip 203.0.113.10 example.com example.net

  # Every zone of a cPanel server, as JSON for the next stages:
  certplan inventory --zones /var/named --server-ip 203.0.113.10 \
    --format json -o inventory.json

  # A list on stdin, through a given resolver, at most 500 queries a second:
  cut -d: -f1 /etc/userdomains | certplan inventory --domains - \
    --resolver 127.0.0.1:53 --qps 500 --server-ip 203.0.113.10`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkFormat("text", "json", "jsonl"); err != nil {
				return err
			}
			if g.Format == "jsonl" && in.InventoryFile != "" {
				return usageError("--format jsonl writes an inventory as its domains complete: not with --inventory (use --format json)")
			}
			if in.InventoryFile == "" && !in.given(args) {
				return usageError("no domains: give domains as arguments, --domains FILE, --zones DIR or --source KIND")
			}
			if len(in.ServerIPs) == 0 && in.InventoryFile == "" {
				fmt.Fprintln(g.Stderr, "certplan: warning: no --server-ip given: no name counts as pointing here (here=none)")
			}
			p := newProgress(g.Stderr)
			in.progress = p.update
			inv, err := loadAndWriteInventory(cmd.Context(), g, &in, args, p.done)
			if err != nil {
				return err
			}
			if len(inv.ServerIPs) > 0 && inv.Stats.Names > 0 && inv.Stats.NamesHere == 0 {
				fmt.Fprintf(g.Stderr, "certplan: warning: none of the %d names resolves to --server-ip %s: check that these are this server's public addresses (behind NAT, the public ones)\n",
					inv.Stats.Names, strings.Join(inv.ServerIPs, ", "))
			}
			return joinExit(failedDomainsError(g, inv), inputErrorsExit(g, inv))
		},
	}
	in.addFlags(cmd.Flags(), true)
	return cmd
}

// writeInventoryText writes the table of names, the summary, and the
// failed domains and problem names.
func writeInventoryText(w io.Writer, inv *model.Inventory) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLES\tDOMAINS\tADDRESSES\tHERE\tCAA")
	for _, n := range inv.Names {
		addrs := strings.Join(n.Addresses, ",")
		switch {
		case addrs == "":
			addrs = "-"
		case len(n.Addresses) > 4:
			// A name with dozens of addresses would push every other
			// column off the screen; JSON has them all.
			addrs = fmt.Sprintf("%s +%d more", strings.Join(n.Addresses[:3], ","), len(n.Addresses)-3)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, strings.Join(n.Roles, ","), abbreviate(n.Domains), addrs, n.Here, caaColumn(n))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d domains (%d failed), %d names (%d here), %d DNS queries%s; CAA checked for %s\n",
		inv.Stats.Domains, inv.Stats.DomainsFailed, inv.Stats.Names, inv.Stats.NamesHere, inv.Stats.Queries, queriesByType(inv.Stats), inv.CAIdentifier)
	writeMTASTS(w, inv)
	if inv.Stats.DomainsFailed > 0 {
		fmt.Fprintln(w, "\nfailed domains:")
		for _, d := range inv.Domains {
			if d.Error != "" {
				fmt.Fprintf(w, "  %s: %s\n", d.Domain, d.Error)
			}
		}
	}
	var problems []string
	for _, n := range inv.Names {
		switch {
		case n.Error != "":
			problems = append(problems, fmt.Sprintf("  %s: %s", n.Name, n.Error))
		case !n.CAAOK && !caaNotLookedUp(n):
			problems = append(problems, fmt.Sprintf("  %s: %s", n.Name, n.CAA.Reason))
		}
		if n.TLSAError != "" {
			problems = append(problems, fmt.Sprintf("  %s: DANE unknown: %s", n.Name, n.TLSAError))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintln(w, "\nnames with problems:")
		fmt.Fprintln(w, strings.Join(problems, "\n"))
	}
	writeWildcards(w, inv)
	writeResolverNote(w, inv)
	writeInputProblems(w, inv)
}

// writeMTASTS summarises the domains' MTA-STS: how many have a record,
// their policies by mode, how many could not be fetched; then each
// problem (a record senders would not use, a failed fetch).
func writeMTASTS(w io.Writer, inv *model.Inventory) {
	var records, failed, unfetched int
	modes := map[string]int{}
	var problems []string
	for _, d := range inv.Domains {
		m := d.MTASTS
		if m == nil {
			continue
		}
		records++
		switch {
		case m.Policy != nil:
			modes[m.Policy.Mode]++
		case m.PolicyError != "":
			failed++
			problems = append(problems, fmt.Sprintf("  %s: %s", d.Domain, m.PolicyError))
		default:
			unfetched++
		}
		if m.TXTError != "" {
			problems = append(problems, fmt.Sprintf("  %s: %s", d.Domain, m.TXTError))
		}
	}
	if records == 0 {
		return
	}
	var parts []string
	for _, mode := range []string{model.MTASTSEnforce, model.MTASTSTesting, model.MTASTSNone} {
		if modes[mode] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", modes[mode], mode))
		}
	}
	line := fmt.Sprintf("MTA-STS: %s with an _mta-sts record; policies: ", plural(records, "domain"))
	if len(parts) == 0 {
		parts = []string{"none fetched"}
	}
	line += strings.Join(parts, ", ")
	if failed > 0 {
		line += fmt.Sprintf("; %d failed to fetch", failed)
	}
	if unfetched > 0 {
		line += fmt.Sprintf("; %d not fetched (--no-mta-sts)", unfetched)
	}
	fmt.Fprintln(w, line)
	if len(problems) > 0 {
		fmt.Fprintln(w, "\nMTA-STS problems (a sender that cached the policy keeps to it until its max_age):")
		fmt.Fprintln(w, strings.Join(problems, "\n"))
	}
}

// writeInputProblems lists the input errors and the domains a source left
// out on purpose.
func writeInputProblems(w io.Writer, inv *model.Inventory) {
	if len(inv.InputErrors) > 0 {
		fmt.Fprintln(w, "\ninput errors (each cost only its line or file; every other domain was read):")
		for _, e := range inv.InputErrors {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	if len(inv.SkippedDomains) > 0 {
		fmt.Fprintln(w, "\ndomains left out:")
		for _, d := range inv.SkippedDomains {
			fmt.Fprintf(w, "  %s: %s\n", d.Domain, d.Reason)
		}
	}
}

// writeWildcards lists the domains with a wildcard record and the
// conventional names that resolve only as it does.
func writeWildcards(w io.Writer, inv *model.Inventory) {
	marked := map[string][]string{}
	for _, n := range inv.Names {
		if n.Wildcard {
			for _, d := range n.Domains {
				if strings.HasSuffix(n.Name, "."+d) {
					label := strings.TrimSuffix(n.Name, "."+d)
					marked[d] = append(marked[d], label)
				}
			}
		}
	}
	header := false
	for _, d := range inv.Domains {
		if len(d.WildcardAddresses) == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nwildcard records (any name resolves; these names may exist only through them):")
			header = true
		}
		fmt.Fprintf(w, "  *.%s -> %s: %s\n", d.Domain, strings.Join(d.WildcardAddresses, ","), strings.Join(marked[d.Domain], ", "))
	}
}

// abbreviate shows the first domain and how many more.
func abbreviate(domains []string) string {
	switch len(domains) {
	case 0:
		return "-"
	case 1:
		return domains[0]
	default:
		return fmt.Sprintf("%s +%d more", domains[0], len(domains)-1)
	}
}

// queriesByType is " (A 10, AAAA 4, ...)", the queries of each type in
// the order of their names, and "; 3 of them for DANE" when the DANE
// checks added some, or "" for an inventory without the counts.
func queriesByType(st model.InventoryStats) string {
	if len(st.QueriesByType) == 0 {
		return ""
	}
	types := make([]string, 0, len(st.QueriesByType))
	for t := range st.QueriesByType {
		types = append(types, t)
	}
	sort.Strings(types)
	for i, t := range types {
		types[i] = fmt.Sprintf("%s %d", t, st.QueriesByType[t])
	}
	dane := ""
	if st.DANEQueries > 0 {
		dane = fmt.Sprintf("; %d of them for DANE", st.DANEQueries)
	}
	return " (" + strings.Join(types, ", ") + dane + ")"
}

// writeResolverNote says, when the resolver does not validate DNSSEC and
// TLSA records were found, that their status is unknown.
func writeResolverNote(w io.Writer, inv *model.Inventory) {
	if inv.Resolver != model.ResolverNotValidating {
		return
	}
	n := 0
	for _, nm := range inv.Names {
		if len(nm.TLSA) > 0 || slices.ContainsFunc(nm.PortTLSA, func(p model.PortTLSA) bool { return len(p.Records) > 0 }) {
			n++
		}
	}
	if n > 0 {
		fmt.Fprintf(w, "\nthe resolver does not validate DNSSEC (no AD bit): the TLSA records of %d names are of unknown status, counted as pinning\n", n)
	}
}

// caaNotLookedUp reports whether the inventory left n's CAA unasked: n
// points to none of the server IPs.
func caaNotLookedUp(n model.Name) bool {
	return n.Here == model.HereNone && !n.CAAOK && n.CAA.Reason == dnscheck.CAANotLookedUp
}

func caaColumn(n model.Name) string {
	switch {
	case caaNotLookedUp(n):
		return "-"
	case n.CAA.Error != "":
		return "error"
	case n.CAAOK:
		return "ok"
	default:
		return "forbidden"
	}
}

// progress prints "inventory: N/M domains" on a terminal's stderr for runs
// that take longer than a second, at most five times a second.
type progress struct {
	w     io.Writer
	on    bool
	start time.Time
	last  time.Time
	shown bool
}

func newProgress(stderr io.Writer) *progress {
	p := &progress{w: stderr, start: time.Now()}
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.on = true
		}
	}
	return p
}

func (p *progress) update(done, total int) {
	if !p.on {
		return
	}
	now := time.Now()
	if now.Sub(p.start) < time.Second || now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last = now
	p.shown = true
	fmt.Fprintf(p.w, "\rinventory: %d/%d domains", done, total)
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// failedDomainsError is the exit status of an inventory with failed
// domains: where to read each failure, and, when every domain failed, that
// the resolver itself is the likely cause.
func failedDomainsError(g *globals, inv *model.Inventory) error {
	f, n := inv.Stats.DomainsFailed, inv.Stats.Domains
	if f == 0 {
		return nil
	}
	where := `each is listed under "failed domains" with its failing query`
	if g.Format == "json" || g.Format == "jsonl" {
		where = `the failing query of each is in the domain's "error"`
	}
	if f == n && n > 1 {
		resolvers := "the system's resolvers (/etc/resolv.conf)"
		if len(g.Resolvers) > 0 {
			resolvers = strings.Join(g.Resolvers, ", ")
		}
		return withCode(ExitPartial, fmt.Errorf("every domain failed (%d of %d)", f, n),
			"when every lookup fails, the resolver is the likely cause: check that "+resolvers+" answers (dig @HOST -p PORT example.com MX), or give another with --resolver",
			where)
	}
	return withCode(ExitPartial, fmt.Errorf("%d of %d domains failed", f, n),
		where+"; check the zones' name servers, or retry with a longer --timeout")
}
