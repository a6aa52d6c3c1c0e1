package apply

// This file renews a certificate at once with another key, whatever is
// due (Options.Replace): after `certplan revoke` the current certificate
// is revoked, and its key may be compromised (RFC 5280 keyCompromise), so
// neither Options.ReuseKey nor a staged key that was not asked for
// applies.

import (
	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/planner"
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
