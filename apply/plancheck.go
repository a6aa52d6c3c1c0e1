package apply

// This file refuses a plan that Run cannot apply, before anything is
// locked, ordered or deployed.

import (
	"fmt"
	"slices"

	"github.com/certplan/certplan/model"
)

// PlanError is a plan that Run refuses before it locks the store, orders or
// deploys anything: a certificate in it lists no names (or an empty one),
// or asks for a key (PlannedCert.Key) this certplan does not know.
// No ACME order can be placed without an identifier, and a server cannot
// present such a certificate; the planner never makes one, so the plan was
// made by an older certplan or edited by hand.
type PlanError struct {
	CertID string
	Reason string
}

func (e *PlanError) Error() string {
	return fmt.Sprintf("apply: plan: certificate %s %s", e.CertID, e.Reason)
}

// checkPlan refuses a plan with a certificate that lists no names, or
// with a key choice it does not know: a DANE gate from a newer planner
// must not turn into a new key.
func checkPlan(p *model.Plan) error {
	for _, c := range p.Certificates {
		id := c.ID
		if id == "" {
			id = "(without an ID)"
		}
		if len(c.Names) == 0 {
			return &PlanError{CertID: id, Reason: "lists no names: an ACME order needs at least one"}
		}
		if slices.Contains(c.Names, "") {
			return &PlanError{CertID: id, Reason: "lists an empty name"}
		}
		if c.Key != "" && c.Key != model.KeyKeep && c.Key != model.KeyNext {
			return &PlanError{CertID: id, Reason: fmt.Sprintf("asks for key %q: want keep or next (or none)", c.Key)}
		}
	}
	return nil
}
