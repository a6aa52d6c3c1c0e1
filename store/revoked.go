package store

// This file records revocations: certs/<id>/revoked.json lists every
// certificate of id that certplan revoked (RFC 8555 §7.6), newest last. A
// revoked certificate may stay current (`certplan revoke --no-reissue`);
// its record tells a later run that its key must not be reused.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"
)

// Revocation is one certificate revoked at the CA.
type Revocation struct {
	Serial    string    `json:"serial"`
	Reason    string    `json:"reason"`
	RevokedAt time.Time `json:"revoked_at"`
	// SPKISHA256 is its key's (a key revoked for keyCompromise is never
	// used again).
	SPKISHA256 string `json:"spki_sha256"`
	CA         string `json:"ca,omitempty"`
	// AlreadyRevoked: the CA answered that it was revoked already (an
	// earlier run stopped before recording it).
	AlreadyRevoked bool `json:"already_revoked,omitempty"`
}

const fileRevoked = "revoked.json"

// LoadRevocations returns certificate id's recorded revocations (none:
// empty, no error).
func (s *Store) LoadRevocations(id string) ([]Revocation, error) {
	d, err := s.certDir(id)
	if err != nil {
		return nil, err
	}
	b, err := s.readFile(path.Join(d, fileRevoked))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rs []Revocation
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("revocations of %s: %w: %v", id, ErrCorrupt, err)
	}
	return rs, nil
}

// SaveRevocation adds rv to certificate id's revocations (the store must
// be locked). An unreadable record is replaced rather than kept from
// recording this one.
func (s *Store) SaveRevocation(id string, rv Revocation) error {
	if err := s.locked(); err != nil {
		return err
	}
	d, err := s.certDir(id)
	if err != nil {
		return err
	}
	rs, err := s.LoadRevocations(id)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return err
	}
	b, err := json.MarshalIndent(append(rs, rv), "", "  ")
	if err != nil {
		return err
	}
	return s.writeFile(path.Join(d, fileRevoked), append(b, '\n'), 0o644)
}

// Revoked returns the recorded revocation of certificate id's serial, or
// nil.
func (s *Store) Revoked(id, serial string) (*Revocation, error) {
	rs, err := s.LoadRevocations(id)
	if err != nil {
		return nil, err
	}
	for i := range rs {
		if rs[i].Serial == serial {
			return &rs[i], nil
		}
	}
	return nil, nil
}
