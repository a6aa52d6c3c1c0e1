package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"
)

// FailingDomain is a hosted domain whose lookups fail, and since when:
// renew reports a domain once when its lookups start failing and once when
// they recover, and certplan check warns about it meanwhile.
type FailingDomain struct {
	Domain string    `json:"domain"`
	Since  time.Time `json:"since"`
	// Error is the latest failure, as the inventory says it.
	Error string `json:"error"`
}

// fileDomains holds the failing domains ({"failing": [...]}).
const fileDomains = "domains.json"

type domainsFile struct {
	Failing []FailingDomain `json:"failing"`
}

// LoadFailingDomains returns the hosted domains whose lookups were failing
// at the last run that recorded them, sorted by domain (none: empty).
func (s *Store) LoadFailingDomains() ([]FailingDomain, error) {
	b, err := s.readFile(fileDomains)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failing domains: %w", err)
	}
	var f domainsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("failing domains %s: %w: %v", s.path(fileDomains), ErrCorrupt, err)
	}
	return f.Failing, nil
}

// SaveFailingDomains records the hosted domains whose lookups fail now.
func (s *Store) SaveFailingDomains(ds []FailingDomain) error {
	if err := s.locked(); err != nil {
		return err
	}
	f := domainsFile{Failing: slices.Clone(ds)}
	if f.Failing == nil {
		f.Failing = []FailingDomain{}
	}
	slices.SortFunc(f.Failing, func(a, b FailingDomain) int { return strings.Compare(a.Domain, b.Domain) })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFile(fileDomains, append(b, '\n'), 0o644)
}
