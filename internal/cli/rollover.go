package cli

// This file is `certplan rollover`: the DANE key rollover of RFC 7671
// section 8.1 (package rollover). begin stages a next key and prints the
// TLSA records to publish; status says where each certificate stands;
// renew switches keys (apply.Options.Rollover); finish prints the records
// to remove. Output: zone-file lines, with ";" comments, on stdout.

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/dnscheck"
	"github.com/certplan/certplan/rollover"
	"github.com/certplan/certplan/store"
)

type rolloverOptions struct {
	stateDir string
	keyType  string
	publish  bool
}

// newRolloverCmd is long for its help text; the work is in package rollover.
func newRolloverCmd(g *globals) *cobra.Command {
	o := &rolloverOptions{}
	cmd := &cobra.Command{
		Use:   "rollover",
		Short: "Change a DANE-pinned key without stopping mail: begin, status, finish",
		Long: `A TLSA "3 1 1" record at _25._tcp.<mx> pins the server's key: a new key stops
mail from DANE senders (RFC 7672) unless its record was published first and
every resolver has had time to see it. rollover does that in three steps
(RFC 7671 section 8.1, "current + next"):

  begin    make the next key (kept in --state-dir) and print the records to
           publish beside the current ones, in zone-file syntax
  status   where each certificate stands: no rollover, next key staged (its
           record seen on N of M authoritative servers, validated or not),
           waiting two TTLs, ready, or switched
  finish   once renew switched, print the old key's records to remove

"certplan renew" (and issue) switch a certificate to its next key only when
the next key's record is validated through the resolver (AD bit), served by
every authoritative server of the zone (asked directly, found from its NS
records), and was first seen so at least two TTLs ago; until then the
certificate keeps its current key, also when it is renewed.

With --dane-publish, begin publishes the next key's records and finish
removes the old ones itself, through RFC 2136 UPDATE to DNSUPDATE_NAMESERVER,
signed with DNSUPDATE_TSIG_KEY, DNSUPDATE_TSIG_SECRET and
DNSUPDATE_TSIG_ALGORITHM (as lego's dnsupdate provider reads them).`,
	}
	cmd.PersistentFlags().StringVar(&o.stateDir, "state-dir", store.DefaultDir, "certplan's state `dir`")
	cmd.AddCommand(newRolloverBeginCmd(g, o), newRolloverStatusCmd(g, o), newRolloverFinishCmd(g, o))
	return cmd
}

func newRolloverBeginCmd(g *globals, o *rolloverOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "begin [ID...]",
		Short: "Stage a next key and print the TLSA records to publish (current and next)",
		Long: `begin makes a next key for each certificate given (default: every certificate
whose names carry TLSA records that pin its key, or whose TLSA state cannot be
known), keeps it in --state-dir, and prints the records to publish: the
current key's (keep them) and the next key's (add them), for every pinned
name. Running it again prints the same records: the key is made once.
A pinned name whose records trust nothing of the certificate served now
gets a warning: DANE senders fail on it already. With --format json the
records come as JSON (owner, TTL, SPKI hash, the zone-file line, which key,
and keep or add), for scripts that publish through a DNS provider's API.

Exit codes:
  0  staged (or staged already), records printed
  1  failure (DNS, the state directory, --dane-publish's update)
  2  bad flags or arguments
  4  another certplan run holds the state directory's lock`,
		Example: `  # Stage next keys for every pinned certificate; print the records to publish
  certplan rollover begin

  # The same records as JSON, to publish them through a DNS API
  certplan rollover begin --format json | jq -r '.rollovers[].records[] | select(.action == "add") | .record'

  # One certificate, publishing the record through RFC 2136 (TSIG)
  DNSUPDATE_NAMESERVER=192.0.2.53 DNSUPDATE_TSIG_KEY=certplan. DNSUPDATE_TSIG_SECRET=... \
    certplan rollover begin default-192.0.2.10 --dane-publish`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.begin(cmd.Context(), g, args)
		},
	}
	cmd.Flags().StringVar(&o.keyType, "key-type", "", "next key `type`: ec256, ec384, rsa2048, rsa3072, rsa4096 (default: the current key's)")
	cmd.Flags().BoolVar(&o.publish, "dane-publish", false, "publish the next key's records through RFC 2136 UPDATE (DNSUPDATE_* variables)")
	return cmd
}

