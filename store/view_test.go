package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// TestOpenView: a dry run's store reads an existing directory without
// locking it, and a missing one as empty, creating nothing.
func TestOpenView(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	v, err := OpenView(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.LoadCert("c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LoadCert in a missing dir: %v, want ErrNotFound", err)
	}
	if _, err := v.LoadPlan(); !errors.Is(err, ErrNotFound) {
		t.Errorf("LoadPlan in a missing dir: %v, want ErrNotFound", err)
	}
	if ok, err := v.HasAccount("https://ca.test/dir"); ok || err != nil {
		t.Errorf("HasAccount in a missing dir: %v %v", ok, err)
	}
	if ids, err := v.ListCerts(); len(ids) != 0 || err != nil {
		t.Errorf("ListCerts in a missing dir: %v %v", ids, err)
	}
	if rs, err := v.LoadRenewal("c1"); err != nil || rs.Failures != 0 {
		t.Errorf("LoadRenewal in a missing dir: %+v %v", rs, err)
	}
	if err := v.Lock(); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Lock: %v, want ErrReadOnly", err)
	}
	if err := v.SavePlan(planWithID("p1")); err == nil {
		t.Error("SavePlan succeeded in a view")
	}
	v.Close()
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenView created the directory: %v", err)
	}

	w := open(t, dir)
	if err := w.SavePlan(planWithID("p1")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	v, err = OpenView(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if pl, err := v.LoadPlan(); err != nil || pl.ID != "p1" {
		t.Errorf("LoadPlan: %+v %v", pl, err)
	}
	if err := v.Lock(); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Lock: %v, want ErrReadOnly", err)
	}
}

// TestFailingDomains: the set is saved under the lock, sorted, and read
// back; a missing file is no failing domain; a corrupt one is ErrCorrupt.
func TestFailingDomains(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := open(t, dir)
	if ds, err := s.LoadFailingDomains(); len(ds) != 0 || err != nil {
		t.Fatalf("none yet: %v %v", ds, err)
	}
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	want := []FailingDomain{{Domain: "a.test", Since: since, Error: "MX a.test: SERVFAIL"}, {Domain: "b.test", Since: since.Add(time.Hour)}}
	s.Unlock()
	if err := s.SaveFailingDomains(want); !errors.Is(err, ErrNotLocked) {
		t.Errorf("without the lock: %v, want ErrNotLocked", err)
	}
	if err := s.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveFailingDomains([]FailingDomain{want[1], want[0]}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadFailingDomains()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v %v, want %+v", got, err, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "domains.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadFailingDomains(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("corrupt: %v, want ErrCorrupt", err)
	}
}
