package cli

// This file is `certplan revoke ID`: revoke the current certificate of ID
// at the CA (RFC 8555 §7.6), record it in the state directory, and unless
// --no-reissue replace it at once with a new key through apply's normal
// path (order, store, deploy hooks, verification). Where DANE TLSA records
// pin the current key (revoke_dane.go), the replacement waits for the
// next key's record.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/apply"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/report"
	"github.com/certplan/certplan/store"
	"github.com/spf13/cobra"
)

type revokeOptions struct {
	applyOptions
	reason    string
	noReissue bool
	stderr    io.Writer
}

// revokeReport is revoke's --format json output.
type revokeReport struct {
	ID         string           `json:"id"`
	Revocation store.Revocation `json:"revocation"`
	// Reissue: a replacement was attempted (Apply is its run).
	Reissue bool          `json:"reissue"`
	Apply   *apply.Report `json:"apply,omitempty"`
}

func newRevokeCmd(g *globals) *cobra.Command {
	o := &revokeOptions{}
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a certificate through ACME and replace it at once with a new key",
		Long: `revoke asks the CA to revoke the current certificate of ID (the IDs are in
"certplan certificates"), signed by the ACME account in --state-dir that
ordered it, with --reason (RFC 5280: keyCompromise when the key may be known
to others, superseded, cessationOfOperation, affiliationChanged, unspecified),
and records the revocation in --state-dir (certs/ID/revoked.json).

Then, unless --no-reissue, it replaces the certificate at once: a new order
with a NEW key (never the revoked one, whatever --reuse-key says), stored,
deployed by the deploy hooks (with the pre and post hooks) and verified, as
"certplan renew" does. The plan is --plan FILE, or made from the domain
sources, or else the plan applied last in --state-dir; other certificates get
only what is due for them.

DANE: when the inventory shows TLSA records that pin the current key (usage
3 or 1 at _25._tcp of one of its names), or a TLSA lookup failed, a new key
would stop mail from DANE senders. revoke then revokes nothing: it stages a
next key and prints the TLSA records to publish for it. Once they are
published (and two TTLs have passed), "certplan revoke ID" again uses that
key. Without an inventory, a DANE warning of the plan about one of its
names refuses it too, and otherwise a note says TLSA was not checked.
--no-reissue revokes now and leaves the revoked certificate served (DANE
senders still accept it) until it is replaced.

Running revoke again for a certificate the CA has revoked already records it
and replaces it: an interrupted revoke can be finished that way.

Exit codes:
  0  revoked (and replaced, deployed and verified, unless --no-reissue)
  1  failure: nothing revoked (the CA refused, DANE pins the key, no account)
  2  bad flags or arguments, or no certificate ID in --state-dir
  3  partial: revoked, but the replacement failed, a hook failed, or
     verification did not find it served
  4  another certplan run holds the state directory's lock`,
		Example: `  # The key leaked: revoke, issue and deploy a replacement with a new key
  certplan --config /etc/certplan/certplan.yaml revoke default-192.0.2.10 --reason keyCompromise

  # A domain left for good: revoke only, no replacement
  certplan --config /etc/certplan/certplan.yaml revoke sni-client.test --reason cessationOfOperation --no-reissue`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkFormat("text", "json"); err != nil {
				return err
			}
			if len(args) != 1 {
				return withCode(ExitUsage, fmt.Errorf("revoke takes one certificate ID, got %d arguments", len(args)),
					`"certplan certificates" lists the IDs`)
			}
			return o.run(cmd.Context(), g, args[0])
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.reason, "reason", "unspecified", "revocation `reason` (RFC 5280): keyCompromise, superseded, cessationOfOperation, affiliationChanged or unspecified")
	cmd.Flags().BoolVar(&o.noReissue, "no-reissue", false, "revoke only: the revoked certificate stays current and served until it is replaced")
	return cmd
}

// run revokes certificate id and replaces it.
func (o *revokeOptions) run(ctx context.Context, g *globals, id string) error {
	o.stderr = g.Stderr
	code, err := acme.ParseRevocationReason(o.reason)
	if err != nil {
		return usageError("--reason: %v", err)
	}
	if !store.ValidID(id) {
		return withCode(ExitUsage, fmt.Errorf("%q is not a certificate ID", id), `"certplan certificates" lists the IDs`)
	}
	if o.dryRun {
		return withCode(ExitUsage, errors.New("revoke has no --dry-run: a revocation cannot be tried and undone"),
			`"certplan certificates" shows the certificate; "certplan issue --dry-run" previews a replacement's preflight`)
	}
	cfg, err := o.acmeConfig(g)
	if err != nil {
		return err
	}
	st, err := o.openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := loadRevokable(st, id, o.stateDir); err != nil {
		return err
	}
	ao := apply.Options{Store: st, Now: g.Now}
	var conn caConn
	if !o.noReissue {
		o.appliedPlan = true
		if ao, err = o.options(ctx, g, nil, apply.ModeRenew, &conn); err != nil {
			return err
		}
		if !slices.ContainsFunc(ao.Plan.Certificates, func(c model.PlannedCert) bool { return c.ID == id }) {
			return withHint(fmt.Errorf("certificate %s is not in the plan: nothing would replace it; nothing was revoked", id),
				"the plan in use (--plan, the domain sources, or the one applied last) no longer has it: revoke it with --no-reissue")
		}
	}
	cfg.Store = ao.Store
	rv, rp, err := o.revoke(ctx, cfg, ao, id, code)
	if err != nil {
		return err
	}
	rr := &revokeReport{ID: id, Revocation: *rv, Reissue: !o.noReissue}
	if o.noReissue {
		return writeRevoke(g, rr)
	}
	ao.Replace = map[string]apply.Replacement{id: rp}
	return o.replace(ctx, g, ao, &conn, rr)
}

