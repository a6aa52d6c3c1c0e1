package probe

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certplan/certplan/model"
)

// Service is an IP, port and protocol: what a client connects to.
type Service struct {
	IP       string
	Port     int
	Protocol string // a model.Proto* value
}

// NameAt is a name that clients dial at a service: one coverage row.
type NameAt struct {
	Name string
	Service
}

// Scope is what a run probes. Every service is probed once without SNI,
// and once with SNI per name at it; services named only through Names are
// probed without SNI too. Coverage has one row per distinct NameAt.
type Scope struct {
	Services []Service
	Names    []NameAt
	// Hostname is the server's own name (--hostname), by which verdicts
	// name the certificate that covers it; empty: the SMTP greeting's.
	Hostname string
	// MX are, by name, the MX hosts whose SMTP rows get DANE and MTA-STS
	// verdicts ([MXHosts]); nil: none.
	MX map[string]MX
}

// InventoryScope returns the scope for inv: every server IP on every port,
// and every name that points (all or partly) here, at each server IP among
// its addresses, on every port; its MX hosts get sender verdicts.
func InventoryScope(inv *model.Inventory, ports []Port) Scope {
	s := Scope{MX: MXHosts(inv)}
	server := make(map[string]bool, len(inv.ServerIPs))
	for _, ip := range inv.ServerIPs {
		ip = canonIP(ip)
		if server[ip] {
			continue
		}
		server[ip] = true
		for _, p := range ports {
			s.Services = append(s.Services, Service{IP: ip, Port: p.Port, Protocol: p.Protocol})
		}
	}
	for i := range inv.Names {
		n := &inv.Names[i]
		if n.Here != model.HereAll && n.Here != model.HereSome {
			continue
		}
		for _, a := range n.Addresses {
			a = canonIP(a)
			if !server[a] {
				continue
			}
			for _, p := range ports {
				s.Names = append(s.Names, NameAt{Name: strings.ToLower(n.Name), Service: Service{IP: a, Port: p.Port, Protocol: p.Protocol}})
			}
		}
	}
	return s
}

// canonIP returns ip in its canonical text form, or ip unchanged when it is
// not an address.
func canonIP(ip string) string {
	if a, err := netip.ParseAddr(ip); err == nil {
		return a.Unmap().String()
	}
	return ip
}

// Targets returns the distinct handshakes scope needs, sorted.
func (s Scope) Targets() []Target {
	seen := make(map[Target]bool, len(s.Services)+len(s.Names))
	var ts []Target
	add := func(t Target) {
		if !seen[t] {
			seen[t] = true
			ts = append(ts, t)
		}
	}
	for _, sv := range s.Services {
		add(Target{IP: canonIP(sv.IP), Port: sv.Port, Protocol: sv.Protocol})
	}
	for _, n := range s.Names {
		ip := canonIP(n.IP)
		add(Target{IP: ip, Port: n.Port, Protocol: n.Protocol})
		add(Target{IP: ip, Port: n.Port, Protocol: n.Protocol, SNI: n.Name})
	}
	slices.SortFunc(ts, func(a, b Target) int {
		return cmpEndpoint(a.IP, a.Port, a.Protocol, a.SNI, b.IP, b.Port, b.Protocol, b.SNI)
	})
	return ts
}

func cmpIP(a, b string) int {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	if errX == nil && errY == nil {
		return x.Compare(y)
	}
	return strings.Compare(a, b)
}

func cmpEndpoint(ipA string, portA int, protoA, sniA, ipB string, portB int, protoB, sniB string) int {
	if c := cmpIP(ipA, ipB); c != 0 {
		return c
	}
	return cmp.Or(cmp.Compare(portA, portB), strings.Compare(protoA, protoB), strings.Compare(sniA, sniB))
}

