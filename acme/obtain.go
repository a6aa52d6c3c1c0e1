package acme

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/acme/api"

	"github.com/certplan/certplan/store"
)

// Obtain issues (or renews) certificate req.CertID for req.Names and
// stores it. It runs the preflight, the reduced-coverage guard, and at most
// two orders: when the CA fails some names, they are dropped and the order
// placed once more without them. See [Result] for what was issued and
// dropped; errors are *MustCoverError, *ReducedCoverageError (with a Result
// whose Kept is true), *OrderError, ErrNothingToIssue, ErrTOSNotAgreed
// (no account yet, and AgreeTOS not set), or wrapped transport and store
// errors. Unless req.DryRun, it first registers an account when the store
// has none for the CA (EnsureAccount); a dry run registers nothing, writes
// nothing and places no order.
func (c *Client) Obtain(ctx context.Context, req Request) (*Result, error) {
	start := time.Now()
	if !store.ValidID(req.CertID) {
		return nil, fmt.Errorf("certificate id %q: invalid", req.CertID)
	}
	names, must := normalizeNames(req.Names, req.MustCover)
	if len(names) == 0 {
		return nil, ErrNothingToIssue
	}
	// The account is registered before the preflight, so that CAA
	// accounturi is checked against it; a dry run registers none.
	if !req.DryRun {
		if err := c.EnsureAccount(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.solver.start(); err != nil {
		return nil, err
	}
	res := &Result{CertID: req.CertID}
	finish := func(err error) (*Result, error) {
		sortDropped(res.Dropped)
		sort.Strings(res.Warnings)
		res.Duration = time.Since(start)
		return res, err
	}

	cur, err := c.store.LoadCert(req.CertID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		cur = nil
	case errors.Is(err, store.ErrCorrupt):
		res.Warnings = append(res.Warnings, "current certificate unreadable, issuing afresh: "+err.Error())
		cur = nil
	case err != nil:
		return nil, fmt.Errorf("certificate %s: %w", req.CertID, err)
	}

	kept, dropped, warns := c.preflight(ctx, req, names)
	res.Dropped, res.Warnings = append(res.Dropped, dropped...), append(res.Warnings, warns...)
	if mc := mustFailed(dropped, must); len(mc) > 0 {
		return finish(&MustCoverError{Failed: mc})
	}
	if len(kept) == 0 {
		return finish(ErrNothingToIssue)
	}
	if kerr := c.guard(req, cur, res.Dropped); kerr != nil {
		res.Kept, res.Cert = true, cur
		return finish(kerr)
	}
	if req.DryRun {
		res.Issued = kept
		return finish(nil)
	}

	key, nextKey, err := c.certKey(req, cur)
	if err != nil {
		return finish(err)
	}
	replaces := req.Replaces
	if replaces == "" && cur != nil && !req.NoReplaces {
		replaces = cur.Meta.ARICertID
	}
	if req.NoReplaces || !c.HasARI() {
		replaces = ""
	}

	var out *orderOutcome
	for attempt := 1; ; attempt++ {
		res.Orders++
		// RFC 9773 section 5: a replacement order shares at least one
		// identifier with the certificate it replaces; CAs reject one that
		// shares none (Boulder: malformed, Pebble: serverInternal). Such an
		// order is a new certificate in all but the store's id.
		if replaces != "" && req.Replaces == "" && !sharesName(kept, cur.Meta.Names) {
			res.Warnings = append(res.Warnings, "no name in common with the current certificate: not sent as its replacement")
			replaces = ""
		}
		c.log.Info("ordering certificate", "id", req.CertID, "names", len(kept), "attempt", attempt, "replaces", replaces)
		out, err = c.placeOrder(ctx, kept, replaces, key)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return finish(fmt.Errorf("certificate %s: %w", req.CertID, err))
		}
		failed := keepOnly(out.failed, kept)
		res.Dropped = append(res.Dropped, failed...)
		if mc := mustFailed(failed, must); len(mc) > 0 {
			return finish(&MustCoverError{Failed: mc})
		}
		if len(failed) == 0 || attempt == 2 {
			return finish(&OrderError{Dropped: failed, Err: err})
		}
		if kerr := c.guard(req, cur, res.Dropped); kerr != nil {
			res.Kept, res.Cert = true, cur
			return finish(kerr)
		}
		kept = without(kept, failed)
		if len(kept) == 0 {
			return finish(ErrNothingToIssue)
		}
	}

	if out.replaces != replaces {
		if replaces != "" {
			res.Warnings = append(res.Warnings, "the CA did not accept \"replaces\" "+replaces+" (already replaced?)")
		}
		replaces = out.replaces
	}
	keyPEM, err := EncodeKey(key)
	if err != nil {
		return finish(err)
	}
	kt, _ := KeyTypeOf(key.Public())
	leaf, err := store.ParseLeaf(out.certPEM)
	if err != nil {
		return finish(fmt.Errorf("certificate %s: %w", req.CertID, err))
	}
	ariID, err := api.MakeARICertID(leaf)
	if err != nil {
		return finish(fmt.Errorf("certificate %s: ari id: %w", req.CertID, err))
	}
	meta := store.Meta{
		Names:     leaf.DNSNames,
		PlanID:    req.PlanID,
		ARICertID: ariID,
		KeyType:   string(kt),
		IssuedAt:  c.now().UTC(),
		Replaced:  replaces,
		CA:        c.dirURL,
		Profile:   c.cfg.Profile,
		CertURL:   out.certURL,
	}
	sort.Strings(meta.Names)
	saved, err := c.store.SaveCert(req.CertID, store.Files{KeyPEM: keyPEM, CertPEM: out.certPEM, ChainPEM: out.chainPEM}, meta)
	if err != nil {
		return finish(fmt.Errorf("store: %w", err))
	}
	if nextKey {
		if err := c.store.DropNextKey(req.CertID); err != nil {
			res.Warnings = append(res.Warnings, "staged next key is now current but could not be removed: "+err.Error())
		}
	}
	res.Issued, res.Replaced, res.Cert = meta.Names, replaces, saved
	c.log.Info("certificate issued", "id", req.CertID, "names", len(meta.Names), "serial", saved.Meta.Serial)
	return finish(nil)
}

// certKey picks the key: the staged next key, the current one, or a new one.
func (c *Client) certKey(req Request, cur *store.Cert) (key crypto.Signer, fromNext bool, err error) {
	if req.UseNextKey {
		nk, err := c.store.LoadNextKey(req.CertID)
		if err == nil {
			k, err := store.ParseKey(nk.KeyPEM)
			if err != nil {
				return nil, false, fmt.Errorf("next key: %w", err)
			}
			return k, true, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, false, err
		}
	}
	if req.ReuseKey && cur != nil {
		return cur.Key, false, nil
	}
	k, err := GenerateKey(c.cfg.KeyType)
	return k, false, err
}

// guard is the reduced-coverage check: names the current certificate covers
// would be dropped while it still has more than ReducedCoverageDays left.
func (c *Client) guard(req Request, cur *store.Cert, dropped []Dropped) error {
	if cur == nil || c.cfg.AllowReducedCoverage || req.AllowReducedCoverage {
		return nil
	}
	covered := map[string]bool{}
	for _, n := range cur.Leaf.DNSNames {
		covered[strings.ToLower(n)] = true
	}
	var lost []Dropped
	for _, d := range dropped {
		if covered[d.Name] {
			lost = append(lost, d)
		}
	}
	if len(lost) == 0 {
		return nil
	}
	left := cur.Leaf.NotAfter.Sub(c.now())
	days := int(left / (24 * time.Hour))
	if left <= time.Duration(c.cfg.ReducedCoverageDays)*24*time.Hour {
		return nil
	}
	sortDropped(lost)
	return &ReducedCoverageError{CertID: req.CertID, Dropped: lost, DaysLeft: days}
}

func normalizeNames(names, mustCover []string) ([]string, map[string]bool) {
	set := map[string]bool{}
	must := map[string]bool{}
	var out []string
	add := func(n string) string {
		n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
		if n != "" && !set[n] {
			set[n] = true
			out = append(out, n)
		}
		return n
	}
	for _, n := range names {
		add(n)
	}
	for _, n := range mustCover {
		if n = add(n); n != "" {
			must[n] = true
		}
	}
	sort.Strings(out)
	return out, must
}

// sharesName reports whether a and b have a name in common.
func sharesName(a, b []string) bool {
	in := map[string]bool{}
	for _, n := range b {
		in[strings.ToLower(n)] = true
	}
	for _, n := range a {
		if in[n] {
			return true
		}
	}
	return false
}

func mustFailed(dropped []Dropped, must map[string]bool) []Dropped {
	var out []Dropped
	for _, d := range dropped {
		if must[d.Name] {
			out = append(out, d)
		}
	}
	return out
}

// keepOnly returns the drops whose name is in names (the CA may blame
// something else), one per name.
func keepOnly(ds []Dropped, names []string) []Dropped {
	in := map[string]bool{}
	for _, n := range names {
		in[n] = true
	}
	var out []Dropped
	for _, d := range ds {
		d.Name = strings.ToLower(d.Name)
		if in[d.Name] {
			out = append(out, d)
			in[d.Name] = false
		}
	}
	return out
}

func without(names []string, ds []Dropped) []string {
	drop := map[string]bool{}
	for _, d := range ds {
		drop[d.Name] = true
	}
	var out []string
	for _, n := range names {
		if !drop[n] {
			out = append(out, n)
		}
	}
	return out
}

func sortDropped(ds []Dropped) {
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Name != ds[j].Name {
			return ds[i].Name < ds[j].Name
		}
		return ds[i].Stage > ds[j].Stage // preflight before ca
	})
}
