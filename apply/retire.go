package apply

// This file retires the certificates that the plan no longer has: their
// deploy hooks run once more with CERTPLAN_CHANGE=retired, then the store
// moves their files aside. See the package documentation for the order
// and the rules (a retirement is held while it still serves a name).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/certplan/certplan/deploy"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
)

// retire undeploys the certificates that the plan no longer has: the
// stored ones that are not planned (when hooks are configured), and the
// previous plan's that were never stored (reported once). See the package
// documentation for the order and the rules.
func (r *runner) retire(ctx context.Context, planned []model.PlannedCert) error {
	inPlan := map[string]bool{}
	for _, c := range planned {
		inPlan[c.ID] = true
	}
	prev := map[string]model.PlannedCert{}
	p, err := r.o.Store.LoadPlan()
	switch {
	case err == nil:
		for _, c := range p.Certificates {
			if !inPlan[c.ID] {
				prev[c.ID] = c
			}
		}
	case !errors.Is(err, store.ErrNotFound):
		r.log.Warn("applied plan unreadable", "error", err)
	}
	ids := map[string]bool{}
	for id := range prev {
		ids[id] = true
	}
	if len(r.o.Hooks) > 0 {
		// Every stored certificate not planned: also the ones whose
		// retirement failed or was held in an earlier run (the applied plan
		// no longer lists them), and the ones retired before hooks ran for
		// retirements.
		stored, err := r.o.Store.ListCerts()
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		for _, id := range stored {
			if !inPlan[id] {
				ids[id] = true
			}
		}
	}
	homes := map[string][]string{} // planned name -> the certificates planned to list it
	for _, pc := range planned {
		for _, n := range normNames(pc.Names) {
			homes[n] = append(homes[n], pc.ID)
		}
	}
	sorted := slices.Sorted(maps.Keys(ids))
	for _, id := range sorted {
		if err := ctx.Err(); err != nil {
			return err
		}
		pc, wasPlanned := prev[id]
		rt, err := r.retireOne(ctx, id, pc, wasPlanned, homes)
		if err != nil {
			return err
		}
		r.rep.Retired = append(r.rep.Retired, rt)
	}
	return nil
}

// retireOne undeploys one certificate; pc is its entry in the previous plan
// (when wasPlanned).
func (r *runner) retireOne(ctx context.Context, id string, pc model.PlannedCert, wasPlanned bool, homes map[string][]string) (Retired, error) {
	st := r.o.Store
	rt := Retired{ID: id, Names: pc.Names}
	if wasPlanned && pc.Default {
		rt.DefaultIPs = pc.IPs
	}
	cur, err := st.LoadCert(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rt.Status, rt.Message = RetireUndeployed, "never issued: nothing to undeploy"
		return rt, nil
	case err != nil:
		rt.Status, rt.Error = RetireFailed, err.Error()
		return rt, nil
	}
	rt.Names, rt.Serial, rt.NotAfter = cur.Meta.Names, cur.Meta.Serial, cur.Meta.NotAfter
	as, err := st.LoadDeployState(id)
	if err != nil {
		r.log.Warn("deploy state unreadable", "id", id, "error", err)
	}
	// What the hooks last deployed it as; the previous plan's word for
	// certificates deployed before the state recorded it.
	if len(as.DefaultIPs) > 0 {
		rt.DefaultIPs = as.DefaultIPs
	} else if len(rt.DefaultIPs) > 0 && !r.o.DryRun {
		as.DefaultIPs = rt.DefaultIPs
		if err := r.saveState(id, as); err != nil {
			return rt, err
		}
	}
	switch {
	case len(r.o.Hooks) == 0:
		rt.Status, rt.Message = RetireKept, "no deploy hooks undeploy it: its files stay"
		return rt, nil
	case r.o.DryRun:
		rt.Status, rt.Message = RetireWould, "its deploy hooks would run with CERTPLAN_CHANGE=retired"
		return rt, nil
	}
	if why := r.heldBy(cur.Meta.Names, homes); why != "" {
		rt.Status, rt.Message = RetireHeld, "still deployed: "+why+"; tried again on the next run"
		return rt, nil
	}
	if err := r.due(ctx); err != nil {
		return rt, err
	}
	dc := deploy.Cert{ID: id, Dir: absDir(cur.Dir), Names: cur.Meta.Names, DefaultIPs: rt.DefaultIPs, Change: deploy.ChangeRetired}
	var ok bool
	rt.Hooks, ok = r.runHooks(ctx, dc)
	if !ok {
		rt.Status, rt.Message = RetireFailed, "a deploy hook failed: the next run runs them again"
		return rt, nil
	}
	to, err := st.RetireCert(id, r.o.Now())
	if err != nil {
		rt.Status, rt.Error = RetireFailed, err.Error()
		return rt, nil
	}
	if err := r.removeState(id); err != nil {
		return rt, err
	}
	rt.Status, rt.Dir = RetireUndeployed, to
	return rt, nil
}

// heldBy says why a retired certificate with these names must stay
// deployed: a name of it is planned (homes: name -> planned certificate
// IDs) on a certificate whose current version, after this run's orders,
// does not list it, so the retired certificate is still the one that
// serves it. "" when none.
func (r *runner) heldBy(names []string, homes map[string][]string) string {
	for _, n := range normNames(names) {
		ids := homes[n]
		covered := false
		for _, id := range ids {
			if c, err := r.o.Store.LoadCert(id); err == nil && slices.Contains(normNames(c.Meta.Names), n) {
				covered = true
				break
			}
		}
		if len(ids) > 0 && !covered {
			return fmt.Sprintf("%s is planned on %s, whose certificate does not list it yet", n, strings.Join(ids, ", "))
		}
	}
	return ""
}
