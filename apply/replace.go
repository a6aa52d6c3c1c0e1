package apply

// This file renews a certificate at once with another key, whatever is
// due (Options.Replace): after `certplan revoke` the current certificate
// is revoked, and its key may be compromised (RFC 5280 keyCompromise), so
// neither Options.ReuseKey nor a staged key that was not asked for
// applies.

import (
	"errors"
	"fmt"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/rollover"
	"github.com/certplan/certplan/store"
)

// Replacement is how one certificate of Options.Replace is renewed.
type Replacement struct {
	// Reason and Message are the renewal's, such as "revoked" and "the
	// current certificate was revoked (keyCompromise)".
	Reason, Message string
	// UseNextKey orders with the store's staged next key (its DANE TLSA
	// record is published); otherwise a new key is generated.
	UseNextKey bool
}

// decideReplacing is decide, except for a certificate to replace: it is
// ordered now, in any mode, ignoring backoff and Retry-After.
func (r *runner) decideReplacing(f facts) decision {
	rp, ok := r.o.Replace[f.pc.ID]
	if !ok {
		return decide(f)
	}
	d := planner.RenewalDecision{Action: planner.ActionRenew, Reason: rp.Reason, Message: rp.Message}
	if d.Reason == "" {
		d.Reason = "replaced"
	}
	if d.Message == "" {
		d.Message = "replaced now with another key"
	}
	return decision{step: stepOrder, renewal: d}
}

// replaceKey makes req ask for a new key (or the staged next key, when
// the replacement says so) for a certificate to replace, and for one whose
// current certificate the store records as revoked: its key may be
// compromised, whatever Options.ReuseKey says.
func (r *runner) replaceKey(req *acme.Request, j *job) {
	if rp, ok := r.o.Replace[req.CertID]; ok {
		req.ReuseKey, req.UseNextKey = false, rp.UseNextKey
		return
	}
	if !req.ReuseKey || j.cur == nil {
		return
	}
	rv, err := r.o.Store.Revoked(req.CertID, j.cur.Meta.Serial)
	if rv != nil || err != nil {
		req.ReuseKey = false
		j.warn("the current certificate was revoked: its key is not reused")
	}
}

// DANEKeyError refuses the order of a certificate whose key the plan
// keeps (model.KeyKeep: DANE pins it, or whether it does is unknown) or
// moves to the staged next key (model.KeyNext), when there is no such key
// to use: a new key would stop mail from DANE senders (RFC 7672). The
// certificate's current one, if any, stays; the others proceed.
type DANEKeyError struct {
	CertID string
	// Key and Reason are the plan's (PlannedCert.Key, KeyReason).
	Key, Reason string
	// Problem says what is missing.
	Problem string
}

func (e *DANEKeyError) Error() string {
	return fmt.Sprintf("%s: the plan keeps its key for DANE (%s), but %s: a new key would stop mail from DANE senders; nothing was ordered; stage a next key (certplan rollover begin %s), publish its TLSA record and plan again",
		e.CertID, e.Reason, e.Problem, e.CertID)
}

// planKey makes req use the key the plan chose (PlannedCert.Key, the
// planner's DANE gate), whatever Options.ReuseKey says: KeyKeep the
// current key, KeyNext the staged next key. With Options.Rollover the
// rollover's observation (j.next, rollover.go) has the last word on the
// switch: while it waits, KeyNext keeps the current key; when it is ready
// but the plan keeps the key (a pinned name lacks the next key's record
// in the inventory) the order is refused, not placed with the old key
// again. It refuses (*DANEKeyError) when the key to use is missing, or
// when the current one was revoked (it may be compromised, and DANE
// forbids another). A certificate to replace (Options.Replace) was gated
// by its caller and is left as replaceKey set it.
func (r *runner) planKey(req *acme.Request, j *job) error {
	if _, ok := r.o.Replace[req.CertID]; ok {
		return nil
	}
	refuse := func(problem string) error {
		return &DANEKeyError{CertID: req.CertID, Key: j.pc.Key, Reason: j.pc.KeyReason, Problem: problem}
	}
	ready := j.next == nil || j.next.State == rollover.StateReady
	switch {
	case j.pc.Key == model.KeyKeep && j.next != nil && ready:
		return refuse("the rollover found the next key ready: refresh the inventory (the plan does not see its records at every pinned name)")
	case j.pc.Key == model.KeyKeep, j.pc.Key == model.KeyNext && !ready:
		if j.cur == nil || j.cur.Key == nil {
			return refuse("there is no current key to keep")
		}
		if rv, err := r.o.Store.Revoked(req.CertID, j.cur.Meta.Serial); rv != nil || err != nil {
			return refuse("the current certificate was revoked (or its revocation record is unreadable), so its key is not reused")
		}
		req.ReuseKey, req.UseNextKey = true, false
	case j.pc.Key == model.KeyNext:
		_, err := r.o.Store.LoadNextKey(req.CertID)
		if errors.Is(err, store.ErrNotFound) {
			return refuse("no next key is staged")
		}
		if err != nil {
			return refuse("the staged next key is unreadable: " + err.Error())
		}
		req.ReuseKey, req.UseNextKey = false, true
	}
	return nil
}
