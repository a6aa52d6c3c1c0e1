package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/certplan/certplan/dnscheck"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
	"github.com/spf13/pflag"
)

// inventoryInput is how a command gets an inventory: read from --inventory,
// or computed by running the inventory over the domain sources. inventory,
// probe, plan, issue and renew all take these flags.
type inventoryInput struct {
	InventoryFile string   // --inventory FILE: read a saved inventory instead of querying DNS
	DomainsFile   string   // --domains FILE ("-" for stdin): one domain a line, # comments
	ZonesDir      string   // --zones DIR: BIND zone files; each file's origin is a hosted domain
	ServerIPs     []string // --server-ip IP (repeatable): this server's addresses
	CAIdentifier  string   // --ca-identifier: CAA issuer domain, default letsencrypt.org
	QPS           float64  // --qps: cap on DNS queries per second (0: none)
	NoNXDomainCut bool     // --no-nxdomain-cut: ask every SRV owner, whatever their parent answered

	// progress, when set, is called after each domain is done.
	progress func(done, total int)
}

// addFlags registers the flags; withFile adds --inventory.
func (in *inventoryInput) addFlags(fs *pflag.FlagSet, withFile bool) {
	if withFile {
		fs.StringVar(&in.InventoryFile, "inventory", "", "read the inventory from `file` (from \"certplan inventory --format json\") instead of querying DNS")
	}
	fs.StringVar(&in.DomainsFile, "domains", "", "hosted domains, one per line, # comments (`file`, or - for stdin)")
	fs.StringVar(&in.ZonesDir, "zones", "", "`dir` of BIND zone files (such as /var/named); each file's origin is a hosted domain")
	fs.StringArrayVar(&in.ServerIPs, "server-ip", nil, "an `IP` address of this server (repeatable)")
	fs.StringVar(&in.CAIdentifier, "ca-identifier", "letsencrypt.org", "CAA issuer `domain` of the CA, for CAA checks")
	fs.Float64Var(&in.QPS, "qps", 0, "send at most this many DNS queries per second (0: no cap)")
	fs.BoolVar(&in.NoNXDomainCut, "no-nxdomain-cut", false, "ask every SRV owner (_imap._tcp.DOMAIN, ...) even when _tcp.DOMAIN answered NXDOMAIN: for name servers that wrongly answer NXDOMAIN for a name with names below it (RFC 8020)")
}

// given reports whether any domain source (or --inventory) was given.
func (in *inventoryInput) given(args []string) bool {
	return in.InventoryFile != "" || in.DomainsFile != "" || in.ZonesDir != "" || len(args) > 0
}

