package apply

import (
	"slices"
	"testing"

	"github.com/certplan/certplan/model"
)

// A renewal that drops a name the current certificate covers through a
// wildcard loses it as much as one it lists; verification dials the names
// a wildcard replaced, never "*.parent".
func TestWildcardCoverage(t *testing.T) {
	sans := []string{"*.d.test", "d.test"}
	for name, want := range map[string]bool{"d.test": true, "mail.d.test": true, "*.d.test": true, "a.mail.d.test": false} {
		if got := leafCovers(sans, name); got != want {
			t.Errorf("leafCovers(%v, %q) = %v, want %v", sans, name, got, want)
		}
	}
	p := &model.Plan{WildcardNames: []model.WildcardNames{{Wildcard: "*.d.test", Names: []string{"mail.d.test", "smtp.d.test"}}}}
	got := dialNames(p, []string{"*.d.test", "d.test", "mail.d.test"})
	if want := []string{"mail.d.test", "smtp.d.test", "d.test"}; !slices.Equal(got, want) {
		t.Errorf("dialNames = %v, want %v", got, want)
	}
}
