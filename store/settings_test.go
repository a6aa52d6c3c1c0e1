package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestSettingsRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadSettings(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadSettings on a new store: %v, want ErrNotFound", err)
	}
	want := Settings{"ca": {"https://127.0.0.1:14000/dir"}, "server-ip": {"127.0.0.2", "::1"}}
	if err := s.SaveSettings(want); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("SaveSettings without the lock: %v, want ErrNotLocked", err)
	}
	if err := s.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSettings(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadSettings()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadSettings = %v, %v; want %v", got, err, want)
	}
	if fi, err := os.Stat(filepath.Join(dir, "settings.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("settings.json: %v, %v; want mode 0600", fi.Mode(), err)
	}
	os.WriteFile(filepath.Join(dir, "settings.json"), []byte("{"), 0o600)
	if _, err := s.LoadSettings(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("LoadSettings of a broken file: %v, want ErrCorrupt", err)
	}
}
