package dnstest

import (
	"io/fs"
	"testing"

	"github.com/certplan/certplan/examples/lab/zones"
)

// The lab's zone files must parse.
func TestLabZonesParse(t *testing.T) {
	s := New()
	files, err := fs.Glob(zones.FS, "*.db")
	if err != nil || len(files) < 40 {
		t.Fatalf("lab zones: %d files, %v", len(files), err)
	}
	for _, f := range files {
		b, _ := fs.ReadFile(zones.FS, f)
		if err := s.AddZone(ZoneFileOrigin(f, string(b)), string(b)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
