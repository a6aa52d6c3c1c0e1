package apply

// This file verifies a deploy: it probes the changed certificates' names
// on their IPs and ports, with and without SNI, until the new certificate
// is what clients get or Verify.Wait has passed.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
)

// verify probes every name of the changed certificates on each of their IPs
// and Verify.Ports, with and without SNI, and says per (name, IP, port)
// whether the new certificate (by serial) is what clients get. Servers
// reload asynchronously, so it probes again until every row is as planned
// or Verify.Wait has passed.
func (r *runner) verify(ctx context.Context, planned []model.PlannedCert) ([]VerifyRow, error) {
	wait := r.o.Verify.Wait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	wants, scope := r.verifyWants(planned)
	if len(wants) == 0 {
		return nil, nil
	}
	deadline := time.Now().Add(wait)
	for {
		rows, allOK := r.verifyOnce(ctx, wants, scope)
		if allOK || time.Now().After(deadline) || ctx.Err() != nil {
			slices.SortFunc(rows, func(a, b VerifyRow) int {
				return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.IP, b.IP), cmp.Compare(a.Port, b.Port))
			})
			return rows, nil
		}
		r.log.Info("new certificate not served everywhere yet; probing again")
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// verifyWant is what one (name, IP) of a changed certificate should serve.
type verifyWant struct {
	certID string
	name   string
	ip     string
	sni    []string // serials acceptable with SNI; first is the changed certificate's
	def    string   // the default certificate's serial without SNI ("" when the name is SNI-only there)
	defID  string
}

// verifyWants lists what each name of the changed certificates should
// serve on each of their IPs, and the probes that tell.
func (r *runner) verifyWants(planned []model.PlannedCert) ([]verifyWant, probe.Scope) {
	// The serial now current for every planned certificate.
	serial := map[string]string{}
	for _, c := range r.rep.Certificates {
		serial[c.ID] = c.Serial
	}
	var wants []verifyWant
	scope := probe.Scope{Hostname: r.o.Plan.Policy.Hostname}
	for _, c := range r.rep.Changed() {
		for _, ip := range c.IPs {
			for _, name := range dialNames(r.o.Plan, c.Issued) {
				w := verifyWant{certID: c.ID, name: name, ip: ip, sni: []string{c.Serial}}
				for _, pc := range planned {
					if !slices.Contains(pc.IPs, ip) || !slices.ContainsFunc(normNames(pc.Names), func(n string) bool { return leafCovers([]string{n}, name) }) {
						continue
					}
					if pc.ID != c.ID && serial[pc.ID] != "" {
						w.sni = append(w.sni, serial[pc.ID])
					}
					if pc.Default {
						w.def, w.defID = serial[pc.ID], pc.ID
					}
				}
				wants = append(wants, w)
				for _, p := range r.o.Verify.Ports {
					scope.Names = append(scope.Names, probe.NameAt{Name: name, Service: probe.Service{IP: ip, Port: p.Port, Protocol: p.Protocol}})
				}
			}
		}
	}
	return wants, scope
}

// dialNames are the names clients dial that issued names cover: a
// wildcard stands for the names the plan says it replaced
// ([model.Plan.DialNames]); no client dials "*.parent".
func dialNames(p *model.Plan, issued []string) []string {
	var out []string
	for _, n := range issued {
		for _, d := range p.DialNames(n) {
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	return out
}

// verifyOnce probes scope once and judges every want on every port.
func (r *runner) verifyOnce(ctx context.Context, wants []verifyWant, scope probe.Scope) ([]VerifyRow, bool) {
	rep := r.o.Verify.Prober.Run(ctx, scope, nil)
	servers := probe.ServerNames(rep.Endpoints, scope.Hostname)
	byKey := map[string]*model.Endpoint{}
	for i := range rep.Endpoints {
		e := &rep.Endpoints[i]
		byKey[fmt.Sprintf("%s|%d|%s", e.IP, e.Port, e.SNI)] = e
	}
	cov := map[string]*model.Coverage{}
	for i := range rep.Coverage {
		c := &rep.Coverage[i]
		cov[fmt.Sprintf("%s|%s|%d", c.Name, c.IP, c.Port)] = c
	}
	var rows []VerifyRow
	allOK := true
	for _, w := range wants {
		for _, p := range r.o.Verify.Ports {
			row := VerifyRow{CertID: w.certID, Name: w.name, IP: w.ip, Port: p.Port, Protocol: p.Protocol}
			c := cov[fmt.Sprintf("%s|%s|%d", w.name, w.ip, p.Port)]
			withV, withD, woV, woD := model.VerdictError, "not probed", model.VerdictError, "not probed"
			if c != nil {
				withV, withD, woV, woD = c.WithSNI, c.WithSNIDetail, c.WithoutSNI, c.WithoutSNIDetail
			}
			withEP := byKey[fmt.Sprintf("%s|%d|%s", w.ip, p.Port, w.name)]
			row.WithSNI, row.WithSNIDetail = judge(withEP, w.sni, servers[w.ip], withV, withD)
			if row.WithSNI == VerifyNew && w.sni[0] != serialOf(withEP) {
				row.WithSNI = VerifyCurrent
			}
			if w.def == "" {
				row.WithoutSNI, row.WithoutSNIDetail = VerifySNIOnly, "the planned default certificate of "+w.ip+" does not list the name"
			} else {
				row.WithoutSNI, row.WithoutSNIDetail = judge(byKey[fmt.Sprintf("%s|%d|", w.ip, p.Port)], []string{w.def}, servers[w.ip], woV, woD)
				if row.WithoutSNI == VerifyNew && w.defID != w.certID {
					row.WithoutSNI = VerifyCurrent
				}
			}
			allOK = allOK && row.OK()
			rows = append(rows, row)
		}
	}
	return rows, allOK
}

func serialOf(ep *model.Endpoint) string {
	if ep == nil || ep.Leaf == nil {
		return ""
	}
	return ep.Leaf.Serial
}

// judge says whether ep serves one of the serials wanted (the first is
// the new certificate's).
func judge(ep *model.Endpoint, wanted []string, server, verdict, detail string) (string, string) {
	got := serialOf(ep)
	if got == "" {
		return VerifyBad, detail
	}
	who := fmt.Sprintf("serial %s", got)
	if slices.Contains(wanted, got) {
		return VerifyNew, who
	}
	if verdict == model.VerdictOK || verdict == model.VerdictUntrusted {
		// It lists the name, but it is not the certificate just deployed.
		return VerifyOld, who + " (" + probe.CertName(ep.Leaf, server) + ", not the current certificate)"
	}
	return VerifyBad, who + ": " + detail
}
