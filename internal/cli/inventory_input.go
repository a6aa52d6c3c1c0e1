package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/certplan/certplan/dnscheck"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/probe"
	"github.com/certplan/certplan/sources"
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
	Sources       []string // --source KIND (repeatable): cpanel, directadmin, postfix, exim
	Root          string   // --root DIR: where the --source files are read (default "/")
	MTASTSCA      string   // --mta-sts-ca PEM: extra trust anchors for the MTA-STS policy hosts
	NoMTASTS      bool     // --no-mta-sts: fetch no MTA-STS policy
	MTASTSPort    int      // --mta-sts-port (hidden): a seam for tests and the lab; 0 for 443

	// found is what the domain sources found, once read (readSources).
	found *sources.Result

	// progress, when set, is called after each domain is done.
	progress func(done, total int)
	// forPlan: the command reads the inventory only to plan (and probe)
	// it, so a saved one is read without what the planner does not read
	// (planner.SlimName): a large inventory is most of plan's memory.
	forPlan bool
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
	fs.StringArrayVar(&in.Sources, "source", nil, "read the hosted domains from this server's own files: `kind` "+strings.Join(sources.Kinds, ", ")+" (repeatable)")
	fs.StringVar(&in.Root, "root", "/", "read the --source files under this `dir` (a copy of a server's files, a chroot)")
	fs.StringVar(&in.MTASTSCA, "mta-sts-ca", "", "PEM `file` of extra trust anchors for the MTA-STS policy hosts (https://mta-sts.DOMAIN: private CAs, a lab CA)")
	fs.BoolVar(&in.NoMTASTS, "no-mta-sts", false, "do not fetch the MTA-STS policies of the domains with an _mta-sts record (the record is still read)")
	fs.IntVar(&in.MTASTSPort, "mta-sts-port", 0, "for tests and labs only: fetch MTA-STS policies from this `port`, not 443 (the only port RFC 8461 allows)")
	fs.MarkHidden("mta-sts-port")
}

// policyFetch is how the inventory fetches MTA-STS policies: nil with
// --no-mta-sts; trusting the system's roots plus --mta-sts-ca.
func (in *inventoryInput) policyFetch() (*dnscheck.PolicyFetch, error) {
	if in.NoMTASTS {
		return nil, nil
	}
	var files []string
	if in.MTASTSCA != "" {
		files = append(files, in.MTASTSCA)
	}
	roots, err := probe.Roots(files...)
	if err != nil {
		return nil, withHint(fmt.Errorf("--mta-sts-ca: %w", err), "--mta-sts-ca takes a PEM file of CA certificates")
	}
	return &dnscheck.PolicyFetch{Roots: roots, Port: in.MTASTSPort}, nil
}

// given reports whether any domain source (or --inventory) was given.
func (in *inventoryInput) given(args []string) bool {
	return in.InventoryFile != "" || in.DomainsFile != "" || in.ZonesDir != "" || len(in.Sources) > 0 || len(args) > 0
}

// load returns the inventory: read from --inventory, or computed from args
// (domains), --domains and --zones. A non-nil inventory with failed domains
// is returned with a nil error; the caller decides the exit code.
func (in *inventoryInput) load(ctx context.Context, g *globals, args []string) (*model.Inventory, error) {
	if in.InventoryFile != "" {
		var name func(*model.Name)
		var domain func(*model.Domain)
		if in.forPlan {
			name, domain = planner.SlimName, planner.SlimDomain
		}
		if inv, ok, err := readInventoryJSONL(in.InventoryFile, name, domain); ok {
			if err != nil {
				return nil, withHint(fmt.Errorf("--inventory %w", err), "write it again with certplan inventory --format jsonl (or json)")
			}
			return inv, nil
		}
		var inv model.Inventory
		read := func() error { return model.ReadFile(in.InventoryFile, model.KindInventory, &inv) }
		if in.forPlan {
			read = func() error {
				return model.ReadInventory(in.InventoryFile, &inv, planner.SlimName, planner.SlimDomain)
			}
		}
		if err := readDocumentWith("--inventory", in.InventoryFile, read); err != nil {
			return nil, err
		}
		return &inv, nil
	}
	c := (*dnscheck.Collector)(nil)
	res, err := in.resolve(ctx, g, args, func(opts dnscheck.Options) func(dnscheck.DomainResult) {
		c = dnscheck.NewCollector(opts)
		return c.Add
	})
	if err != nil {
		return nil, err
	}
	inv := c.Inventory()
	recordSources(inv, in.found)
	res.fill(g, inv)
	return inv, nil
}

