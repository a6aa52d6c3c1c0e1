package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
)

// Settings are the settings (long flag names, each with its values as
// given on the command line) that shaped the applied plan: the domain
// sources, server IPs, CA, challenge, hooks. "certplan renew" from cron
// reuses them when no flag or config file sets them.
type Settings map[string][]string

// Keys are the setting names, sorted.
func (s Settings) Keys() []string { return slices.Sorted(maps.Keys(s)) }

// LoadSettings returns the settings of the last applied run, or
// ErrNotFound (none was kept: a state directory from before settings were
// kept, or no run applied a plan yet).
func (s *Store) LoadSettings() (Settings, error) {
	b, err := s.readFile("settings.json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("remembered settings: %w", err)
	}
	var doc struct {
		Settings Settings `json:"settings"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("remembered settings: %w: %v", ErrCorrupt, err)
	}
	if doc.Settings == nil {
		doc.Settings = Settings{}
	}
	return doc.Settings, nil
}

// SaveSettings records st as the settings of the applied plan. It is
// 0600: a setting may name a credential's file.
func (s *Store) SaveSettings(st Settings) error {
	if err := s.locked(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(struct {
		Settings Settings `json:"settings"`
	}{st}, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFile("settings.json", append(b, '\n'), 0o600)
}
