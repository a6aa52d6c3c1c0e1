package dnscheck

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/certplan/certplan/model"
)

// Spill merges DomainResults into an inventory as a [Collector] does,
// but holds only an index in memory: each domain and each name a domain
// uses go to a temporary file as they come, and are read back, merged
// and sorted one name or domain at a time by [Spill.EachName] and
// [Spill.EachDomain]. The inventory of 100,000 domains held whole, with
// the garbage collector's headroom, peaked near 1 GB; the index is a few
// tens of megabytes. The merge is the Collector's own, name by name, so
// the two give the same inventory (TestSpillMatchesCollector).
type Spill struct {
	opts    Options
	f       *os.File
	w       *bufio.Writer
	off     int64
	err     error
	names   map[string][]spillRef // a name's records, in the order they came
	domains []spillDomain
	stats   model.InventoryStats
	// resolver is model.Inventory.Resolver, from the results.
	resolver string
}

type spillRef struct {
	off int64
	n   int32
}

type spillDomain struct {
	name string
	ref  spillRef
}

// NewSpill returns an empty Spill whose temporary file is in dir (""
// for the system's); the file is unlinked at once, so that nothing is
// left behind whatever happens, and its space is freed by Close.
func NewSpill(dir string, opts Options) (*Spill, error) {
	f, err := os.CreateTemp(dir, ".certplan-inventory-*")
	if err != nil {
		return nil, fmt.Errorf("inventory spill file: %w", err)
	}
	os.Remove(f.Name())
	return &Spill{opts: opts, f: f, w: bufio.NewWriterSize(f, 256<<10), names: map[string][]spillRef{}}, nil
}

// Close releases the temporary file.
func (s *Spill) Close() error { return s.f.Close() }

// Add writes one domain's result out; the first write error is kept and
// returned by every later call.
func (s *Spill) Add(res DomainResult) error {
	if s.err != nil {
		return s.err
	}
	if s.resolver == "" {
		s.resolver = res.Resolver
	}
	ref, err := s.put(&res.Domain)
	if err != nil {
		return err
	}
	s.domains = append(s.domains, spillDomain{name: res.Domain.Domain, ref: ref})
	s.stats.Domains++
	if res.Domain.Error != "" {
		s.stats.DomainsFailed++
	}
	for i := range res.Names {
		n := &res.Names[i]
		ref, err := s.put(n)
		if err != nil {
			return err
		}
		refs, seen := s.names[n.Name]
		if !seen {
			// Here is the name's own: the first domain's copy is kept.
			s.stats.Names++
			if n.Here != model.HereNone {
				s.stats.NamesHere++
			}
		}
		s.names[n.Name] = append(refs, ref)
	}
	return nil
}

func (s *Spill) put(v any) (spillRef, error) {
	b, err := json.Marshal(v)
	if err == nil {
		_, err = s.w.Write(b)
	}
	if err != nil {
		s.err = fmt.Errorf("inventory spill file: %w", err)
		return spillRef{}, s.err
	}
	ref := spillRef{off: s.off, n: int32(len(b))}
	s.off += int64(len(b))
	return ref, nil
}

// Inventory returns the inventory without its Names and Domains (empty
// lists, which EachName and EachDomain give): the header, the server IPs
// and the counts, as [Collector.Inventory] sets them.
func (s *Spill) Inventory() (*model.Inventory, error) {
	if s.err != nil {
		return nil, s.err
	}
	if err := s.w.Flush(); err != nil {
		return nil, fmt.Errorf("inventory spill file: %w", err)
	}
	inv := NewCollector(s.opts).Inventory()
	inv.Stats, inv.Resolver = s.stats, s.resolver
	slices.SortFunc(s.domains, func(a, b spillDomain) int { return strings.Compare(a.name, b.name) })
	return inv, nil
}

// EachName calls put with each name, merged across its domains and
// sorted as Collector.Inventory gives it, in the order of their names.
// Call it after Inventory.
func (s *Spill) EachName(put func(*model.Name) error) error {
	keys := make([]string, 0, len(s.names))
	for k := range s.names {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var buf []byte
	for _, k := range keys {
		c := NewCollector(s.opts)
		for _, ref := range s.names[k] {
			var n model.Name
			if err := s.get(ref, &buf, &n); err != nil {
				return err
			}
			c.Add(DomainResult{Names: []model.Name{n}})
		}
		if err := put(&c.Inventory().Names[0]); err != nil {
			return err
		}
	}
	return nil
}

// EachDomain calls put with each domain, in the order of their names.
// Call it after Inventory.
func (s *Spill) EachDomain(put func(*model.Domain) error) error {
	var buf []byte
	for _, d := range s.domains {
		var dom model.Domain
		if err := s.get(d.ref, &buf, &dom); err != nil {
			return err
		}
		if err := put(&dom); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spill) get(ref spillRef, buf *[]byte, v any) error {
	if cap(*buf) < int(ref.n) {
		*buf = make([]byte, ref.n)
	}
	b := (*buf)[:ref.n]
	if _, err := s.f.ReadAt(b, ref.off); err != nil && err != io.EOF {
		return fmt.Errorf("inventory spill file: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("inventory spill file: %w", err)
	}
	return nil
}