// load returns the inventory: read from --inventory, or computed from args
// (domains), --domains and --zones. A non-nil inventory with failed domains
// is returned with a nil error; the caller decides the exit code.
func (in *inventoryInput) load(ctx context.Context, g *globals, args []string) (*model.Inventory, error) {
	if in.InventoryFile != "" {
		var inv model.Inventory
		if err := readDocument("--inventory", in.InventoryFile, model.KindInventory, &inv); err != nil {
			return nil, err
		}
		return &inv, nil
	}
	domains, ips, err := in.inputs(g, args)
	if err != nil {
		return nil, err
	}
	r, err := dnscheck.NewResolver(dnscheck.Config{
		Servers:     g.Resolvers,
		Timeout:     g.Timeout,
		MaxInFlight: g.Concurrency,
		QPS:         in.QPS,
		Logger:      g.Logger,
	})
	if err != nil {
		return nil, withHint(err, "give resolvers with --resolver host:port")
	}
	defer r.Close()
	opts := dnscheck.Options{ServerIPs: ips, CAIdentifier: in.CAIdentifier, NoNXDomainCut: in.NoNXDomainCut}
	c := dnscheck.NewCollector(opts)
	done := 0
	err = r.Stream(ctx, domains, opts, func(res dnscheck.DomainResult) {
		c.Add(res)
		done++
		if in.progress != nil {
			in.progress(done, len(domains))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	inv := c.Inventory()
	inv.Stats.Queries = int(r.Queries())
	inv.Stats.QueriesByType = r.QueriesByType()
	inv.GeneratedAt = g.Now().UTC().Format(time.RFC3339)
	return inv, nil
}

// inputs gathers and checks the domains (arguments, --domains, --zones) and
// the server IPs.
func (in *inventoryInput) inputs(g *globals, args []string) ([]string, []netip.Addr, error) {
	if in.QPS < 0 {
		return nil, nil, usageError("--qps %v: must not be negative", in.QPS)
	}
	if math.IsNaN(in.QPS) || math.IsInf(in.QPS, 0) {
		return nil, nil, usageError("--qps %v: want a number of queries per second, or 0 for no cap", in.QPS)
	}
	if _, err := names.Normalize(in.CAIdentifier); err != nil {
		return nil, nil, usageError("--ca-identifier: %v", err)
	}
	var ips []netip.Addr
	for _, s := range in.ServerIPs {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, nil, usageError("--server-ip %q: not an IP address", s)
		}
		ips = append(ips, ip.Unmap())
	}
	seen := map[string]bool{}
	var domains []string
	add := func(list []string) {
		for _, d := range list {
			if !seen[d] {
				seen[d] = true
				domains = append(domains, d)
			}
		}
	}
	for _, a := range args {
		d, err := names.Normalize(a)
		if err != nil {
			reason := err.Error()
			var ne *names.Error
			if errors.As(err, &ne) {
				reason = ne.Reason
			}
			return nil, nil, withCode(ExitUsage, fmt.Errorf("domain argument %q: %s", a, reason),
				"give each hosted domain as a plain name, such as example.com (an IDN as bücher.example or xn--bcher-kva.example)")
		}
		add([]string{d})
	}
	if in.DomainsFile != "" {
		var rd io.Reader = g.Stdin
		if in.DomainsFile != "-" {
			f, err := os.Open(in.DomainsFile)
			if err != nil {
				return nil, nil, fmt.Errorf("--domains: %w", err)
			}
			defer f.Close()
			if fi, err := f.Stat(); err == nil && fi.IsDir() {
				return nil, nil, withHint(fmt.Errorf("--domains %s: is a directory; want a file with one domain a line", in.DomainsFile),
					"for a directory of BIND zone files, use --zones "+in.DomainsFile)
			}
			rd = f
		}
		list, err := dnscheck.ReadDomains(rd, in.DomainsFile)
		if err != nil {
			return nil, nil, err
		}
		add(list)
	}
	if in.ZonesDir != "" {
		list, err := dnscheck.ZoneDirDomains(in.ZonesDir)
		if err != nil {
			return nil, nil, err
		}
		add(list)
	}
	if len(domains) == 0 {
		switch {
		case in.DomainsFile == "-" && in.ZonesDir == "":
			return nil, nil, withHint(errors.New("--domains -: no domains on standard input"), "pipe the list in, one domain a line, such as: cut -d: -f1 /etc/userdomains | certplan ... --domains -")
		case in.DomainsFile != "" && in.ZonesDir == "":
			return nil, nil, withHint(fmt.Errorf("--domains %s: no domains in the file", in.DomainsFile), "the file takes one domain a line; blank lines and # comments are skipped")
		case in.DomainsFile == "" && in.ZonesDir != "":
			return nil, nil, withHint(fmt.Errorf("--zones %s: no zone files", in.ZonesDir), "--zones reads the *.db and *.zone files of a directory such as /var/named")
		case in.DomainsFile != "" || in.ZonesDir != "":
			return nil, nil, errors.New("no domains found in --domains or --zones")
		}
		return nil, nil, usageError("no domains: give domains as arguments, --domains FILE or --zones DIR")
	}
	sort.Strings(domains)
	return domains, ips, nil
}
