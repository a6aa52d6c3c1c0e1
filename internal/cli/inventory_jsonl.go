package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/certplan/certplan/dnscheck"
	"github.com/certplan/certplan/model"
)

// The inventory as JSON Lines (--format jsonl): each domain's result is
// written as soon as it is done, in the order the domains complete, and
// nothing is held but the names seen (for the counts). The first line is
// the header, {"kind":"certplan.inventory","version":N,"format":"jsonl"};
// then one line per domain, {"domain":{...},"names":[...]}, the names as
// that domain uses them (their roles, domains and sources are the
// domain's own); the last line, {"end":{...}}, is the inventory's other
// fields and counts. plan --inventory (and every --inventory) reads it,
// merging the names as the JSON document has them.

type jsonlHeader struct {
	Kind    string `json:"kind"`
	Version int    `json:"version"`
	Format  string `json:"format"`
}

// jsonlLine is a domain's line or the end line.
type jsonlLine struct {
	Domain *model.Domain    `json:"domain,omitempty"`
	Names  []model.Name     `json:"names,omitempty"`
	End    *model.Inventory `json:"end,omitempty"`
}

// writeInventoryJSONL runs the inventory and writes each domain's line as
// it completes; done is called when the lookups are over. The inventory
// returned has the counts, no Names and Domains.
func writeInventoryJSONL(ctx context.Context, g *globals, in *inventoryInput, args []string, done func()) (*model.Inventory, error) {
	w, commit, abort, err := g.streamOutput()
	if err != nil {
		done()
		return nil, err
	}
	defer abort()
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	werr := enc.Encode(jsonlHeader{Kind: model.KindInventory, Version: model.Version, Format: "jsonl"})
	source := domainSourcer(in)
	var opts dnscheck.Options
	var st model.InventoryStats
	var resolver string // the run's DNSSEC verdict, the same in every result
	seen := map[string]bool{}
	res, err := in.resolve(ctx, g, args, func(o dnscheck.Options) func(dnscheck.DomainResult) {
		opts = o
		return func(r dnscheck.DomainResult) {
			source(&r.Domain)
			countResult(&st, seen, r)
			resolver = r.Resolver
			if werr == nil {
				werr = enc.Encode(jsonlLine{Domain: &r.Domain, Names: r.Names})
			}
		}
	})
	done()
	if err != nil {
		return nil, err
	}
	inv := dnscheck.NewCollector(opts).Inventory()
	inv.Stats, inv.Resolver = st, resolver
	recordSources(inv, in.found)
	res.fill(g, inv)
	if werr == nil {
		werr = enc.Encode(jsonlLine{End: inv})
	}
	if werr == nil {
		werr = bw.Flush()
	}
	if werr != nil {
		return nil, fmt.Errorf("write the inventory: %w", werr)
	}
	return inv, commit()
}

// countResult counts r into st as Collector.Inventory counts: a name's
// Here is its first domain's.
func countResult(st *model.InventoryStats, seen map[string]bool, r dnscheck.DomainResult) {
	st.Domains++
	if r.Domain.Error != "" {
		st.DomainsFailed++
	}
	for i := range r.Names {
		if n := &r.Names[i]; !seen[n.Name] {
			seen[n.Name] = true
			st.Names++
			if n.Here != model.HereNone {
				st.NamesHere++
			}
		}
	}
}

// readInventoryJSONL reads path when it is an inventory in JSON Lines
// (ok false, and no error, when it is not: the caller reads it as a
// JSON document), merged into the inventory the JSON document holds.
// name and domain, when not nil, see each name and domain of a line
// before it is merged, as model.ReadInventory's hooks do (planner.SlimName
// drops what a plan does not read).
func readInventoryJSONL(path string, name func(*model.Name), domain func(*model.Domain)) (inv *model.Inventory, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, nil // the JSON document's reader says why
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
	first, err := r.ReadBytes('\n')
	var h jsonlHeader
	if (err != nil && err != io.EOF) || json.Unmarshal(bytes.TrimSpace(first), &h) != nil || h.Format != "jsonl" || h.Kind != model.KindInventory {
		return nil, false, nil
	}
	if h.Version > model.Version {
		return nil, true, fmt.Errorf("%s: %s version %d is newer than this certplan understands (%d)", path, h.Kind, h.Version, model.Version)
	}
	c := dnscheck.NewCollector(dnscheck.Options{})
	var end *model.Inventory
	for line := 2; ; line++ {
		b, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			var l jsonlLine
			if jerr := json.Unmarshal(b, &l); jerr != nil {
				return nil, true, fmt.Errorf("%s: line %d: %w", path, line, jerr)
			}
			switch {
			case end != nil:
				return nil, true, fmt.Errorf("%s: line %d: a line after the end line", path, line)
			case l.End != nil:
				end = l.End
			case l.Domain != nil:
				slim(&l, name, domain)
				c.Add(dnscheck.DomainResult{Domain: *l.Domain, Names: l.Names})
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, true, fmt.Errorf("%s: %w", path, err)
		}
	}
	if end == nil {
		return nil, true, fmt.Errorf("%s: no end line: the inventory was cut short", path)
	}
	merged := c.Inventory()
	end.Names, end.Domains = merged.Names, merged.Domains
	return end, true, nil
}

// slim calls the hooks (when not nil) on a line's domain and names.
func slim(l *jsonlLine, name func(*model.Name), domain func(*model.Domain)) {
	if domain != nil {
		domain(l.Domain)
	}
	if name != nil {
		for i := range l.Names {
			name(&l.Names[i])
		}
	}
}
