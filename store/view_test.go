package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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

