package apply

import (
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
)

// TestTrackDomains: a domain whose lookups start failing is reported once,
// then not while it keeps failing, and once more when it recovers; a
// domain that leaves the inventory leaves the set silently; a dry run and
// a run without an inventory keep nothing.
func TestTrackDomains(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Lock(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	run := func(at time.Duration, dryRun bool, domains ...model.Domain) []DomainLookup {
		t.Helper()
		var inv *model.Inventory
		if domains != nil {
			inv = &model.Inventory{Domains: domains}
		}
		r := &runner{o: Options{Store: st, Inventory: inv, DryRun: dryRun, Now: func() time.Time { return t0.Add(at) }},
			log: slog.New(slog.NewTextHandler(io.Discard, nil)), rep: &Report{}}
		if err := r.trackDomains(); err != nil {
			t.Fatal(err)
		}
		return r.rep.Domains
	}
	ok := func(d string) model.Domain { return model.Domain{Domain: d} }
	bad := func(d string) model.Domain { return model.Domain{Domain: d, Error: "MX " + d + ": SERVFAIL"} }
	want := func(what string, got []DomainLookup, w ...DomainLookup) {
		t.Helper()
		if !slices.Equal(got, w) {
			t.Errorf("%s: got %+v, want %+v", what, got, w)
		}
	}

	want("all answer", run(0, false, ok("a.test"), ok("b.test")))
	want("dry run", run(time.Minute, true, ok("a.test"), bad("b.test")))
	want("b fails", run(2*time.Minute, false, ok("a.test"), bad("b.test"), bad("c.test")),
		DomainLookup{Domain: "b.test", Status: LookupFailing, Since: t0.Add(2 * time.Minute), Error: "MX b.test: SERVFAIL"},
		DomainLookup{Domain: "c.test", Status: LookupFailing, Since: t0.Add(2 * time.Minute), Error: "MX c.test: SERVFAIL"})
	want("still failing", run(time.Hour, false, ok("a.test"), bad("b.test"), bad("c.test")))
	want("no inventory", run(2*time.Hour, false))
	ds, err := st.LoadFailingDomains()
	if err != nil || len(ds) != 2 || !ds[0].Since.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("kept: %+v %v", ds, err)
	}
	want("b recovers, c leaves", run(3*time.Hour, false, ok("a.test"), ok("b.test")),
		DomainLookup{Domain: "b.test", Status: LookupRecovered, Since: t0.Add(2 * time.Minute)})
	want("quiet again", run(4*time.Hour, false, ok("a.test"), ok("b.test")))
	if ds, err := st.LoadFailingDomains(); err != nil || len(ds) != 0 {
		t.Errorf("kept after recovery: %+v %v", ds, err)
	}
}
