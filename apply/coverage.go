package apply

// This file is the policy on names an order leaves out (the preflight
// found them pointing elsewhere, CAA forbids them, the CA failed them): a
// must-cover name is never left out, and a renewal that would drop names
// the current certificate still covers for long keeps that certificate
// instead. acme.Client.Obtain asks it before each order (acme.Request.Check),
// so every caller of Run gets the same safety as the CLI.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/names"
	"github.com/certplan/certplan/store"
)

// DefaultReducedCoverageDays is Options.ReducedCoverageDays when unset.
const DefaultReducedCoverageDays = 14

// MustCoverError is a must-cover name that failed (in the preflight or at
// the CA): the certificate is not ordered, or not ordered again, without
// it.
type MustCoverError struct {
	Failed []acme.Dropped
}

func (e *MustCoverError) Error() string {
	var parts []string
	for _, d := range e.Failed {
		parts = append(parts, d.Name+": "+d.Reason)
	}
	return "must-cover name failed: " + strings.Join(parts, "; ")
}

// ReducedCoverageError is a renewal held back because it would drop names
// the current certificate still covers for more than
// Options.ReducedCoverageDays: the current certificate is kept
// (StatusKept).
type ReducedCoverageError struct {
	CertID   string
	Dropped  []acme.Dropped
	DaysLeft int
}

func (e *ReducedCoverageError) Error() string {
	var names []string
	for _, d := range e.Dropped {
		names = append(names, d.Name)
	}
	return fmt.Sprintf("certificate %s: renewal would drop %s; keeping the current certificate (%d days left)",
		e.CertID, strings.Join(names, ", "), e.DaysLeft)
}

// coverage is the policy for one certificate.
type coverage struct {
	id   string
	must []string    // normalised
	cur  *store.Cert // nil: nothing to keep
	// allow: drop covered names anyway (Options.AllowReducedCoverage).
	allow bool
	days  int
	now   time.Time
}

// coverageFor is j's policy under o.
func coverageFor(o Options, j *job) coverage {
	days := o.ReducedCoverageDays
	if days == 0 {
		days = DefaultReducedCoverageDays
	}
	return coverage{id: j.pc.ID, must: normNames(j.pc.MustCover), cur: j.cur,
		allow: o.AllowReducedCoverage, days: days, now: j.now}
}

// check is acme.Request.Check: may the order go on without dropped?
func (c coverage) check(dropped []acme.Dropped) error {
	if err := c.mustCover(dropped); err != nil {
		return err
	}
	return c.reduced(dropped)
}

// mustCover refuses to go on without a must-cover name.
func (c coverage) mustCover(dropped []acme.Dropped) error {
	var failed []acme.Dropped
	for _, d := range dropped {
		if slices.Contains(c.must, d.Name) {
			failed = append(failed, d)
		}
	}
	if len(failed) > 0 {
		return &MustCoverError{Failed: failed}
	}
	return nil
}

// reduced holds a renewal back while it would drop names the current
// certificate covers and that certificate has more than days left.
func (c coverage) reduced(dropped []acme.Dropped) error {
	if c.cur == nil || c.allow {
		return nil
	}
	var lost []acme.Dropped
	for _, d := range dropped {
		if leafCovers(c.cur.Leaf.DNSNames, d.Name) {
			lost = append(lost, d)
		}
	}
	left := c.cur.Leaf.NotAfter.Sub(c.now)
	if len(lost) == 0 || left <= time.Duration(c.days)*24*time.Hour {
		return nil
	}
	slices.SortStableFunc(lost, func(a, b acme.Dropped) int {
		if a.Name != b.Name {
			return strings.Compare(a.Name, b.Name)
		}
		return -strings.Compare(a.Stage, b.Stage) // preflight before ca
	})
	return &ReducedCoverageError{CertID: c.id, Dropped: lost, DaysLeft: int(left / (24 * time.Hour))}
}

// explain names a must-cover name as the cause when Obtain gave up (every
// name dropped, or the retry failed too) with a must-cover name among
// those dropped.
func (c coverage) explain(err error, res *acme.Result) error {
	if res == nil || !(errors.Is(err, acme.ErrNothingToIssue) || errors.As(err, new(*acme.OrderError))) {
		return err
	}
	if merr := c.mustCover(res.Dropped); merr != nil {
		return merr
	}
	return err
}

// leafCovers reports whether a certificate's DNS names cover name: list
// it (a wildcard name: the wildcard itself), or a wildcard that covers it
// ([names.Covers], RFC 6125: one left-most label).
func leafCovers(dnsNames []string, name string) bool {
	name = strings.ToLower(name)
	for _, d := range dnsNames {
		d = strings.ToLower(d)
		if d == name || names.Covers(d, name) {
			return true
		}
	}
	return false
}
