package planner

import (
	"slices"
	"testing"

	"github.com/certplan/certplan/model"
)

func TestPattern(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"autodiscover.*", "autodiscover.domain2.test", true},
		{"autodiscover.*", "autodiscover.a.b.test", true},
		{"autodiscover.*", "autodiscover", false},
		{"autodiscover.*", "mail.autodiscover.test", false},
		{"autodiscover.*", "AutoDiscover.Domain2.TEST.", true},
		{"*.example.test", "mail.example.test", true},
		{"*.example.test", "a.b.example.test", true},
		{"*.example.test", "example.test", false},
		{"*.example.test", "mail.example.test.evil", false},
		{"*.example.test", "mailexample.test", false},
		{"mail.*.test", "mail.x.test", true},
		{"mail.*.test", "mail.x.y.test", true},
		{"mail.*.test", "mail.test", false},
		{"*.*", "a.b", true},
		{"*.*", "a", false},
		{"*", "anything.at.all", true},
		{"mail.domain2.test", "mail.domain2.test", true},
		{"mail.domain2.test", "smtp.domain2.test", false},
		{"mail.domain2.test.", "MAIL.domain2.test", true},
		{"mail.bücher.test", "mail.xn--bcher-kva.test", true},
		{"autoconfig.*", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.name, func(t *testing.T) {
			p, err := ParsePattern(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Match(tt.name); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPatternErrors(t *testing.T) {
	for _, s := range []string{"", ".", "mail*.test", "a..b", "*x.test", "-a.test", "a_b.test"} {
		if _, err := ParsePattern(s); err == nil {
			t.Errorf("ParsePattern(%q): no error", s)
		}
	}
}

func TestRegisteredDomain(t *testing.T) {
	tests := []struct{ in, want string }{
		{"mail.domain2.test", "domain2.test"}, // no PSL rule: the default "*" rule, last two labels
		{"domain2.test", "domain2.test"},
		{"a.b.example.co.uk", "example.co.uk"},
		{"mail.example.com", "example.com"},
		{"x.y.github.io", "y.github.io"}, // private section counts, as at Let's Encrypt
		{"test", "test"},                 // a public suffix itself: unchanged
	}
	for _, tt := range tests {
		if got := RegisteredDomain(tt.in); got != tt.want {
			t.Errorf("RegisteredDomain(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPriority(t *testing.T) {
	tests := []struct {
		roles []string
		want  int
	}{
		{[]string{model.RoleServer}, 0},
		{[]string{model.RoleAutoconfig, model.RoleMX}, 1},
		{[]string{model.RoleSubmission}, 2},
		{[]string{model.RoleIMAP, model.RoleAutodiscover}, 3},
		{nil, lowestPriority},
		{[]string{"unknown"}, lowestPriority},
	}
	for _, tt := range tests {
		if got := Priority(tt.roles); got != tt.want {
			t.Errorf("Priority(%v) = %d, want %d", tt.roles, got, tt.want)
		}
	}
}

func TestNameLimit(t *testing.T) {
	tests := []struct {
		pol  Policy
		want int
		err  bool
	}{
		{Policy{}, 100, false},
		{Policy{Profile: "classic"}, 100, false},
		{Policy{Profile: "tlsserver"}, 25, false},
		{Policy{Profile: "shortlived"}, 25, false},
		{Policy{Profile: "shortlived", MaxNames: 7}, 7, false},
		{Policy{Profile: "mystery"}, 0, true},
		{Policy{Profile: "mystery", MaxNames: 50}, 50, false},
		{Policy{MaxNames: -1}, 0, true},
	}
	for _, tt := range tests {
		got, err := tt.pol.NameLimit()
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%+v: got %d, %v; want %d, err %v", tt.pol, got, err, tt.want, tt.err)
		}
	}
}

// TestRegisteredDomainByKey: the per-client-domain shortcut agrees with the
// public suffix list, also when the client domain is a public suffix or
// its registered domain is a parent; the domains come sorted, once each.
func TestRegisteredDomainByKey(t *testing.T) {
	cands := []cand{
		{name: "a.b.c.test", key: "b.c.test"},
		{name: "mail.co.uk", key: "co.uk"},
		{name: "mail.example.co.uk", key: "example.co.uk"},
		{name: "mx.client.test", key: "client.test"},
		{name: "mx.hoster.test", key: "client.test"},
		{name: "smtp.b.c.test", key: "b.c.test"},
		{name: "smtp.c.test", key: "c.test"},
		{name: "x.y.github.io", key: "y.github.io"},
		{name: "z.hoster.test", key: "hoster.test"},
	}
	keys := map[string]bool{}
	for _, c := range cands {
		keys[c.key] = true
	}
	p := &planner{cands: cands}
	for k := range keys {
		p.keyByRank = append(p.keyByRank, k)
	}
	slices.Sort(p.keyByRank)
	p.nkeys = len(p.keyByRank)
	for i := range p.cands {
		p.cands[i].krank = int32(slices.Index(p.keyByRank, p.cands[i].key))
	}
	regID, doms := p.registeredDomains()
	for ci, c := range p.cands {
		if got, want := doms[regID[ci]], RegisteredDomain(c.name); got != want {
			t.Errorf("%s (key %s): got %q, want %q", c.name, c.key, got, want)
		}
	}
	if !slices.IsSorted(doms) || len(slices.Compact(slices.Clone(doms))) != len(doms) {
		t.Errorf("domains %q: not sorted, or repeated", doms)
	}
}

// TestTopLevelLabelPlanned: the planner tests inventory names with
// names.Check, the rule the command line checks --hostname and --include
// with: a top-level label may start with a digit but not be all digits
// (RFC 3696 §2). planner.CheckName used to exclude mail.1com too.
func TestTopLevelLabelPlanned(t *testing.T) {
	ips := []string{"127.0.0.2"}
	inv := inventory(ips,
		nm("mail.1com", []string{"1com"}, ips, model.RoleMX),
		nm("mail.123", []string{"123"}, ips, model.RoleMX),
	)
	pl := mustPlan(t, inv, nil, Policy{}, nil)
	var planned []string
	for _, c := range pl.Certificates {
		planned = append(planned, c.Names...)
	}
	if !slices.Equal(planned, []string{"mail.1com"}) {
		t.Errorf("planned %v, want [mail.1com]", planned)
	}
	if len(pl.Excluded) != 1 || pl.Excluded[0].Name != "mail.123" || pl.Excluded[0].Code != model.ExcludeInvalidName {
		t.Errorf("excluded %+v, want mail.123 as %s", pl.Excluded, model.ExcludeInvalidName)
	}
}
