package planner

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/certplan/certplan/model"
)

// sharedInventory: two server IPs, a hostname on the first, and two client
// domains with three names each, one domain on each IP.
func sharedInventory() *model.Inventory {
	a, b := []string{"127.0.0.2"}, []string{"127.0.0.3"}
	return inventory([]string{"127.0.0.2", "127.0.0.3"},
		nm("mx.hoster.test", []string{"hoster.test"}, a, model.RoleMX),
		nm("mail.alpha.test", []string{"alpha.test"}, a, model.RoleMail),
		nm("smtp.alpha.test", []string{"alpha.test"}, a, model.RoleSMTP),
		nm("autoconfig.alpha.test", []string{"alpha.test"}, a, model.RoleAutoconfig),
		nm("mail.beta.test", []string{"beta.test"}, b, model.RoleMail),
		nm("smtp.beta.test", []string{"beta.test"}, b, model.RoleSMTP),
		nm("autoconfig.beta.test", []string{"beta.test"}, b, model.RoleAutoconfig),
	)
}

func defaults(p *model.Plan) []model.PlannedCert {
	var ds []model.PlannedCert
	for _, c := range p.Certificates {
		if c.Default {
			ds = append(ds, c)
		}
	}
	return ds
}

func TestSharedDefault(t *testing.T) {
	both := []string{"127.0.0.2", "127.0.0.3"}
	tests := []struct {
		name     string
		mode     string
		max      int
		defaults int      // default certificates
		defIPs   []string // IPs of the first default
		onDef    []string // names that must be on a default
		sniOnly  []string
		field    string // the plan's policy.default_cert
	}{
		{name: "per-ip: a default per IP", mode: "", max: 100, defaults: 2, defIPs: []string{"127.0.0.2"}, field: ""},
		{name: "per-ip spelled out", mode: DefaultCertPerIP, max: 100, defaults: 2, defIPs: []string{"127.0.0.2"}, field: ""},
		{name: "shared: one default on both IPs", mode: DefaultCertShared, max: 100, defaults: 1, defIPs: both,
			onDef: []string{"mx.hoster.test", "mail.alpha.test", "mail.beta.test", "autoconfig.beta.test"}, field: "shared"},
		{name: "shared: overflow to SNI, hostname kept", mode: DefaultCertShared, max: 4, defaults: 1, defIPs: both,
			onDef:   []string{"mx.hoster.test", "smtp.alpha.test", "smtp.beta.test"},
			sniOnly: []string{"autoconfig.alpha.test", "autoconfig.beta.test", "mail.beta.test"}, field: "shared"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := Policy{MaxNames: tt.max, Hostname: "mx.hoster.test", DefaultCert: tt.mode}
			p := mustPlan(t, sharedInventory(), nil, pol, nil)
			ds := defaults(p)
			if len(ds) != tt.defaults {
				t.Fatalf("%d default certificates, want %d: %+v", len(ds), tt.defaults, ds)
			}
			if !slices.Equal(ds[0].IPs, tt.defIPs) {
				t.Errorf("default served on %v, want %v", ds[0].IPs, tt.defIPs)
			}
			for _, n := range tt.onDef {
				if !slices.Contains(ds[0].Names, n) {
					t.Errorf("%s not on the default %v", n, ds[0].Names)
				}
			}
			if tt.sniOnly != nil && !slices.Equal(p.SNIOnly, tt.sniOnly) {
				t.Errorf("sni_only %v, want %v", p.SNIOnly, tt.sniOnly)
			}
			if p.Policy.DefaultCert != tt.field {
				t.Errorf("policy.default_cert %q, want %q", p.Policy.DefaultCert, tt.field)
			}
			if tt.mode == DefaultCertShared && p.ExtraIPsNeeded != 0 {
				t.Errorf("extra_ips_needed %d: another IP gets the same shared default", p.ExtraIPsNeeded)
			}
			for _, c := range p.Certificates {
				if !c.Default && tt.mode == DefaultCertShared && !slices.Equal(c.IPs, both) {
					t.Errorf("SNI certificate %s on %v, want every IP", c.ID, c.IPs)
				}
			}
		})
	}
}

// An idle IP in shared mode still gets the one default: cPanel serves it
// on every address.
func TestSharedDefaultIdleIP(t *testing.T) {
	inv := sharedInventory()
	inv.ServerIPs = append(inv.ServerIPs, "127.0.0.4")
	p := mustPlan(t, inv, nil, Policy{Hostname: "mx.hoster.test", DefaultCert: DefaultCertShared}, nil)
	ds := defaults(p)
	if len(ds) != 1 || len(ds[0].IPs) != 3 {
		t.Fatalf("defaults %+v, want one on three IPs", ds)
	}
	for _, w := range p.Warnings {
		if w.Code == model.WarnIdleIP {
			t.Errorf("idle-IP warning in shared mode: %s", w.Message)
		}
	}
}

func TestSharedDefaultBadMode(t *testing.T) {
	_, err := Plan(sharedInventory(), nil, Policy{DefaultCert: "one"}, nil, now)
	if err == nil || !strings.Contains(err.Error(), "per-ip or shared") {
		t.Fatalf("err = %v, want one naming the modes", err)
	}
}

// Switching modes is a name-set change: per-ip → shared keeps the first
// IP's default ID (now served on both) and retires the other; back to
// per-ip, the shared default continues on one IP and the other IP gets a
// new default.
func TestSharedDefaultSwitchKeepsIDs(t *testing.T) {
	pol := Policy{Hostname: "mx.hoster.test"}
	perIP := mustPlan(t, sharedInventory(), nil, pol, nil)
	pol.DefaultCert = DefaultCertShared
	shared := mustPlan(t, sharedInventory(), nil, pol, perIP)
	ds := defaults(shared)
	if len(ds) != 1 || ds[0].ID != "default-127.0.0.2" || ds[0].Change != "changed" {
		t.Fatalf("shared defaults %+v, want default-127.0.0.2 continued", ds)
	}
	if !slices.Equal(shared.Retired, []string{"default-127.0.0.3"}) {
		t.Errorf("retired %v, want default-127.0.0.3", shared.Retired)
	}
	again := mustPlan(t, sharedInventory(), nil, pol, shared)
	for _, c := range again.Certificates {
		if c.Change != "unchanged" {
			t.Errorf("replanning shared: %s %s, want unchanged", c.ID, c.Change)
		}
	}
	pol.DefaultCert = DefaultCertPerIP
	back := mustPlan(t, sharedInventory(), nil, pol, shared)
	if c := certByID(back, "default-127.0.0.2"); c == nil || !slices.Equal(c.IPs, []string{"127.0.0.2"}) {
		t.Errorf("back to per-ip: default-127.0.0.2 = %+v, want it on 127.0.0.2", c)
	}
}

func TestSharedDefaultGolden(t *testing.T) {
	pol := Policy{MaxNames: 4, Hostname: "mx.hoster.test", DefaultCert: DefaultCertShared}
	p := mustPlan(t, sharedInventory(), nil, pol, nil)
	out, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "shared", append(out, '\n'))
}
