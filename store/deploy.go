package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// This file holds what the apply loop remembers per certificate beside the
// renewal state (<state-dir>/apply/<id>.json), and the resets of both
// state types: the store owns every file in the state directory, and the
// rules for what a new certificate or a success forgets live with the
// types they change.

// DeployState is what apply remembers per certificate beyond the renewal
// state: which serial the hooks last deployed and how, what verification
// found after it, and when to ask the CA for renewal information again.
// Retiring the certificate removes it (RemoveDeployState).
type DeployState struct {
	// DeployedSerial is the serial whose hooks all succeeded.
	DeployedSerial string    `json:"deployed_serial,omitempty"`
	DeployedAt     time.Time `json:"deployed_at,omitzero"`
	// DefaultIPs are the IPs the hooks last made it the default
	// certificate of: a retirement hands them to the hooks again.
	DefaultIPs []string `json:"default_ips,omitempty"`
	// VerifyFailures counts the deploys of the current serial whose hooks
	// all succeeded but that verification did not find served;
	// RedeployAfter is when the next of those redeploys may run.
	VerifyFailures int       `json:"verify_failures,omitempty"`
	RedeployAfter  time.Time `json:"redeploy_after,omitzero"`
	// ARINextFetch is when the CA's Retry-After for renewal information
	// (RFC 9773 section 4.3) lets us ask again.
	ARINextFetch time.Time `json:"ari_next_fetch,omitzero"`
}

// ForgetVerification starts the redeploy count afresh: the certificate
// was found served, or nothing verifies it.
func (d *DeployState) ForgetVerification() {
	d.VerifyFailures, d.RedeployAfter = 0, time.Time{}
}

// NewCertificate forgets what belonged to the previous certificate: its
// redeploy count and when to ask for its renewal window.
func (d *DeployState) NewCertificate() {
	d.ForgetVerification()
	d.ARINextFetch = time.Time{}
}

// Succeeded records a certificate issued at now: the failures, backoff,
// Retry-After, reduced-coverage hold and the old certificate's ARI window
// are forgotten.
func (rs *RenewalState) Succeeded(now time.Time) {
	*rs = RenewalState{LastAttempt: now, LastSuccess: now}
}

// Failed records a failed attempt at now: one more failure, backed off
// until now + backoff(failures). The CA's Retry-After is the caller's to
// set (it is not every failure's).
func (rs *RenewalState) Failed(now time.Time, msg string, backoff func(failures int) time.Duration) {
	rs.Failures++
	rs.LastAttempt, rs.LastError = now, msg
	rs.BackoffUntil = now.Add(backoff(rs.Failures))
}

// deployStateName is certificate id's deploy state file, relative to the
// state directory.
func deployStateName(id string) (string, error) {
	if !ValidID(id) {
		return "", fmt.Errorf("certificate id %q: invalid", id)
	}
	return "apply/" + id + ".json", nil
}

// LoadDeployState returns certificate id's deploy state (zero when none).
func (s *Store) LoadDeployState(id string) (DeployState, error) {
	var d DeployState
	name, err := deployStateName(id)
	if err != nil {
		return d, err
	}
	b, err := s.readFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return DeployState{}, fmt.Errorf("%s: %w: %v", s.path(name), ErrCorrupt, err)
	}
	return d, nil
}

// SaveDeployState writes certificate id's deploy state.
func (s *Store) SaveDeployState(id string, d DeployState) error {
	if err := s.locked(); err != nil {
		return err
	}
	name, err := deployStateName(id)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFile(name, append(b, '\n'), 0o644)
}

// RemoveDeployState forgets certificate id's deploy state (it was
// retired).
func (s *Store) RemoveDeployState(id string) error {
	if err := s.locked(); err != nil {
		return err
	}
	name, err := deployStateName(id)
	if err != nil {
		return err
	}
	if err := s.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
