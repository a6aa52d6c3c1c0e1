package cli

import (
	"slices"
	"testing"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
)

// certplan check dials the names a planned wildcard replaced, not
// "*.parent", which no client dials.
func TestPlanScopeDialsWildcardNames(t *testing.T) {
	plan := &model.Plan{
		Certificates:  []model.PlannedCert{{ID: "default-127.0.0.2", Names: []string{"*.d.test", "d.test"}, IPs: []string{"127.0.0.2"}, Default: true}},
		WildcardNames: []model.WildcardNames{{Wildcard: "*.d.test", Names: []string{"mail.d.test", "smtp.d.test"}}},
	}
	s := planScope(plan, []probe.Port{{Port: 25, Protocol: "smtp"}})
	var got []string
	for _, n := range s.Names {
		got = append(got, n.Name)
	}
	if want := []string{"mail.d.test", "smtp.d.test", "d.test"}; !slices.Equal(got, want) {
		t.Errorf("scope names %v, want %v", got, want)
	}
}
