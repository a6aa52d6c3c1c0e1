package planner_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/dnscheck"
	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
	"github.com/miekg/dns"
)

// dnsZones are hosted domains on a shared host: w.test has a wildcard
// record, f.test's MX is another provider's host whose DNS fails, t.test's
// MX has a TLSA lookup that fails.
var dnsZones = map[string]string{
	"test": "",
	"w.test": `@ MX 10 mail
* A 127.0.0.2
mail A 127.0.0.2
imap CNAME mail
_submission._tcp SRV 0 1 587 smtp.w.test.
`,
	"prov.test": "mx A 127.0.0.2\n",
	"f.test":    "@ MX 10 mx.prov.test.\nmail A 127.0.0.2\n",
	"t.test":    "@ MX 10 mail\nmail A 127.0.0.2\n",
}

func serveZones(t *testing.T) *dnstest.Server {
	t.Helper()
	s := dnstest.New()
	for origin, text := range dnsZones {
		if err := s.AddZone(origin, "$ORIGIN "+origin+".\n$TTL 300\n"+text); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.SetFault("mx.prov.test", dnstest.FaultServfail)
	s.SetFaultType("_25._tcp.mail.t.test", dns.TypeTLSA, dnstest.FaultServfail)
	return s
}

// TestInventoryToPlan runs the real inventory against DNS on loopback and
// plans: wildcard-only names are left out (mail.<domain>, MX and SRV
// targets stay; --include and a previous plan keep one), a failing foreign
// MX target is excluded without failing its domain, and a failed TLSA
// lookup plans the name with a warning.
func TestInventoryToPlan(t *testing.T) {
	s := serveZones(t)
	r, err := dnscheck.NewResolver(dnscheck.Config{Servers: []string{s.Addr()}, Timeout: 500 * time.Millisecond, Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	inv, err := r.Inventory(context.Background(), []string{"w.test", "f.test", "t.test"},
		dnscheck.Options{ServerIPs: []netip.Addr{netip.MustParseAddr("127.0.0.2")}})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Stats.DomainsFailed != 0 {
		t.Fatalf("domains failed: %+v", inv.Domains)
	}
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	plan := func(pol planner.Policy, prev *model.Plan) *model.Plan {
		t.Helper()
		p, err := planner.Plan(inv, nil, pol, prev, now)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	excluded := func(p *model.Plan) map[string]string {
		m := map[string]string{}
		for _, e := range p.Excluded {
			m[e.Name] = e.Code
		}
		return m
	}
	warned := func(p *model.Plan, code string) []string {
		var ns []string
		for _, w := range p.Warnings {
			if w.Code == code {
				ns = append(ns, w.Name)
			}
		}
		return ns
	}

	tests := []struct {
		name     string
		pol      planner.Policy
		prev     func() *model.Plan
		planned  []string
		excluded map[string]string
		warnings map[string][]string
	}{
		{
			// mail.t.test's TLSA state is unknown and no certificate holds
			// it yet: it is left out (planner/dane.go).
			name:    "first plan",
			planned: []string{"imap.w.test", "mail.f.test", "mail.w.test", "smtp.w.test"},
			excluded: map[string]string{
				"autoconfig.w.test":   model.ExcludeWildcardOnly,
				"autodiscover.w.test": model.ExcludeWildcardOnly,
				"pop.w.test":          model.ExcludeWildcardOnly,
				"mx.prov.test":        model.ExcludeLookupFailed,
				"mail.t.test":         model.ExcludeDANEPinned,
			},
			warnings: map[string][]string{model.WarnTLSALookupFailed: nil},
		},
		{
			name:    "--include plans a wildcard-only name",
			pol:     planner.Policy{Include: []string{"pop.w.test"}},
			planned: []string{"imap.w.test", "mail.f.test", "mail.w.test", "pop.w.test", "smtp.w.test"},
			excluded: map[string]string{
				"autoconfig.w.test":   model.ExcludeWildcardOnly,
				"autodiscover.w.test": model.ExcludeWildcardOnly,
				"mx.prov.test":        model.ExcludeLookupFailed,
				"mail.t.test":         model.ExcludeDANEPinned,
			},
			warnings: map[string][]string{model.WarnTLSALookupFailed: nil, model.WarnWildcardKept: nil},
		},
		{
			name: "a wildcard-only name on the previous plan stays",
			prev: func() *model.Plan {
				return &model.Plan{Header: model.Header{Kind: model.KindPlan, Version: model.Version},
					Certificates: []model.PlannedCert{{ID: "default-127.0.0.2", Default: true, IPs: []string{"127.0.0.2"},
						Names: []string{"autoconfig.w.test", "imap.w.test", "mail.f.test", "mail.t.test", "mail.w.test", "smtp.w.test"}}}}
			},
			planned: []string{"autoconfig.w.test", "imap.w.test", "mail.f.test", "mail.t.test", "mail.w.test", "smtp.w.test"},
			excluded: map[string]string{
				"autodiscover.w.test": model.ExcludeWildcardOnly,
				"pop.w.test":          model.ExcludeWildcardOnly,
				"mx.prov.test":        model.ExcludeLookupFailed,
			},
			warnings: map[string][]string{model.WarnTLSALookupFailed: {"mail.t.test"}, model.WarnWildcardKept: {"autoconfig.w.test"}},
		},
		{
			name: "a failing foreign MX target on the previous plan stays",
			prev: func() *model.Plan {
				return &model.Plan{Header: model.Header{Kind: model.KindPlan, Version: model.Version},
					Certificates: []model.PlannedCert{{ID: "default-127.0.0.2", Default: true, IPs: []string{"127.0.0.2"},
						Names: []string{"imap.w.test", "mail.f.test", "mail.t.test", "mail.w.test", "mx.prov.test", "smtp.w.test"}}}}
			},
			planned: []string{"imap.w.test", "mail.f.test", "mail.t.test", "mail.w.test", "mx.prov.test", "smtp.w.test"},
			excluded: map[string]string{
				"autoconfig.w.test":   model.ExcludeWildcardOnly,
				"autodiscover.w.test": model.ExcludeWildcardOnly,
				"pop.w.test":          model.ExcludeWildcardOnly,
			},
			warnings: map[string][]string{model.WarnKeptLookupFailed: {"mx.prov.test"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prev *model.Plan
			if tt.prev != nil {
				prev = tt.prev()
			}
			p := plan(tt.pol, prev)
			if got := plannedNames(p); !slices.Equal(got, tt.planned) {
				t.Errorf("planned %v, want %v", got, tt.planned)
			}
			if got := excluded(p); !mapsEqual(got, tt.excluded) {
				t.Errorf("excluded %v, want %v", got, tt.excluded)
			}
			for code, want := range tt.warnings {
				if got := warned(p, code); !slices.Equal(got, want) {
					t.Errorf("warnings %s: %v, want %v", code, got, want)
				}
			}
			for _, e := range p.Excluded {
				if e.Code == model.ExcludeWildcardOnly && (!strings.Contains(e.Reason, "*.w.test") || !strings.Contains(e.Reason, "--include "+e.Name)) {
					t.Errorf("%s: reason %q lacks the wildcard or the --include fix", e.Name, e.Reason)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestWildcardOnly(t *testing.T) {
	exists := func(d, role string) model.Source { return model.Source{Domain: d, Role: role, Record: "exists"} }
	tests := []struct {
		name string
		n    model.Name
		want bool
	}{
		{"not marked", model.Name{Roles: []string{"smtp"}, Sources: []model.Source{exists("d.test", "smtp")}}, false},
		{"conventional only", model.Name{Wildcard: true, Roles: []string{"smtp"}, Sources: []model.Source{exists("d.test", "smtp")}}, true},
		{"mail stays", model.Name{Wildcard: true, Roles: []string{"mail"}, Sources: []model.Source{exists("d.test", "mail")}}, false},
		{"an SRV target", model.Name{Wildcard: true, Roles: []string{"smtp", "submission"}, Sources: []model.Source{exists("d.test", "smtp"),
			{Domain: "d.test", Role: "submission", Record: "_submission._tcp.d.test. SRV 0 1 587 smtp.d.test."}}}, false},
		{"an MX target of another domain", model.Name{Wildcard: true, Roles: []string{"mx", "pop3"}, Sources: []model.Source{exists("d.test", "pop3"),
			{Domain: "e.test", Role: "mx", Record: "e.test. MX 10 pop.d.test."}}}, false},
		{"no sources: cannot tell", model.Name{Wildcard: true, Roles: []string{"smtp"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planner.WildcardOnly(&tt.n); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
