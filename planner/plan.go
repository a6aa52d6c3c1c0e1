package planner

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// Plan runs the phases in order, each in its own file:
//
//	setup          the policy: limits, CA, server IPs, patterns, must-cover names (this file)
//	selectNames    which inventory names are planned (select.go; caa.go words CAA exclusions)
//	keepPrevious   names kept through a failed lookup (keep.go, join.go for matching names)
//	planWildcards  "*.parent" for two or more names under parent (wildcards.go)
//	rankKeys       client domains ranked (keys.go)
//	groupIPs       server IPs with identical name sets (group.go)
//	build          default and SNI certificates (build.go; match.go, pack.go, merge.go, ids.go)
//	checkSTS       MTA-STS enforce MX hosts on their IPs' defaults (mtasts.go)
//	assemble       the plan document (assemble.go; budget.go, dane.go, keep.go's nameDomains)
//	               and the refusals (gate.go)
//	coverage       what the probe's handshakes will see (coverage.go)
//	noSNI          hosted domains fully covered without SNI, per IP (nosni.go)
//
// The planner's state is indices, not strings: a planned name is its
// index in p.cands (sorted by name), a server IP its index in p.ips
// (sorted), a client domain its key rank (see rankKeys). Plans of 10⁶
// names are compared and sorted as integers (see sets.go).

// cand is a planned name.
// It is kept small (56 bytes): plans of 10⁶ names walk these often.
type cand struct {
	name         string
	key          string // client-domain group: first domain, else registered domain
	ipOff, ipLen int32  // its server IPs: planner.ipArena[ipOff:ipOff+ipLen], sorted
	inv          int32  // index into the inventory's names, -1 when not there
	krank        int32  // rank of key among all keys
	prio         int8
	must         bool
	// listed: the plan records its hosted domains (model.Plan.NameDomains).
	listed bool
	tlsa   bool // DANE pins its key or CA, or may (danePinned, dane.go)
	sts    bool // an MTA-STS enforce policy lists it (mtasts.go)
	hosted bool // a hosted domain uses it (its key is that domain unless listed)
}

// ipsOf returns the server IP indices of cand ci.
func (p *planner) ipsOf(ci int) []int {
	c := &p.cands[ci]
	return p.ipArena[c.ipOff : c.ipOff+c.ipLen]
}

// bcert is a certificate being built.
type bcert struct {
	id     string
	prev   *model.PlannedCert
	def    bool
	ips    []int
	names  []int   // cand indices
	kr     []int32 // key ranks of names, when known
	tlsa   []int   // names with TLSA records
	key    string
	change string
	// shared: an SNI certificate that continues one served on other
	// groups' IPs too (merged): it takes new names only of the client
	// domains it holds, not other domains' by best fit, so that it stays
	// identical to its copies in the other groups.
	shared bool
	// alt are further previous certificates this one continues (two
	// merged); assignIDs keeps one.
	alt []*model.PlannedCert
}

type planner struct {
	inv    *model.Inventory
	pol    Policy
	limit  int
	limits RateLimits
	ca     string
	ips    []string // sorted, canonical
	ipIdx  map[string]int
	pats   []Pattern
	must   map[string]bool
	host   string
	prev   *model.Plan
	// shared: one default certificate for every server IP (group.go).
	shared bool

	cands   []cand
	ipArena []int
	// partBits, when not 0, replaces prevPartBits (tests: parts of a few
	// names).
	partBits int
	needIdx  bool // build nameIdx (a lookup for every probed name follows)
	// keyByRank are the client-domain keys in string order.
	keyByRank []string
	nkeys     int
	nameIdx   map[string]int
	// prevCands are the planned names of each previous certificate.
	prevCands map[*model.PlannedCert][]prevName
	excluded  []model.Exclusion
	exclIdx   map[string]int
	warnings  []model.Warning
	groups    []*ipGroup
	ipGroup   []int // server IP index → group index, -1 when no names
	used      map[string]bool
	certs     []*bcert
	// pending are names whose lookup failed, decided once the previous
	// plan has been read (see keep.go).
	pending []pending
	// prevGroups are the groups each previous certificate was served on
	// (see servedGroups).
	prevGroups map[*model.PlannedCert][]int
	// prevNames are the names on the previous plan's certificates, built
	// when first needed (see onPrevious).
	prevNames map[string]bool
	// extraDoms are hosted domains to record for a name beyond the
	// inventory's: a failing domain's earlier claim on it, carried forward.
	extraDoms map[string][]string
	// caaAts are the names at which the inventory found CAA sets, built
	// when a CAA lookup failure needs them (see caaZone).
	caaAts map[string]bool

	// wild says where wildcards may be planned, nil for none; nwild is
	// how many planned names are wildcards (they sort first), covered the
	// names they replaced, by wildcard (wildcards.go).
	wild    *wildZones
	nwild   int
	covered []coveredName
	// prevWild: the previous plan has a wildcard name (see coverPrevious).
	prevWild bool

	// sts are the MX hosts MTA-STS policies list (mtasts.go).
	sts map[string][]stsListing
	// refusals are what the DANE and MTA-STS gates refuse (gate.go).
	refusals GateError
	// unfit are pinned names whose certificate's key their TLSA records
	// do not trust, with the reason (dane.go): Plan plans again without
	// them. daneOut are those of the earlier rounds, left out by check.
	unfit, daneOut map[string]string
}