func newRolloverStatusCmd(g *globals, o *rolloverOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status [ID...]",
		Short: "Show where each certificate's key rollover stands",
		Long: `status asks DNS, for each certificate given (default: all in --state-dir),
whether its next key's records are validated and on every authoritative
server, and says: no rollover, staged (what is missing where), waiting (until
when), ready (the next renew switches), or switched (run "rollover finish").
It records when the records were first seen everywhere, as renew does.

Exit codes:
  0  shown
  1  failure (the state directory)
  2  bad flags or arguments`,
		Example: `  certplan rollover status
  certplan rollover status default-192.0.2.10 --format json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.status(cmd.Context(), g, args)
		},
	}
}

func newRolloverFinishCmd(g *globals, o *rolloverOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "finish [ID...]",
		Short: "Print the old key's TLSA records to remove, and those to keep",
		Long: `finish, once renew switched a certificate to its next key, prints the old
key's records to remove and the current key's to keep (default: every
certificate that switched). When no authoritative server serves an old record
any more, the rollover is over and --state-dir forgets it. --format json
gives the records as begin's JSON does (action "remove" or "keep").

Exit codes:
  0  printed (or the rollover is over)
  1  failure, or a certificate that has not switched yet
  2  bad flags or arguments
  4  another certplan run holds the state directory's lock`,
		Example: `  certplan rollover finish
  certplan rollover finish default-192.0.2.10 --dane-publish`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.finish(cmd.Context(), g, args)
		},
	}
	cmd.Flags().BoolVar(&o.publish, "dane-publish", false, "remove the old key's records through RFC 2136 UPDATE (DNSUPDATE_* variables)")
	return cmd
}

// rolloverObserver is the DNS observer of rollovers: the first --resolver
// (or of resolv.conf), and CERTPLAN_AUTH_PORT, a test seam for the port
// authoritative servers are asked on. Without a resolver it still
// returns one: its observations fail, and no key changes.
func rolloverObserver(g *globals) (*rollover.Observer, error) {
	o := &rollover.Observer{Timeout: g.Timeout}
	res := g.Resolvers
	if len(res) == 0 {
		res, _ = dnscheck.SystemResolvers("")
	}
	if len(res) > 0 {
		o.Resolver = res[0]
		if _, _, err := net.SplitHostPort(o.Resolver); err != nil {
			o.Resolver = net.JoinHostPort(o.Resolver, "53")
		}
	}
	if s := g.Getenv("CERTPLAN_AUTH_PORT"); s != "" {
		p, err := strconv.Atoi(s)
		if err != nil || p < 1 || p > 65535 {
			return nil, usageError("CERTPLAN_AUTH_PORT=%q: want a port number (a test seam; unset it)", s)
		}
		o.AuthPort = p
	}
	return o, nil
}

// open opens --state-dir for writing, locked.
func (o *rolloverOptions) open() (*store.Store, error) {
	ao := applyOptions{stateDir: o.stateDir}
	st, err := ao.openStore()
	if err != nil {
		return nil, err
	}
	o.stateDir = ao.stateDir
	if err := st.Lock(); err != nil {
		st.Close()
		return nil, lockedError(err, o.stateDir)
	}
	return st, nil
}

// ids are args (checked), or every certificate in st.
func rolloverIDs(st *store.Store, args []string) ([]string, error) {
	for _, id := range args {
		if !store.ValidID(id) {
			return nil, withCode(ExitUsage, fmt.Errorf("%q is not a certificate ID", id), `"certplan certificates" lists the IDs`)
		}
	}
	if len(args) > 0 {
		return args, nil
	}
	return st.ListCerts()
}

func (o *rolloverOptions) publisher(g *globals) (*rollover.Publisher, error) {
	if !o.publish {
		return nil, nil
	}
	p, err := rollover.PublisherFromEnv(g.Getenv)
	if err != nil {
		return nil, withCode(ExitUsage, fmt.Errorf("--dane-publish: %w", err),
			"set DNSUPDATE_NAMESERVER to the zone's primary (host or host:port), and DNSUPDATE_TSIG_KEY and DNSUPDATE_TSIG_SECRET when it wants TSIG")
	}
	return p, nil
}

// publish adds (or removes) rs through p, one UPDATE per zone.
func publish(ctx context.Context, obs *rollover.Observer, p *rollover.Publisher, rs []rollover.Record, remove bool) error {
	byZone := map[string][]rollover.Record{}
	var zones []string
	for _, r := range rs {
		z, err := obs.Zone(ctx, r.Owner())
		if err != nil {
			return err
		}
		if _, ok := byZone[z]; !ok {
			zones = append(zones, z)
		}
		byZone[z] = append(byZone[z], r)
	}
	for _, z := range zones {
		var err error
		if remove {
			err = p.Remove(ctx, z, byZone[z])
		} else {
			err = p.Add(ctx, z, byZone[z])
		}
		if err != nil {
			return withHint(err, "the zone's primary must accept RFC 2136 updates for these names (from this host, with this TSIG key)")
		}
	}
	return nil
}

// writeRecords prints records as zone-file lines, each with what to do
// with it: "; current key: keep".
func writeRecords(w io.Writer, rs []stepRecord) {
	for _, r := range rs {
		fmt.Fprintf(w, "%s ; %s key: %s\n", r.Text, r.Key, r.Action)
	}
}

func keyTypeOr(flag, cur string) (acme.KeyType, error) {
	kt, err := acme.ParseKeyType(cmp.Or(flag, cur, "ec256"))
	if err != nil {
		return "", usageError("--key-type: %v", err)
	}
	return kt, nil
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
