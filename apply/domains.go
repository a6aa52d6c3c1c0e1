package apply

// This file keeps the set of hosted domains whose lookups fail, with since
// when (the store's FailingDomain list), across runs that have an
// inventory: a domain whose lookups start failing is reported once, and
// once more when they answer again (Report.Domains); the runs in between
// say nothing of it. `certplan check` reads the set.

import (
	"fmt"
	"slices"
	"time"

	"github.com/certplan/certplan/store"
)

// Lookup changes in a [DomainLookup].
const (
	LookupFailing   = "failing"   // the domain's lookups started failing in this run
	LookupRecovered = "recovered" // they answer again
)

// DomainLookup is a hosted domain whose lookups started failing, or
// recovered, in this run.
type DomainLookup struct {
	Domain string `json:"domain"`
	Status string `json:"status"`
	// Since is when its lookups started failing.
	Since time.Time `json:"since"`
	// Error is the failure, as the inventory says it (LookupFailing).
	Error string `json:"error,omitempty"`
}

// trackDomains compares the inventory's failing domains with the set the
// store kept, reports what changed and keeps the new set. A domain that
// left the inventory leaves the set without a word: it did not recover.
// The caller holds the lock; a dry run keeps nothing.
func (r *runner) trackDomains() error {
	inv := r.o.Inventory
	if inv == nil || r.o.DryRun {
		return nil
	}
	st := r.o.Store
	prev, err := st.LoadFailingDomains()
	if err != nil {
		// A set that cannot be read is started afresh: the failing domains
		// are reported once more, which is better than never.
		r.log.Warn("failing domains unreadable, starting afresh", "error", err)
		prev = nil
	}
	was := make(map[string]store.FailingDomain, len(prev))
	for _, d := range prev {
		was[d.Domain] = d
	}
	now := r.o.Now().UTC().Truncate(time.Second)
	var next []store.FailingDomain
	for _, d := range inv.Domains {
		old, failing := was[d.Domain]
		switch {
		case d.Error != "" && failing:
			old.Error = d.Error
			next = append(next, old)
		case d.Error != "":
			next = append(next, store.FailingDomain{Domain: d.Domain, Since: now, Error: d.Error})
			r.rep.Domains = append(r.rep.Domains, DomainLookup{Domain: d.Domain, Status: LookupFailing, Since: now, Error: d.Error})
		case failing:
			r.rep.Domains = append(r.rep.Domains, DomainLookup{Domain: d.Domain, Status: LookupRecovered, Since: old.Since})
		}
	}
	if slices.Equal(prev, next) || len(prev) == 0 && len(next) == 0 {
		return nil
	}
	if err := st.SaveFailingDomains(next); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}
