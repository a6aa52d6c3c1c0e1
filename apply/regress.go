package apply

// This file guards what a deploy must not break (issue 13, item 6): before
// the hooks run, it probes every inventory name on a server IP
// (Options.Inventory; without one, the plan's names and coverage rows),
// with and without SNI; after the deploy and its verification, it probes
// them again. A name that verified before and does not after is a
// Regression, whatever certificate serves it: names certplan does not
// manage included, since a hook or a new default certificate can take
// them away. Both probes use Verify.Prober, bounded by its concurrency
// and timeout.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
)

// Regression is a (name, IP, port) that clients verified before the deploy
// and do not after, with SNI or without.
type Regression struct {
	Name     string `json:"name"`
	IP       string `json:"ip"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	// SNI is true for clients that send the name, false for those that
	// send none (they get the IP's default certificate).
	SNI bool `json:"sni"`
	// Before and After are the probe's verdicts (model.Verdict*).
	Before string `json:"before"`
	After  string `json:"after"`
	// Detail is the probe's reason after, naming the certificate seen.
	Detail string `json:"detail,omitempty"`
}

// guard is the probe taken before the deploy.
type guard struct {
	scope  probe.Scope
	before map[string]model.Coverage // by name|IP|port
}

// probeBefore probes the guarded names before anything is deployed, when
// the run verifies and may deploy (a certificate to deploy, or one to
// retire); nil otherwise.
func (r *runner) probeBefore(ctx context.Context, results []*result) *guard {
	if r.o.Verify == nil || r.o.DryRun || !r.mayDeploy(results) {
		return nil
	}
	scope := r.guardScope()
	if len(scope.Names) == 0 {
		return nil
	}
	r.log.Info("probing the served names before the deploy", "handshakes", len(scope.Targets()))
	rep := r.o.Verify.Prober.Run(ctx, scope, nil)
	return &guard{scope: scope, before: coverageByKey(rep.Coverage)}
}

// mayDeploy reports whether a hook may run: a certificate to deploy, or
// a stored certificate the plan no longer has (a retirement).
func (r *runner) mayDeploy(results []*result) bool {
	for _, res := range results {
		if res != nil && res.deploy != nil {
			return true
		}
	}
	stored, err := r.o.Store.ListCerts()
	if err != nil {
		return true // retire reports it; probe anyway
	}
	for _, id := range stored {
		if !slices.ContainsFunc(r.o.Plan.Certificates, func(c model.PlannedCert) bool { return c.ID == id }) {
			return true
		}
	}
	return false
}

// guardScope is every inventory name at each server IP it resolves to,
// on Verify.Ports; without an inventory, the plan's names on their IPs
// and the names of its coverage rows (what the plan's probe saw).
func (r *runner) guardScope() probe.Scope {
	if r.o.Inventory != nil {
		s := probe.InventoryScope(r.o.Inventory, r.o.Verify.Ports)
		s.Hostname = r.o.Plan.Policy.Hostname
		return s
	}
	s := probe.Scope{Hostname: r.o.Plan.Policy.Hostname}
	seen := map[string]bool{}
	add := func(name, ip string) {
		name = strings.ToLower(name)
		if seen[name+"|"+ip] || strings.HasPrefix(name, "*.") {
			return
		}
		seen[name+"|"+ip] = true
		for _, p := range r.o.Verify.Ports {
			s.Names = append(s.Names, probe.NameAt{Name: name, Service: probe.Service{IP: ip, Port: p.Port, Protocol: p.Protocol}})
		}
	}
	for _, c := range r.o.Plan.Certificates {
		for _, ip := range c.IPs {
			for _, n := range normNames(c.Names) {
				add(n, ip)
			}
		}
	}
	for _, c := range r.o.Plan.Coverage {
		add(c.Name, c.IP)
	}
	return s
}

// regressions probes g's scope again and lists what verified before and
// does not now, sorted by name, IP, port, with SNI first. What looks broken
// is probed once more, alone: a handshake that timed out on a loaded server
// (or while it reloaded) is no evidence that the deploy broke a name, and
// only what fails twice is reported.
func (r *runner) regressions(ctx context.Context, g *guard) []Regression {
	out := r.compare(r.o.Verify.Prober.Run(ctx, g.scope, nil), g)
	if len(out) == 0 || ctx.Err() != nil {
		return out
	}
	again := probe.Scope{Hostname: g.scope.Hostname}
	seen := map[string]bool{}
	for _, x := range out {
		k := fmt.Sprintf("%s|%s|%d", x.Name, x.IP, x.Port)
		if !seen[k] {
			seen[k] = true
			again.Names = append(again.Names, probe.NameAt{Name: x.Name, Service: probe.Service{IP: x.IP, Port: x.Port, Protocol: x.Protocol}})
		}
	}
	return r.compare(r.o.Verify.Prober.Run(ctx, again, nil), g)
}

// compare lists the pairs of rep that verified in g's probe before the
// deploys and do not in rep.
func (r *runner) compare(rep *model.ProbeReport, g *guard) []Regression {
	fresh := r.freshServed(rep.Endpoints)
	var out []Regression
	for _, c := range rep.Coverage {
		b, ok := g.before[covKey(&c)]
		if !ok {
			continue
		}
		base := Regression{Name: c.Name, IP: c.IP, Port: c.Port, Protocol: c.Protocol}
		if c.WithSNI == model.VerdictExpired && fresh[fmt.Sprintf("%s|%d|%s", c.IP, c.Port, c.Name)] {
			c.WithSNI = model.VerdictOK
		}
		if c.WithoutSNI == model.VerdictExpired && fresh[fmt.Sprintf("%s|%d|", c.IP, c.Port)] {
			c.WithoutSNI = model.VerdictOK
		}
		if b.WithSNI == model.VerdictOK && c.WithSNI != model.VerdictOK {
			x := base
			x.SNI, x.Before, x.After, x.Detail = true, b.WithSNI, c.WithSNI, c.WithSNIDetail
			out = append(out, x)
		}
		if b.WithoutSNI == model.VerdictOK && c.WithoutSNI != model.VerdictOK {
			x := base
			x.Before, x.After, x.Detail = b.WithoutSNI, c.WithoutSNI, c.WithoutSNIDetail
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b Regression) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.IP, b.IP), cmp.Compare(a.Port, b.Port), boolFirst(a.SNI, b.SNI))
	})
	return out
}

// freshServed marks the endpoints ("IP|port|SNI") that serve a
// certificate this run stored: it was checked valid at the run's clock
// before it was stored (issued.go), so an "expired" verdict on it is the
// CA's clock ahead of the probe's (a not-before seconds away), which is
// verification's concern, not a name the deploy took away.
func (r *runner) freshServed(eps []model.Endpoint) map[string]bool {
	serials := map[string]bool{}
	for _, c := range r.rep.Changed() {
		serials[c.Serial] = true
	}
	m := map[string]bool{}
	for _, e := range eps {
		if e.Leaf != nil && serials[e.Leaf.Serial] {
			m[fmt.Sprintf("%s|%d|%s", e.IP, e.Port, e.SNI)] = true
		}
	}
	return m
}

func boolFirst(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

func coverageByKey(rows []model.Coverage) map[string]model.Coverage {
	m := make(map[string]model.Coverage, len(rows))
	for _, c := range rows {
		m[covKey(&c)] = c
	}
	return m
}

func covKey(c *model.Coverage) string { return fmt.Sprintf("%s|%s|%d", c.Name, c.IP, c.Port) }