// replace runs apply for the revoked certificate's replacement and writes
// what revoke did. A failure is partial: the revocation itself was done.
func (o *revokeOptions) replace(ctx context.Context, g *globals, ao apply.Options, conn *caConn, rr *revokeReport) error {
	rep, runErr := runOptions(ctx, g, &o.applyOptions, ao, apply.ModeRenew, conn)
	rr.Apply = rep
	if werr := writeRevoke(g, rr); werr != nil {
		return werr
	}
	if rep == nil {
		return withCode(ExitPartial, fmt.Errorf("revoked %s, but its replacement did not run: %w", rr.ID, runErr),
			"the revoked certificate is still current: run \"certplan revoke "+rr.ID+"\" again to replace it")
	}
	var ee *exitError
	if errors.As(runErr, &ee) && ee.code == ExitFailure {
		ee.code = ExitPartial // the revocation itself was done
	}
	return runErr
}

// loadRevokable is id's current certificate, or a usage error with a hint
// when there is none.
func loadRevokable(st *store.Store, id, dir string) (*store.Cert, error) {
	cur, err := st.LoadCert(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, withCode(ExitUsage, fmt.Errorf("no certificate %s in %s", id, dir),
			`"certplan certificates" lists the IDs of the certificates in the state directory`)
	case err != nil:
		return nil, stateHint(err, dir)
	}
	return cur, nil
}

// revoke revokes id's current certificate under the store's lock, and
// records it; rp is how the replacement is to be keyed (DANE).
func (o *revokeOptions) revoke(ctx context.Context, cfg acme.Config, ao apply.Options, id string, reason uint) (*store.Revocation, apply.Replacement, error) {
	var rp apply.Replacement
	st := ao.Store
	client, err := acme.New(ctx, cfg)
	if err != nil {
		return nil, rp, withHint(err, caHint(err))
	}
	defer client.Close()
	if !client.HasAccount() {
		return nil, rp, withHint(fmt.Errorf("no ACME account for %s in %s: only the account that ordered a certificate can revoke it", client.DirectoryURL(), o.stateDir),
			"give --ca and --state-dir as the runs that issued it had them")
	}
	if err := st.Lock(); err != nil {
		return nil, rp, lockedError(err, o.stateDir)
	}
	defer st.Unlock()
	cur, err := loadRevokable(st, id, o.stateDir)
	if err != nil {
		return nil, rp, err
	}
	if cur.Meta.CA != "" && cur.Meta.CA != client.DirectoryURL() {
		return nil, rp, withHint(fmt.Errorf("certificate %s was issued by %s, not %s: nothing was revoked", id, cur.Meta.CA, client.DirectoryURL()),
			"give --ca "+cur.Meta.CA)
	}
	if !o.noReissue {
		var note string
		if rp, note, err = daneGate(ctx, ao.Inventory, ao.Plan, st, ao.Rollover, cur, cfg.KeyType, ao.Now); err != nil {
			return nil, rp, err
		}
		if note != "" {
			fmt.Fprintf(o.stderr, "certplan: note: %s\n", note)
		}
	}
	rv := store.Revocation{Serial: cur.Meta.Serial, Reason: o.reason, RevokedAt: ao.Now().UTC(),
		SPKISHA256: cur.Meta.SPKISHA256, CA: client.DirectoryURL()}
	err = client.Revoke(ctx, cur.Leaf, reason)
	switch {
	case errors.Is(err, acme.ErrAlreadyRevoked):
		rv.AlreadyRevoked = true
	case err != nil:
		return nil, rp, withHint(fmt.Errorf("certificate %s: %w", id, err), "nothing was revoked; "+caHint(err))
	}
	rp.Reason, rp.Message = "revoked", "the current certificate was revoked ("+o.reason+"): a new key"
	if rp.UseNextKey {
		rp.Message = "the current certificate was revoked (" + o.reason + "): the staged next key, whose TLSA records are published"
	}
	if err := st.SaveRevocation(id, rv); err != nil {
		return nil, rp, withCode(ExitPartial, fmt.Errorf("revoked %s (serial %s) at the CA, but could not record it: %w", id, rv.Serial, err))
	}
	return &rv, rp, nil
}

func lockedError(err error, dir string) error {
	if errors.Is(err, store.ErrLocked) {
		return withCode(ExitLocked, err, "another certplan run is working on "+dir+"; this one did nothing")
	}
	return err
}

// writeRevoke writes what revoke did: a line for the revocation, then the
// replacement's changes (text), or everything as JSON.
func writeRevoke(g *globals, rr *revokeReport) error {
	w, commit := g.output()
	if g.Format == "json" {
		b, err := model.Marshal(rr)
		if err != nil {
			return err
		}
		w.Write(b)
		return commit()
	}
	revokedLine(w, rr)
	if rr.Apply != nil {
		report.ApplyChanges(w, rr.Apply)
	}
	return commit()
}

func revokedLine(w io.Writer, rr *revokeReport) {
	rv := rr.Revocation
	how := "revoked"
	if rv.AlreadyRevoked {
		how = "revoked already (the CA says so; now recorded)"
	}
	fmt.Fprintf(w, "%s %s: serial %s, reason %s\n", how, rr.ID, rv.Serial, rv.Reason)
	if !rr.Reissue {
		fmt.Fprintf(w, "not replaced (--no-reissue): the revoked certificate stays current and served; \"certplan revoke %s\" again, or \"certplan issue --force\", replaces it with a new key\n", rr.ID)
	}
}
