package cli

// This file keeps revoke's replacement from breaking DANE (RFC 7672): a
// TLSA record of usage 3 (DANE-EE) or 1 (PKIX-EE) at _25._tcp.<name> pins
// the server's key or certificate (model.Name.DANEPin is the rule), so a replacement with a new key is
// refused by DANE senders until a record for the new key has been
// published and cached resolvers have seen it (RFC 7671 §8.1: publish the
// next key's record beside the current one first). A failed TLSA lookup
// counts as pinned: an unknown state never lets a key change.

import (
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
// record pins cur's names, the staged next key when its "3 1 1" record is
// published for every pinned name; otherwise an error naming the records
// to publish first (it stages the next key, under the caller's lock, so
// that the records stay the same from run to run). Without an inventory,
// the plan's DANE warnings about cur's names refuse it (the records cannot
// be named then); without either, note says TLSA was not checked.
func daneGate(inv *model.Inventory, plan *model.Plan, st *store.Store, cur *store.Cert, kt acme.KeyType, now func() time.Time) (rp apply.Replacement, note string, err error) {
	if inv == nil {
		note = "no inventory (domain sources or --inventory): the DANE TLSA records of its names were not checked before the new key"
		return rp, note, planDANE(plan, cur)
	}
	rp, err = daneGateInv(inv, st, cur, kt, now)
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

func daneGateInv(inv *model.Inventory, st *store.Store, cur *store.Cert, kt acme.KeyType, now func() time.Time) (apply.Replacement, error) {
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
	var missing []string
	for _, n := range pinned {
		if !hasTLSA(inv, n, nk.SPKISHA256) {
			missing = append(missing, fmt.Sprintf("_25._tcp.%s. IN TLSA 3 1 1 %s", n, nk.SPKISHA256))
		}
	}
	if len(missing) == 0 {
		rp.UseNextKey = true
		return rp, nil
	}
	return rp, withHint(fmt.Errorf("certificate %s: DANE pins its key (%s): a replacement with a new key would stop mail from DANE senders; nothing was revoked", cur.ID, strings.Join(why, "; ")),
		"publish these records beside the current ones (a next key is staged for them in the state directory), wait two TTLs, then run \"certplan revoke "+cur.ID+"\" again: the replacement takes that key\n  "+strings.Join(missing, "\n  "),
		"or revoke now with --no-reissue: the revoked certificate stays served (DANE senders still accept it) until it is replaced")
}

// pinnedNames are the names whose key DANE pins, or may, by the one rule
// (model.Name.DANEPin, and PortTLSA.DANEPin for the submission ports),
// with why: a validated record, a failed lookup, records not validated.
func pinnedNames(inv *model.Inventory, names []string) (pinned, why []string) {
	if inv == nil {
		return nil, nil
	}
	for _, name := range normalized(names) {
		n := findName(inv, name)
		if n == nil {
			continue
		}
		if w := keyPinned(n); w != "" {
			pinned = append(pinned, name)
			why = append(why, w)
		}
	}
	return pinned, why
}

// keyPinned says why n's key is pinned ("" when it is not): a validated
// usage 3 or 1 record as "_25._tcp.<name> TLSA 3 1 1 <data>", else
// DANEPin's reason.
func keyPinned(n *model.Name) string {
	pin, why := n.DANEPin()
	if pin == model.PinKey {
		for _, t := range n.TLSA {
			if t.Usage == 3 || t.Usage == 1 {
				return fmt.Sprintf("_25._tcp.%s TLSA %d %d %d %s", n.Name, t.Usage, t.Selector, t.MatchingType, t.Data)
			}
		}
	}
	if pin == model.PinUnknown {
		return why
	}
	for i := range n.PortTLSA {
		if pin, why := n.PortTLSA[i].DANEPin(n.Name); pin == model.PinKey || pin == model.PinUnknown {
			return why
		}
	}
	return ""
}

// hasTLSA reports whether the inventory has a validated "3 1 1 spki"
// record for name (at _25._tcp, and at each submission port whose set
// pins the key): records not validated prove nothing.
func hasTLSA(inv *model.Inventory, name, spki string) bool {
	n := findName(inv, name)
	if n == nil {
		return false
	}
	if pin, _ := n.DANEPin(); pin == model.PinUnknown || pin == model.PinKey && !has311(n.TLSA, spki) {
		return false
	}
	for _, pt := range n.PortTLSA {
		if pin, _ := pt.DANEPin(name); pin == model.PinUnknown || pin == model.PinKey && !has311(pt.Records, spki) {
			return false
		}
	}
	return true
}

func has311(recs []model.TLSA, spki string) bool {
	for _, t := range recs {
		if t.Usage == 3 && t.Selector == 1 && t.MatchingType == 1 && strings.EqualFold(t.Data, spki) {
			return true
		}
	}
	return false
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
