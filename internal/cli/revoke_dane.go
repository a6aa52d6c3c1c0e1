package cli

// This file keeps revoke's replacement from breaking DANE (RFC 7672): a
// TLSA record of usage 3 (DANE-EE) or 1 (PKIX-EE) at _25._tcp.<name> pins
// the server's key or certificate (model.Name.DANEPin is the rule), so a replacement with a new key is
// refused by DANE senders until a record for the new key has been
// published and cached resolvers have seen it (RFC 7671 §8.1: publish the
// next key's record beside the current one first). Whether it has is the
// rollover's one test (rollover.Check), as for renew's switch. A failed TLSA lookup
// counts as pinned: an unknown state never lets a key change.

import (
	"cmp"
	"context"
	"crypto"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/apply"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/rollover"
	"github.com/certplan/certplan/store"
)

// daneGate is how cur's replacement is keyed: a new key when no TLSA
// record pins cur's names, the staged next key when the rollover finds it
// ready (rollover.Check: its record validated, on every authoritative
// server, for two TTLs: the same test as renew's switch); otherwise an
// error naming the records to publish first (it stages the next key,
// under the caller's lock, so that the records stay the same from run to
// run). Without an inventory, the plan's key decisions and DANE warnings
// about cur's names refuse it (the records cannot be named then); without
// either, note says TLSA was not checked.
func daneGate(ctx context.Context, inv *model.Inventory, plan *model.Plan, st *store.Store, obs *rollover.Observer, cur *store.Cert, kt acme.KeyType, now func() time.Time) (rp apply.Replacement, note string, err error) {
	if inv == nil {
		note = "no inventory (domain sources or --inventory): the DANE TLSA records of its names were not checked before the new key"
		return rp, note, planDANE(plan, cur)
	}
	rp, err = daneGateInv(ctx, inv, st, obs, cur, kt, now)
	return rp, "", err
}

// planDANE refuses a new key for cur when the plan keeps its key
// (PlannedCert.Key) or warned that TLSA records pin (or may pin) the key
// of one of its names.
func planDANE(plan *model.Plan, cur *store.Cert) error {
	var why []string
	for _, pc := range plan.Certificates {
		if pc.ID == cur.ID && pc.Key != "" {
			why = append(why, pc.KeyReason)
		}
	}
	for _, w := range plan.Warnings {
		if (w.Code == model.WarnDANE || w.Code == model.WarnTLSALookupFailed) && slices.Contains(normalized(cur.Meta.Names), w.Name) {
			why = append(why, w.Name+": "+w.Message)
		}
	}
	if len(why) == 0 {
		return nil
	}
	return withHint(fmt.Errorf("certificate %s: the plan warns of DANE TLSA records (%s); nothing was revoked", cur.ID, strings.Join(why, "; ")),
		"give the domain sources or --inventory, so that revoke can check the records and name the ones to publish for the new key",
		"or revoke now with --no-reissue: the revoked certificate stays served (DANE senders still accept it) until it is replaced")
}

func daneGateInv(ctx context.Context, inv *model.Inventory, st *store.Store, obs *rollover.Observer, cur *store.Cert, kt acme.KeyType, now func() time.Time) (apply.Replacement, error) {
	var rp apply.Replacement
	pinned, why := pinnedNames(inv, cur.Meta.Names)
	if len(pinned) == 0 {
		return rp, nil
	}
	nk, _, err := rollover.Stage(st, cur.ID, string(kt), func() (crypto.Signer, error) { return acme.GenerateKey(kt) }, now())
	if err != nil {
		return rp, err
	}
	if len(nk.Names) == 0 {
		// rollover status and finish name the same records.
		nk.Names = pinned
		if err := st.SaveNextKey(cur.ID, nk); err != nil {
			return rp, fmt.Errorf("stage next key: %w", err)
		}
	}
	s, waits := nextKeyReady(ctx, obs, st, cur.ID, now())
	if waits == "" {
		rp.UseNextKey = true
		return rp, nil
	}
	recs := rollover.Records(nk.Names, rollover.DefaultTTL, nk.SPKISHA256)
	if len(s.Next) > 0 {
		recs = s.Next
	}
	var lines []string
	for _, r := range recs {
		lines = append(lines, r.String())
	}
	return rp, withHint(fmt.Errorf("certificate %s: DANE pins its key (%s): a replacement with a new key would stop mail from DANE senders, and the staged next key is not ready (%s); nothing was revoked", cur.ID, strings.Join(why, "; "), waits),
		"publish these records beside the current ones (a next key is staged for them in the state directory); once \"certplan rollover status "+cur.ID+"\" says ready (validated, on every authoritative server, two TTLs), run \"certplan revoke "+cur.ID+"\" again: the replacement takes that key\n  "+strings.Join(lines, "\n  "),
		"or revoke now with --no-reissue: the revoked certificate stays served (DANE senders still accept it) until it is replaced")
}

// nextKeyReady asks the rollover (rollover.Check, which records what it
// saw) whether certificate id's staged next key is ready; waits says what
// it waits for, "" when ready. Without a DNS observer it is not.
func nextKeyReady(ctx context.Context, obs *rollover.Observer, st *store.Store, id string, now time.Time) (rollover.Status, string) {
	if obs == nil {
		return rollover.Status{}, "no DNS resolver to observe its records"
	}
	s, err := rollover.Check(ctx, obs, st, id, now, true)
	switch {
	case err != nil:
		return s, err.Error()
	case s.State != rollover.StateReady:
		return s, cmp.Or(s.Waits, s.State)
	}
	return s, ""
}

// pinnedNames are the rollover entries ([rollover.Entries]: the name for
// _25._tcp, "_465._tcp.<name>" or "_587._tcp.<name>" for a submission
// port) of names whose TLSA records pin the key or whose state is
// unknown, with why.
func pinnedNames(inv *model.Inventory, names []string) (pinned, why []string) {
	if inv == nil {
		return nil, nil
	}
	for _, name := range normalized(names) {
		if n := findName(inv, name); n != nil {
			e, w := keyPins(n)
			pinned, why = append(pinned, e...), append(why, w...)
		}
	}
	return pinned, why
}

// keyPins are n's pinned entries and why each is: a validated usage 3 or
// 1 record as "_25._tcp.<name> TLSA 3 1 1 <data>", else DANEPin's reason.
func keyPins(n *model.Name) (entries, why []string) {
	if pin, w := n.DANEPin(); pin == model.PinKey || pin == model.PinUnknown {
		for _, t := range n.TLSA {
			if pin == model.PinKey && (t.Usage == 3 || t.Usage == 1) {
				w = fmt.Sprintf("_25._tcp.%s TLSA %d %d %d %s", n.Name, t.Usage, t.Selector, t.MatchingType, t.Data)
				break
			}
		}
		entries, why = append(entries, n.Name), append(why, w)
	}
	for i := range n.PortTLSA {
		pt := &n.PortTLSA[i]
		if pin, w := pt.DANEPin(n.Name); pin == model.PinKey || pin == model.PinUnknown {
			entries, why = append(entries, fmt.Sprintf("_%d._tcp.%s", pt.Port, n.Name)), append(why, w)
		}
	}
	return entries, why
}

func findName(inv *model.Inventory, name string) *model.Name {
	for i := range inv.Names {
		if inv.Names[i].Name == name {
			return &inv.Names[i]
		}
	}
	return nil
}

func normalized(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, strings.TrimSuffix(strings.ToLower(n), "."))
	}
	return out
}