// resolved is what a run of the inventory counted.
type resolved struct {
	queries int
	byType  map[string]int
	dane    int // of queries, those DANE added (model.InventoryStats.DANEQueries)
}

func (r resolved) fill(g *globals, inv *model.Inventory) {
	inv.Stats.Queries = r.queries
	inv.Stats.QueriesByType = r.byType
	inv.Stats.DANEQueries = r.dane
	inv.GeneratedAt = g.Now().UTC().Format(time.RFC3339)
}

// resolve runs the inventory over the domain sources; sink returns, for
// the run's options, what takes each domain's result.
func (in *inventoryInput) resolve(ctx context.Context, g *globals, args []string, sink func(dnscheck.Options) func(dnscheck.DomainResult)) (resolved, error) {
	domains, ips, err := in.inputs(g, args)
	if err != nil {
		return resolved{}, err
	}
	policies, err := in.policyFetch()
	if err != nil {
		return resolved{}, err
	}
	r, err := dnscheck.NewResolver(dnscheck.Config{
		Servers:     g.Resolvers,
		Timeout:     g.Timeout,
		MaxInFlight: g.Concurrency,
		QPS:         in.QPS,
		Logger:      g.Logger,
	})
	if err != nil {
		return resolved{}, withHint(err, "give resolvers with --resolver host:port")
	}
	defer r.Close()
	opts := dnscheck.Options{ServerIPs: ips, CAIdentifier: in.CAIdentifier, NoNXDomainCut: in.NoNXDomainCut, MTASTS: policies}
	add := sink(opts)
	done := 0
	err = r.Stream(ctx, domains, opts, func(res dnscheck.DomainResult) {
		add(res)
		done++
		if in.progress != nil {
			in.progress(done, len(domains))
		}
	})
	if err != nil {
		return resolved{}, fmt.Errorf("inventory: %w", err)
	}
	return resolved{queries: int(r.Queries()), byType: r.QueriesByType(), dane: int(r.DANEQueries())}, nil
}

// loadSpilled is load for an inventory written as it is read back: the
// domains and names go to a dnscheck.Spill in dir ("" for the system's
// temporary directory), and the inventory returned has no Names and
// Domains (the Spill gives them); the caller closes the Spill.
func (in *inventoryInput) loadSpilled(ctx context.Context, g *globals, args []string, dir string) (*model.Inventory, *dnscheck.Spill, error) {
	var sp *dnscheck.Spill
	var spillErr error
	source := domainSourcer(in)
	res, err := in.resolve(ctx, g, args, func(opts dnscheck.Options) func(dnscheck.DomainResult) {
		sp, spillErr = dnscheck.NewSpill(dir, opts)
		return func(res dnscheck.DomainResult) {
			if spillErr == nil {
				source(&res.Domain)
				spillErr = sp.Add(res)
			}
		}
	})
	if err == nil {
		err = spillErr
	}
	var inv *model.Inventory
	if err == nil {
		inv, err = sp.Inventory()
	}
	if err != nil {
		if sp != nil {
			sp.Close()
		}
		return nil, nil, err
	}
	recordSources(inv, in.found)
	res.fill(g, inv)
	return inv, sp, nil
}

// domainSourcer returns what sets a domain's Source, AlsoIn and Owner
// from the domain sources read, as recordSources does for a whole
// inventory.
func domainSourcer(in *inventoryInput) func(*model.Domain) {
	byName := map[string]sources.Domain{}
	return func(d *model.Domain) {
		if in.found == nil {
			return
		}
		if len(byName) == 0 {
			for _, s := range in.found.Domains {
				byName[s.Name] = s
			}
		}
		if s, ok := byName[d.Domain]; ok {
			d.Source, d.AlsoIn, d.Owner = s.Source, s.AlsoIn, s.Owner
		}
	}
}
