package apply

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/certplan/certplan/store"
)

// state is what apply remembers per certificate beyond the store's renewal
// state: which serial the hooks last deployed and how, what verification
// found after it, and when to ask the CA for renewal information again. It
// lives in <state-dir>/apply/<id>.json, read and written through the store
// (never through a link); retiring the certificate removes it.
//
// TODO(store): these two fields belong in store.RenewalState; move them
// when the store takes them.
type state struct {
	// DeployedSerial is the serial whose hooks all succeeded.
	DeployedSerial string    `json:"deployed_serial,omitempty"`
	DeployedAt     time.Time `json:"deployed_at,omitzero"`
	// DefaultIPs are the IPs the hooks last made it the default
	// certificate of: a retirement hands them to the hooks again.
	DefaultIPs []string `json:"default_ips,omitempty"`
	// VerifyFailures counts the deploys of the current serial whose hooks
	// all succeeded but that verification did not find served;
	// RedeployAfter is when the next of those redeploys may run (see
	// MaxVerifyRedeploys).
	VerifyFailures int       `json:"verify_failures,omitempty"`
	RedeployAfter  time.Time `json:"redeploy_after,omitzero"`
	// ARINextFetch is when the CA's Retry-After for renewal information
	// (RFC 9773 section 4.3) lets us ask again.
	ARINextFetch time.Time `json:"ari_next_fetch,omitzero"`
}

// statePath is the state file's name inside the state directory.
func statePath(id string) (string, error) {
	if !store.ValidID(id) {
		return "", fmt.Errorf("certificate id %q: invalid", id)
	}
	return "apply/" + id + ".json", nil
}

func loadState(st *store.Store, id string) (state, error) {
	var s state
	p, err := statePath(id)
	if err != nil {
		return s, err
	}
	b, err := st.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return state{}, fmt.Errorf("%s: %w", filepath.Join(st.Dir(), p), err)
	}
	return s, nil
}

// removeState forgets certificate id's state (it was retired).
func (r *runner) removeState(id string) error {
	p, err := statePath(id)
	if err != nil {
		return err
	}
	if err := r.o.Store.RemoveFile(p); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}

// saveState writes s; the caller holds the store's lock.
func (r *runner) saveState(id string, s state) error {
	if r.o.DryRun {
		return nil
	}
	p, err := statePath(id)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := r.o.Store.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}
