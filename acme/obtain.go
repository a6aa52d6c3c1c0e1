package acme

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/acme/api"

	"github.com/certplan/certplan/names"
	"github.com/certplan/certplan/store"
)

// Obtain issues (or renews) certificate req.CertID for req.Names and
// returns it (Result.Obtained): the caller checks and stores it. It runs
// the preflight and at most two orders: when the CA fails some names, they
// are dropped and the order placed once more without them. Before each
// order, req.Check (when set) is asked whether to go on without the names
// dropped so far. See [Result] for what was issued and dropped; errors are
// the Check's own, *OrderError, ErrNothingToIssue, ErrTOSNotAgreed (no
// account yet, and AgreeTOS not set), or wrapped transport and store
// errors. Unless req.DryRun, it first registers an account when the store
// has none for the CA (EnsureAccount); a dry run registers nothing and
// places no order. Obtain writes no certificate: the store's are read only
// for the current key (ReuseKey, UseNextKey) and "replaces".
func (c *Client) Obtain(ctx context.Context, req Request) (*Result, error) {
	start := time.Now()
	if !store.ValidID(req.CertID) {
		return nil, fmt.Errorf("certificate id %q: invalid", req.CertID)
	}
	names := normalizeNames(req.Names)
	if len(names) == 0 {
		return nil, ErrNothingToIssue
	}
	if err := c.checkWildcards(names); err != nil {
		return nil, err
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
	cur, err := c.currentCert(req.CertID, res)
	if err != nil {
		return nil, err
	}
	kept, dropped, warns := c.preflight(ctx, req, names)
	res.Dropped, res.Warnings = append(res.Dropped, dropped...), append(res.Warnings, warns...)
	if len(kept) == 0 {
		return finish(ErrNothingToIssue)
	}
	if err := req.check(res.Dropped); err != nil {
		return finish(err)
	}
	if req.DryRun {
		res.Issued = kept
		return finish(nil)
	}
	key, nextKey, err := c.certKey(req, cur)
	if err != nil {
		return finish(err)
	}
	out, kept, err := c.orderDropping(ctx, req, res, cur, kept, key)
	if err != nil {
		return finish(err)
	}
	res.Obtained, err = c.obtained(req, out, key, nextKey)
	if err != nil {
		return finish(err)
	}
	res.Issued, res.Replaced = kept, out.replaces
	c.log.Info("certificate obtained", "id", req.CertID, "names", len(kept))
	return finish(nil)
}

// checkWildcards refuses wildcard names when no solver can validate them:
// the CA offers only dns-01 for a wildcard (RFC 8555 section 7.1.3), and
// without a DNS provider the order would fail at the CA after the other
// names' challenges were answered.
func (c *Client) checkWildcards(list []string) error {
	if c.wild != nil {
		return nil
	}
	var wild []string
	for _, n := range list {
		if names.IsWildcard(n) {
			wild = append(wild, n)
		}
	}
	if len(wild) == 0 {
		return nil
	}
	return &ChallengeSetupError{Err: fmt.Errorf("%s: a wildcard is validated through dns-01 only, and no DNS provider is configured", strings.Join(wild, ", "))}
}

// currentCert is the store's current certificate for id (nil when none,
// or unreadable: a warning then).
func (c *Client) currentCert(id string, res *Result) (*store.Cert, error) {
	cur, err := c.store.LoadCert(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case errors.Is(err, store.ErrCorrupt):
		res.Warnings = append(res.Warnings, "current certificate unreadable, issuing afresh: "+err.Error())
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("certificate %s: %w", id, err)
	}
	return cur, nil
}

// orderDropping places the order for kept, and when the CA fails some of
// its names, once more without them (after req.Check agrees). It returns
// the order and the names it was placed for.
func (c *Client) orderDropping(ctx context.Context, req Request, res *Result, cur *store.Cert, kept []string, key crypto.Signer) (*orderOutcome, []string, error) {
	replaces := c.replaces(req, cur)
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
		out, err := c.placeOrder(ctx, kept, replaces, key)
		if err == nil {
			if out.replaces != replaces && replaces != "" {
				res.Warnings = append(res.Warnings, "the CA did not accept \"replaces\" "+replaces+" (already replaced?)")
			}
			return out, kept, nil
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("certificate %s: %w", req.CertID, err)
		}
		failed := keepOnly(out.failed, kept)
		res.Dropped = append(res.Dropped, failed...)
		if len(failed) == 0 || attempt == 2 {
			return nil, nil, &OrderError{Dropped: failed, Err: err}
		}
		if err := req.check(res.Dropped); err != nil {
			return nil, nil, err
		}
		if kept = without(kept, failed); len(kept) == 0 {
			return nil, nil, ErrNothingToIssue
		}
	}
}

// replaces is the ARI id to send as "replaces": req's, or the current
// certificate's; none when the CA has no ARI or req says so.
func (c *Client) replaces(req Request, cur *store.Cert) string {
	if req.NoReplaces || !c.HasARI() {
		return ""
	}
	if req.Replaces == "" && cur != nil {
		return cur.Meta.ARICertID
	}
	return req.Replaces
}

// obtained is what the order brought, with the metadata the store keeps.
func (c *Client) obtained(req Request, out *orderOutcome, key crypto.Signer, nextKey bool) (*Obtained, error) {
	keyPEM, err := EncodeKey(key)
	if err != nil {
		return nil, err
	}
	kt, _ := KeyTypeOf(key.Public())
	leaf, err := store.ParseLeaf(out.certPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", req.CertID, err)
	}
	ariID, err := api.MakeARICertID(leaf)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: ari id: %w", req.CertID, err)
	}
	meta := store.Meta{
		Names:     slices.Sorted(slices.Values(leaf.DNSNames)),
		PlanID:    req.PlanID,
		ARICertID: ariID,
		KeyType:   string(kt),
		IssuedAt:  c.now().UTC(),
		Replaced:  out.replaces,
		CA:        c.dirURL,
		Profile:   c.cfg.Profile,
		CertURL:   out.certURL,
	}
	return &Obtained{
		Files:       store.Files{KeyPEM: keyPEM, CertPEM: out.certPEM, ChainPEM: out.chainPEM},
		Meta:        meta,
		Key:         key,
		Leaf:        leaf,
		FromNextKey: nextKey,
	}, nil
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

// normalizeNames lowercases, trims the root dot, and sorts and
// deduplicates names.
func normalizeNames(names []string) []string {
	var out []string
	for _, n := range names {
		if n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), "."); n != "" {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
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