// Run probes every target of scope, at most Config.Concurrency at once,
// calling onResult (when non-nil) as each handshake ends, one call at a
// time and in completion order, so a slow endpoint holds back no other
// result. It returns the report: endpoints, coverage and stats. Failed
// handshakes are endpoints with an Error, not a failure of the run; when
// ctx ends, the remaining handshakes fail fast as timeouts.
//
// Targets are handed out in turn across (IP, port), and each (IP, port) is
// tried once before its other targets start: when that first handshake
// times out without the server sending a byte (a host that drops packets,
// or accepts and never speaks), the other targets there fail at once as
// timeouts ("skipped: ... did not answer an earlier handshake"), so a dead
// endpoint costs one timeout, not one per name.
func (p *Prober) Run(ctx context.Context, scope Scope, onResult func(model.Endpoint)) *model.ProbeReport {
	ts := scope.Targets()
	eps := make([]model.Endpoint, len(ts))
	workers := min(p.cfg.Concurrency, len(ts))
	s := newScheduler(ts)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range workers {
		wg.Go(func() {
			for {
				i, g, state, ok := s.next()
				if !ok {
					return
				}
				var ep model.Endpoint
				switch state {
				case groupSilent:
					ep = skipped(ts[i], g.addr)
				case groupTesting:
					var silent bool
					ep, silent, _ = p.probe(ctx, ts[i])
					s.tested(g, silent && ctx.Err() == nil)
				default:
					ep, _, _ = p.probe(ctx, ts[i])
				}
				eps[i] = ep
				if onResult != nil {
					mu.Lock()
					onResult(ep)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return Report(scope, eps, p.cfg.Now())
}

// skipped is the endpoint of a target not tried because its (IP, port)
// never answered: a timeout, as its first handshake was.
func skipped(t Target, addr string) model.Endpoint {
	e := &Error{Kind: model.ErrorKindTimeout, Op: "skipped", Err: fmt.Errorf("%s did not answer an earlier handshake", addr)}
	return model.Endpoint{IP: t.IP, Port: t.Port, Protocol: t.Protocol, SNI: t.SNI, Error: e.Error(), ErrorKind: e.Kind}
}

// Group states: the first handshake at an (IP, port) runs alone (testing);
// then the others go (open), or fail at once (silent).
const (
	groupUntested = iota
	groupTesting
	groupOpen
	groupSilent
)

// group is the targets of one (IP, port), in order.
type group struct {
	addr    string
	pending []int // indices into the targets, not handed out yet
	state   int
}

// scheduler hands out targets in turn across (IP, port) groups, holding a
// group's targets back while its first handshake is under way.
type scheduler struct {
	mu     sync.Mutex
	cond   sync.Cond
	groups []*group // groups with targets pending
	rr     int      // the group to serve next
}

func newScheduler(ts []Target) *scheduler {
	s := &scheduler{}
	s.cond.L = &s.mu
	byAddr := map[string]*group{}
	for i, t := range ts {
		addr := net.JoinHostPort(t.IP, strconv.Itoa(t.Port))
		g := byAddr[addr]
		if g == nil {
			g = &group{addr: addr}
			byAddr[addr] = g
			s.groups = append(s.groups, g)
		}
		g.pending = append(g.pending, i)
	}
	return s
}

// next returns the next target to probe, its group and the group's state,
// which says what to do: groupTesting means the caller makes the group's
// first handshake and must report it with tested. ok is false when every
// target has been handed out.
func (s *scheduler) next() (i int, g *group, state int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if len(s.groups) == 0 {
			return 0, nil, 0, false
		}
		for k := range s.groups {
			gi := (s.rr + k) % len(s.groups)
			g := s.groups[gi]
			if g.state == groupTesting {
				continue
			}
			if g.state == groupUntested {
				g.state = groupTesting
			}
			i := g.pending[0]
			g.pending = g.pending[1:]
			if len(g.pending) == 0 {
				s.groups = append(s.groups[:gi], s.groups[gi+1:]...)
				s.rr = gi
			} else {
				s.rr = gi + 1
			}
			if s.rr >= len(s.groups) {
				s.rr = 0
			}
			return i, g, g.state, true
		}
		// Only groups whose first handshake is under way are left.
		s.cond.Wait()
	}
}

// tested records the outcome of a group's first handshake.
func (s *scheduler) tested(g *group, silent bool) {
	s.mu.Lock()
	if silent {
		g.state = groupSilent
	} else {
		g.state = groupOpen
	}
	s.mu.Unlock()
	s.cond.Broadcast()
}

// Report builds the probe report for scope from endpoints (in any order),
// judging coverage at now.
func Report(scope Scope, endpoints []model.Endpoint, now time.Time) *model.ProbeReport {
	eps := slices.Clone(endpoints)
	slices.SortFunc(eps, func(a, b model.Endpoint) int {
		return cmpEndpoint(a.IP, a.Port, a.Protocol, a.SNI, b.IP, b.Port, b.Protocol, b.SNI)
	})
	for i := range eps {
		// Leaf may point into the caller's Chain; make it this copy's.
		if eps[i].Leaf != nil && len(eps[i].Chain) > 0 {
			eps[i].Leaf = &eps[i].Chain[0]
		}
	}
	r := &model.ProbeReport{
		Header:    model.Header{Kind: model.KindProbe, Version: model.Version, GeneratedAt: now.UTC().Format(time.RFC3339)},
		Endpoints: eps,
		Coverage:  Coverage(scope, eps, now),
		Hostname:  scope.Hostname,
	}
	if r.Endpoints == nil {
		r.Endpoints = []model.Endpoint{}
	}
	names := map[string]bool{}
	for _, e := range eps {
		if e.Error != "" {
			r.Stats.EndpointErrors++
		}
	}
	for _, c := range r.Coverage {
		names[c.Name] = true
		if !c.OK() {
			r.Stats.Broken++
		}
		if c.Refused() {
			r.Stats.Refused++
		}
	}
	r.Stats.Endpoints = len(eps)
	r.Stats.Names = len(names)
	return r
}

// Coverage judges every distinct name of scope at its service, with and
// without SNI, from endpoints; a handshake missing from endpoints is an
// error verdict. SMTP rows (STARTTLS, whatever the port) of the MX hosts
// in scope.MX also get the DANE and MTA-STS verdicts ([DANEVerdict],
// [MTASTSVerdict]). Rows are sorted by name, IP, port.
func Coverage(scope Scope, endpoints []model.Endpoint, now time.Time) []model.Coverage {
	type key struct {
		ip    string
		port  int
		proto string
		sni   string
	}
	byKey := make(map[key]*model.Endpoint, len(endpoints))
	for i := range endpoints {
		e := &endpoints[i]
		byKey[key{canonIP(e.IP), e.Port, e.Protocol, e.SNI}] = e
	}
	seen := map[NameAt]bool{}
	rows := []model.Coverage{}
	servers := ServerNames(endpoints, scope.Hostname)
	for _, n := range scope.Names {
		n.IP = canonIP(n.IP)
		if seen[n] {
			continue
		}
		seen[n] = true
		c := model.Coverage{Name: n.Name, IP: n.IP, Port: n.Port, Protocol: n.Protocol}
		c.WithSNI, c.WithSNIDetail = Verdict(byKey[key{n.IP, n.Port, n.Protocol, n.Name}], n.Name, servers[n.IP], now)
		c.WithoutSNI, c.WithoutSNIDetail = Verdict(byKey[key{n.IP, n.Port, n.Protocol, ""}], n.Name, servers[n.IP], now)
		if mx, ok := scope.MX[n.Name]; ok && n.Protocol == model.ProtoSMTP {
			c.DANE, c.DANEDetail = DANEVerdict(byKey[key{n.IP, n.Port, n.Protocol, n.Name}], n.Name, mx, now)
			c.MTASTS, c.MTASTSDetail = MTASTSVerdict(n.Name, c.WithSNI, c.WithoutSNI, mx.Policies)
		}
		rows = append(rows, c)
	}
	slices.SortFunc(rows, func(a, b model.Coverage) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), cmpIP(a.IP, b.IP), cmp.Compare(a.Port, b.Port), strings.Compare(a.Protocol, b.Protocol))
	})
	return rows
}