// Plan computes the certificates that make every planned name of inv verify
// on the server IPs with and without SNI; the package documentation lists
// the files that hold the rules. probes and prev may be nil. now only stamps the plan's
// generated_at. The error reports an invalid inventory or policy, or a
// plan refused because it would stop inbound mail (*[GateError]: DANE,
// MTA-STS); any other problem with a name is in the plan.
func Plan(inv *model.Inventory, probes *model.ProbeReport, pol Policy, prev *model.Plan, now time.Time) (*model.Plan, error) {
	if inv == nil {
		return nil, errors.New("plan: no inventory")
	}
	var daneOut map[string]string
	for {
		p, out, err := planOnce(inv, probes, pol, prev, daneOut)
		if err != nil {
			return nil, err
		}
		if n := len(daneOut); len(p.unfit) > 0 {
			// Plan again without them (dane.go): their certificate's
			// names change, so the others' fit is tested again. Each
			// round leaves out more names, so this ends.
			if daneOut == nil {
				daneOut = map[string]string{}
			}
			maps.Copy(daneOut, p.unfit)
			if len(daneOut) > n {
				continue
			}
		}
		if len(p.refusals.DANE)+len(p.refusals.MTASTS) > 0 {
			return nil, &p.refusals
		}
		return p.finish(out, probes, now), nil
	}
}

// planOnce runs the phases up to the plan document, leaving out the
// names of daneOut.
func planOnce(inv *model.Inventory, probes *model.ProbeReport, pol Policy, prev *model.Plan, daneOut map[string]string) (*planner, *model.Plan, error) {
	p := &planner{inv: inv, pol: pol, prev: prev, used: map[string]bool{}, exclIdx: map[string]int{}, daneOut: daneOut}
	if err := p.setup(); err != nil {
		return nil, nil, fmt.Errorf("plan: %w", err)
	}
	p.needIdx = probes != nil
	p.selectNames()
	p.groupIPs()
	p.build()
	p.checkSTS()
	return p, p.assemble(), nil
}

// finish adds what the probe's handshakes will see, the plan's time and
// its ID.
func (p *planner) finish(out *model.Plan, probes *model.ProbeReport, now time.Time) *model.Plan {
	if probes != nil {
		out.Coverage = p.coverage(probes)
	}
	out.NoSNI = p.noSNI(probes)
	if !now.IsZero() {
		out.GeneratedAt = now.UTC().Format(time.RFC3339)
	}
	out.ID = planID(out)
	return out
}

// setup reads the policy: the name limit and rate limits, the CA, the
// server IPs, the --exclude patterns and the must-cover names.
func (p *planner) setup() error {
	var err error
	if p.limit, err = p.pol.NameLimit(); err != nil {
		return err
	}
	p.limits = p.pol.Limits.withDefaults()
	if p.shared, err = p.pol.SharedDefault(); err != nil {
		return err
	}
	p.ca = cmp.Or(p.pol.CAIdentifier, p.inv.CAIdentifier)
	if err := p.serverIPs(); err != nil {
		return err
	}
	for _, s := range p.pol.Exclude {
		pat, err := ParsePattern(s)
		if err != nil {
			return err
		}
		p.pats = append(p.pats, pat)
	}
	if err := p.mustCover(); err != nil {
		return err
	}
	if p.wild, err = p.wildcardZones(); err != nil {
		return err
	}
	p.sts = stsHosts(p.inv)
	if p.prev != nil {
		for i := range p.prev.Certificates {
			p.used[p.prev.Certificates[i].ID] = true
		}
	}
	return nil
}

// serverIPs sets the server IPs, the policy's or else the inventory's, in
// canonical form (IPv4-mapped IPv6 addresses as IPv4), sorted, without
// duplicates.
func (p *planner) serverIPs() error {
	ips := p.pol.ServerIPs
	if len(ips) == 0 {
		ips = p.inv.ServerIPs
	}
	if len(ips) == 0 {
		return errors.New("no server IPs: give them or use an inventory that lists them")
	}
	var addrs []netip.Addr
	for _, s := range ips {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("server IP %q: not an IP address", s)
		}
		addrs = append(addrs, a.Unmap())
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	p.ipIdx = map[string]int{}
	for i, a := range addrs {
		p.ips = append(p.ips, a.String())
		p.ipIdx[a.String()] = i
	}
	return nil
}

// mustCover sets the must-cover names: the server's hostname and the
// --include names, normalised.
func (p *planner) mustCover() error {
	p.must = map[string]bool{}
	if p.pol.Hostname != "" {
		h, err := names.Normalize(p.pol.Hostname)
		if err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
		p.host = h
		p.must[h] = true
	}
	for _, s := range p.pol.Include {
		n, err := names.Normalize(s)
		if err != nil {
			return fmt.Errorf("include: %w", err)
		}
		p.must[n] = true
	}
	return nil
}

func (p *planner) exclude(name, code, reason string) {
	p.exclIdx[name] = len(p.excluded)
	p.excluded = append(p.excluded, model.Exclusion{Name: name, Code: code, Reason: reason})
}

func (p *planner) warn(code, name, format string, args ...any) {
	p.warnings = append(p.warnings, model.Warning{Code: code, Name: name, Message: fmt.Sprintf(format, args...)})
}
