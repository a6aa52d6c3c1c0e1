package apply

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/internal/pebbletest"
)

// TestMustCover: a library caller of Run gets the must-cover policy: a
// must-cover name that fails is never left out; the certificate fails and
// nothing is stored.
func TestMustCover(t *testing.T) {
	e := newEnv(t)
	if err := pebbletest.PointElsewhere(e.dns, "late.d.test"); err != nil {
		t.Fatal(err)
	}
	pc := sniCert("c1", "mail.d.test", "late.d.test")
	pc.MustCover = []string{"late.d.test"}
	r := e.run(plan("p1", pc), ModeIssue)
	c := r.Certificates[0]
	if c.Status != StatusFailed || !strings.HasPrefix(c.Error, "must-cover name failed: late.d.test: ") {
		t.Fatalf("status %s, error %q; want failed, must-cover late.d.test", c.Status, c.Error)
	}
	if len(c.Hooks) != 0 || c.Serial != "" {
		t.Errorf("hooks %+v, serial %q: nothing should be stored or deployed", c.Hooks, c.Serial)
	}
}

// TestReducedCoverage: a library caller of Run gets the reduced-coverage
// guard: a renewal that would drop a name the current certificate still
// covers keeps the current certificate, until AllowReducedCoverage.
func TestReducedCoverage(t *testing.T) {
	e := newEnv(t)
	p := plan("p1", sniCert("c1", "mail.d.test", "late.d.test"))
	if r := e.run(p, ModeIssue); r.Certificates[0].Status != StatusIssued {
		t.Fatalf("first run: %s %s", statuses(r), r.Certificates[0].Error)
	}
	first := e.stored("c1").Meta.Serial
	e.ca.ForgetAuthorizations() // so that the CA validates late.d.test again
	if err := pebbletest.PointElsewhere(e.dns, "late.d.test"); err != nil {
		t.Fatal(err)
	}
	force := func(o *Options) { o.Force = true }
	r := e.run(p, ModeIssue, force)
	c := r.Certificates[0]
	if c.Status != StatusKept || !strings.Contains(c.Error, "renewal would drop late.d.test; keeping the current certificate") {
		t.Fatalf("status %s, error %q; want kept", c.Status, c.Error)
	}
	if s := e.stored("c1").Meta.Serial; s != first || len(c.Hooks) != 0 {
		t.Errorf("serial %s -> %s, hooks %+v: the current certificate should stay, undeployed again", first, s, c.Hooks)
	}
	r = e.run(p, ModeIssue, force, func(o *Options) { o.AllowReducedCoverage = true })
	if c := r.Certificates[0]; c.Status != StatusIssued || !slices.Equal(c.Issued, []string{"mail.d.test"}) {
		t.Errorf("allowed: status %s, issued %v (%s)", c.Status, c.Issued, c.Error)
	}
}

// TestCoveragePolicy tables the policy itself.
func TestCoveragePolicy(t *testing.T) {
	e := newEnv(t)
	if r := e.run(plan("p1", sniCert("c1", "mail.d.test", "late.d.test")), ModeIssue); r.Result() != ResultOK {
		t.Fatalf("setup: %s", statuses(r))
	}
	cur := e.stored("c1")
	now := cur.Leaf.NotAfter.Add(-20 * 24 * time.Hour)
	late := acme.Dropped{Name: "late.d.test", Stage: acme.StageCA, Reason: "no"}
	other := acme.Dropped{Name: "new.d.test", Stage: acme.StagePreflight, Reason: "no"}
	var mc *MustCoverError
	var rc *ReducedCoverageError
	cov := coverage{id: "c1", must: []string{"new.d.test"}, cur: cur, days: 14, now: now}
	if err := cov.check([]acme.Dropped{other}); !errors.As(err, &mc) || mc.Failed[0].Name != "new.d.test" {
		t.Errorf("must-cover: %v", err)
	}
	cov.must = nil
	if err := cov.check([]acme.Dropped{other}); err != nil {
		t.Errorf("a name not covered today: %v", err)
	}
	if err := cov.check([]acme.Dropped{late}); !errors.As(err, &rc) || rc.DaysLeft != 20 {
		t.Errorf("covered, 20 days left: %v", err)
	}
	cov.days = 30
	if err := cov.check([]acme.Dropped{late}); err != nil {
		t.Errorf("covered, 20 days left, guard 30: %v", err)
	}
	cov.days, cov.allow = 14, true
	if err := cov.check([]acme.Dropped{late}); err != nil {
		t.Errorf("allowed: %v", err)
	}
	cov.must = []string{"late.d.test"}
	res := &acme.Result{Dropped: []acme.Dropped{late}}
	if err := cov.explain(&acme.OrderError{Err: errors.New("x")}, res); !errors.As(err, &mc) {
		t.Errorf("explain a give-up: %v", err)
	}
	if err := cov.explain(acme.ErrNothingToIssue, res); !errors.As(err, &mc) {
		t.Errorf("explain nothing left: %v", err)
	}
}
