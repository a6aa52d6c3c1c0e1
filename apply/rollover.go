package apply

// This file is the DANE key rollover's part in a run (package rollover):
// a certificate with a staged next key (`certplan rollover begin`) is
// ordered with it only once its TLSA records are validated, on every
// authoritative server, and two TTLs old; until then it keeps its current
// key, whatever Options.ReuseKey says. A ready key is a reason to renew
// by itself. The observation is DNS, so it is made here and not in the
// planner; the switch is decided in one place, decideRollover, which can
// move to the planner (PlannedCert.Key = model.KeyNext) with its input.

import (
	"context"
	"errors"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/rollover"
	"github.com/certplan/certplan/store"
)

// ReasonKeyRollover is the renewal reason of a switch to a ready next key.
const ReasonKeyRollover = "key-rollover"

// decideRollover observes the records of j's staged next key (if any),
// records what it saw in the store (not on a dry run), and returns d, or
// a renewal now when the next key is ready and nothing else is due.
// j.next keeps the status for rolloverKey.
func (r *runner) decideRollover(ctx context.Context, j *job, d decision) decision {
	if _, replacing := r.o.Replace[j.pc.ID]; replacing || r.o.Rollover == nil || j.cur == nil {
		return d
	}
	st, err := rollover.Check(ctx, r.o.Rollover, r.o.Store, j.pc.ID, j.now, !r.o.DryRun)
	if errors.Is(err, store.ErrNotFound) {
		return d
	}
	if err != nil {
		st = rollover.Status{ID: j.pc.ID, State: rollover.StateStaged, Waits: err.Error()}
	}
	j.next = &st
	if st.State != rollover.StateReady {
		if d.step == stepOrder {
			j.warn("key rollover: the current key is kept until the next key's TLSA records are ready: " + st.Waits)
		}
		return d
	}
	if d.step == stepOrder || d.renewal.Action == planner.ActionWait {
		return d
	}
	return decision{step: stepOrder, renewal: planner.RenewalDecision{Action: planner.ActionRenew, Reason: ReasonKeyRollover,
		Message: "the staged next key's TLSA records are validated, on every authoritative server and two TTLs old: switching to it"}}
}

// rolloverKey makes req use the next key when it is ready, and the
// current key while a rollover waits: a new key would break DANE.
func (r *runner) rolloverKey(req *acme.Request, j *job) {
	if j.next == nil {
		return
	}
	ready := j.next.State == rollover.StateReady
	req.UseNextKey, req.ReuseKey = ready, !ready
}

// nextKeyUsed records that j's staged next key became current: the
// store keeps the old key's records for `certplan rollover finish`, and
// drops the next-key slot.
func (r *runner) nextKeyUsed(j *job) {
	nk, err := r.o.Store.LoadNextKey(j.pc.ID)
	if err == nil {
		old := ""
		if j.cur != nil {
			old = j.cur.Meta.SPKISHA256
		}
		err = rollover.Switched(r.o.Store, j.pc.ID, nk, old, j.now)
	}
	if err != nil {
		j.warn("staged next key is now current but could not be removed: " + err.Error())
		return
	}
	if j.next != nil {
		j.warn("key rollover: the next key is now current; remove the old key's TLSA records (certplan rollover finish " + j.pc.ID + ")")
	}
}
