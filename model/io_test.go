package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	tests := []struct {
		name, body, want, err string
	}{
		{"ok", `{"kind":"certplan.inventory","version":1,"names":[{"name":"mail.d.test"}]}`, KindInventory, ""},
		{"wrong kind", `{"kind":"certplan.probe","version":1}`, KindInventory, "is a certplan.probe document, want certplan.inventory"},
		{"no kind", `{"names":[]}`, KindInventory, `not a certplan document (no "kind")`},
		{"newer", `{"kind":"certplan.plan","version":9}`, KindPlan, "version 9 is newer than this certplan understands"},
		{"not json", `hello`, KindPlan, "not a certplan document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inv Inventory
			err := ReadFile(write(tt.name+".json", tt.body), tt.want, &inv)
			if tt.err == "" {
				if err != nil || len(inv.Names) != 1 {
					t.Fatalf("got %v, %+v", err, inv)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("got %v, want an error containing %q", err, tt.err)
			}
		})
	}
}
