package planner

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// Which names are planned.
//
// A name from the inventory is planned when it points here (all or some of
// its addresses are server IPs; "some" adds a [model.WarnSomeHere] warning,
// because HTTP-01 validation may reach the other address), CAA allows the
// CA, its lookup did not fail, it is a valid host name ([names.Check]),
// and no --exclude pattern ([Pattern]) matches it. The checks run in that
// order of precedence: exclude pattern, invalid name, lookup failure,
// wildcard-only, address, CAA; a name gets one exclusion, the first that
// applies (see check).
//
// A conventional name that resolves only as its domain's wildcard record
// would, and that no MX, SRV or MTA-STS record names, is left out
// ([model.ExcludeWildcardOnly], see [WildcardOnly]); mail.<domain> stays.
// --include plans it anyway, and one already on the previous plan's
// certificate stays there with a [model.WarnWildcardKept] warning.
//
// A planned name whose TLSA lookup failed ([model.Name.TLSAError]) is
// planned like any other, with a [model.WarnTLSALookupFailed] warning: its
// addresses are known, only its DANE records are not.
//
// Must-cover names (the server's hostname and --include names) are never
// excluded by a pattern and come first by priority. When one is not in the
// inventory it is planned on the default certificate of every server IP,
// with a warning (addMissingMust). When one is in the inventory and fails a
// check, it is excluded like any other name and a
// [model.WarnMustCoverIssue] warning says so; the command exits non-zero.
//
// A name's client domain (its key) is the first of the hosted domains that
// use it, else its registered domain; SNI certificates keep a client
// domain's names together.

// selectNames applies the name rules and fills p.cands, sorted by name.
func (p *planner) selectNames() {
	if ic := p.inv.CAIdentifier; ic != "" && ic != p.ca {
		p.warn(model.WarnCAMismatch, "", "the inventory checked CAA for %q, the plan is for %q: CAA verdicts may be wrong; rerun the inventory with --ca-identifier %s", ic, p.ca, p.ca)
	}
	seen := map[string]bool{} // must-cover names found
	p.cands = make([]cand, 0, len(p.inv.Names)+len(p.must))
	p.ipArena = make([]int, 0, len(p.inv.Names)+len(p.inv.Names)/4)
	d := dedup{all: p.inv.Names}
	for i := range p.inv.Names {
		n := &p.inv.Names[i]
		name, ok := d.next(i)
		if !ok {
			continue
		}
		must := len(p.must) > 0 && p.must[name]
		if must {
			seen[name] = true
		}
		npend := len(p.pending)
		if c, ok := p.check(name, n, must); ok {
			c.inv = int32(i)
			p.cands = append(p.cands, c)
		} else if len(p.pending) > npend {
			p.pending[npend].inv = int32(i)
		} else if must {
			p.warnMustExcluded(name, p.exclIdx[name])
		}
	}
	p.addMissingMust(seen)
	if !slices.IsSortedFunc(p.cands, func(a, b cand) int { return strings.Compare(a.name, b.name) }) {
		slices.SortFunc(p.cands, func(a, b cand) int { return strings.Compare(a.name, b.name) })
	}
	p.keepPrevious()
	p.planWildcards()
	// Rank the client-domain keys so that sorting compares integers.
	p.keyByRank = p.rankKeys()
	p.nkeys = len(p.keyByRank)
	if p.needIdx {
		p.nameIdx = make(map[string]int, len(p.cands))
		for i := range p.cands {
			p.nameIdx[p.cands[i].name] = i
		}
	}
}

// dedup walks the inventory's names in order, normalised, skipping
// duplicates and the root. In a sorted inventory (certplan writes them
// sorted) duplicates are next to each other. Whether it is sorted is found
// on the way, not by a pass of its own (a million names' strings do not
// stay in the cache between two passes); from the first name out of order
// on, a map of the names seen finds them.
type dedup struct {
	all               []model.Name
	seen              map[string]bool // nil while the names come sorted
	prevName, prevRaw string
}

// next returns the i-th name in certplan's form, or false when it is to be
// skipped.
func (d *dedup) next(i int) (string, bool) {
	name := d.all[i].Name
	if d.seen == nil && name < d.prevRaw {
		d.seen = make(map[string]bool, len(d.all))
		for j := range i {
			d.seen[names.FromDNS(d.all[j].Name)] = true
		}
	}
	d.prevRaw = name
	name = names.FromDNS(name)
	if name == "" || name == d.prevName {
		return "", false // "." (null MX, SRV "no service") is not a name
	}
	d.prevName = name
	if d.seen != nil {
		if d.seen[name] {
			return "", false
		}
		d.seen[name] = true
	}
	return name, true
}

// addMissingMust plans the must-cover names the inventory does not have
// on the default certificate of every server IP, with a warning.
func (p *planner) addMissingMust(seen map[string]bool) {
	var missing []string
	for m := range p.must {
		if !seen[m] {
			missing = append(missing, m)
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		c := cand{name: m, prio: 0, must: true, inv: -1, key: RegisteredDomain(m),
			ipOff: int32(len(p.ipArena)), ipLen: int32(len(p.ips))}
		for i := range p.ips {
			p.ipArena = append(p.ipArena, i)
		}
		p.cands = append(p.cands, c)
		p.warn(model.WarnMustCoverIssue, m, "not in the inventory: planned on the default certificate of every server IP (%s) without checking its DNS or CAA; make sure it resolves here", strings.Join(p.ips, ", "))
	}
}

// ipIndex returns the index of a server IP given in canonical form.
func (p *planner) ipIndex(s string) (int, bool) {
	if len(p.ips) <= 8 {
		for i, ip := range p.ips {
			if ip == s {
				return i, true
			}
		}
		return 0, false
	}
	i, ok := p.ipIdx[s]
	return i, ok
}

// lookup returns the cand index of name.
func (p *planner) lookup(name string) (int, bool) {
	if p.nameIdx != nil {
		ci, ok := p.nameIdx[name]
		return ci, ok
	}
	ci, ok := slices.BinarySearchFunc(p.cands, name, func(c cand, n string) int { return strings.Compare(c.name, n) })
	return ci, ok
}

// check applies the name rules to one inventory name, in their order of
// precedence; on exclusion it records the reason and returns false. A name
// whose lookup failed, with a previous plan, waits in p.pending instead.
func (p *planner) check(name string, n *model.Name, must bool) (cand, bool) {
	if p.excludedByPolicy(name, must) {
		return cand{}, false
	}
	if why, ok := p.daneOut[name]; ok {
		p.exclude(name, model.ExcludeDANEPinned, why)
		return cand{}, false
	}
	if n.Error != "" {
		if p.prev != nil && !strings.Contains(n.Error, model.NameErrNXDOMAIN) {
			p.pend(name, n, must, false)
			return cand{}, false
		}
		p.excludeLookupFailed(name, n)
		return cand{}, false
	}
	wildKept := false
	if !must && WildcardOnly(n) {
		if !p.onPrevious(name) {
			p.exclude(name, model.ExcludeWildcardOnly, wildcardReason(name, n))
			return cand{}, false
		}
		wildKept = true
	}
	start := len(p.ipArena)
	elsewhere := p.appendServerIPs(n.Addresses)
	off, nips := p.sealIPs(start)
	if !p.reachable(name, n, nips > 0) || !p.caaAllows(name, n, must) {
		p.ipArena = p.ipArena[:start]
		return cand{}, false
	}
	p.warnPlanned(name, n, wildKept, elsewhere)
	c := p.candOf(name, n, must)
	c.ipOff, c.ipLen = off, nips
	return c, true
}

// excludedByPolicy applies the checks that need no DNS: --exclude (never
// to a must-cover name) and a valid host name, recording the exclusion.
func (p *planner) excludedByPolicy(name string, must bool) bool {
	if !must {
		for _, pat := range p.pats {
			if pat.Match(name) {
				p.exclude(name, model.ExcludePolicy, fmt.Sprintf("left out by --exclude %q", pat.String()))
				return true
			}
		}
	}
	base := name
	if names.IsWildcard(name) && p.onPrevious(name) {
		base = name[2:] // a wildcard kept from the previous plan (keep.go)
	}
	if err := names.Check(base); err != nil {
		p.exclude(name, model.ExcludeInvalidName, fmt.Sprintf("not a host name a public CA issues for: %v", err))
		return true
	}
	return false
}

// appendServerIPs appends to p.ipArena the indices of the server IPs among
// addrs, and returns the other addresses.
func (p *planner) appendServerIPs(addrs []string) (elsewhere []string) {
	for _, s := range addrs {
		i, ok := p.ipIndex(s)
		if !ok {
			if a, err := netip.ParseAddr(s); err == nil {
				i, ok = p.ipIdx[a.Unmap().String()]
			}
		}
		if ok {
			p.ipArena = append(p.ipArena, i)
		} else {
			elsewhere = append(elsewhere, s)
		}
	}
	return elsewhere
}

// sealIPs sorts the server IP indices appended to p.ipArena since start
// and drops duplicates: a cand's IPs, returned as its span of the arena.
func (p *planner) sealIPs(start int) (off, n int32) {
	here := p.ipArena[start:]
	if !slices.IsSorted(here) {
		slices.Sort(here)
	}
	here = slices.Compact(here)
	p.ipArena = p.ipArena[:start+len(here)]
	return int32(start), int32(len(here))
}

// reachable excludes a name that has no address, or none of this server's
// (here: it resolves to a server IP).
func (p *planner) reachable(name string, n *model.Name, here bool) bool {
	if len(n.Addresses) == 0 {
		via := ""
		if len(n.CNAMEChain) > 0 {
			via = " (CNAME to " + n.CNAMEChain[len(n.CNAMEChain)-1] + ")"
		}
		p.exclude(name, model.ExcludeNoAddress, fmt.Sprintf("has no A or AAAA record%s: no client can reach it; add a record for a server IP (%s) or leave it out", via, strings.Join(p.ips, ", ")))
		return false
	}
	if !here {
		p.exclude(name, model.ExcludePointsElsewhere, fmt.Sprintf("points elsewhere: resolves to %s, not to a server IP (%s); its clients reach another server, and HTTP-01 validation would too", strings.Join(n.Addresses, ", "), strings.Join(p.ips, ", ")))
		return false
	}
	return true
}

// caaAllows excludes a name whose CAA forbids the CA; a failed CAA lookup
// with a previous plan waits in p.pending instead.
func (p *planner) caaAllows(name string, n *model.Name, must bool) bool {
	if n.CAAOK {
		return true
	}
	if p.prev != nil && n.CAA.Error != "" {
		p.pend(name, n, must, true)
		return false
	}
	p.exclude(name, model.ExcludeCAAForbids, p.caaReason(n))
	return false
}

// warnPlanned records the warnings a planned name may carry: kept although
// wildcard-only, TLSA lookup failed, some addresses elsewhere.
func (p *planner) warnPlanned(name string, n *model.Name, wildKept bool, elsewhere []string) {
	if wildKept {
		p.warn(model.WarnWildcardKept, name, "kept from the previous plan, although it resolves only as its domain's wildcard record does and no MX, SRV or MTA-STS record names it (a new plan would leave it out): leave it out with --exclude %s if no client uses it, or keep it for good with --include %s", name, name)
	}
	if n.TLSAError != "" {
		p.warn(model.WarnTLSALookupFailed, name, "planned, but its TLSA lookup failed (%s): whether a DANE record pins its key or CA is unknown, so its certificate keeps its key (an unknown state never lets a key change); fix the lookup of _25._tcp.%s", n.TLSAError, name)
	}
	if len(elsewhere) > 0 {
		p.warn(model.WarnSomeHere, name, "resolves to %s as well as to this server: HTTP-01 validation may reach the other address and fail; fix the record or validate with DNS-01", strings.Join(elsewhere, ", "))
	}
}

// candOf makes the planned name for inventory name n, without its IPs:
// its priority (must-cover names first), its client domain (the first of
// its hosted domains, else its registered domain), and whether the plan
// must record its hosted domains (the name does not tell them).
func (p *planner) candOf(name string, n *model.Name, must bool) cand {
	prio := Priority(n.Roles)
	sts := p.enforced(name)
	if must || sts {
		prio = 0 // the hostname, --include names and MTA-STS enforced MX hosts come first
	}
	key := ""
	if len(n.Domains) > 0 {
		key = slices.Min(n.Domains)
	}
	if key == "" {
		key = RegisteredDomain(name)
	}
	return cand{name: name, prio: int8(prio), key: key, must: must, inv: -1,
		listed: len(n.Domains) > 1 || len(n.Domains) == 1 && !under(name, n.Domains[0]), tlsa: danePinned(n), sts: sts,
		hosted: len(n.Domains) > 0}
}

// WildcardOnly reports whether n is a conventional name that the plan
// leaves out because only a wildcard record seems to make it exist: the
// inventory found that it resolves exactly like a name that cannot exist
// under its domain ([model.Name.Wildcard]), no MX, SRV or MTA-STS record
// names it (every source is the conventional name's "exists"), and it is
// not mail.<domain>, the name hosting panels tell clients to use. A
// shared host's wildcard (cPanel adds one for a wildcard subdomain) would
// otherwise put smtp., imap., pop., autoconfig. and autodiscover. of every
// such domain on the certificates, names its clients were never given.
func WildcardOnly(n *model.Name) bool {
	if !n.Wildcard || len(n.Sources) == 0 || n.HasRole(model.RoleMail) {
		return false
	}
	for _, s := range n.Sources {
		if s.Record != "exists" {
			return false
		}
	}
	return true
}

func wildcardReason(name string, n *model.Name) string {
	parent := name
	if i := strings.IndexByte(name, '.'); i >= 0 {
		parent = name[i+1:]
	}
	return fmt.Sprintf("resolves just as a name that cannot exist under %s does (wildcard *.%s), and no MX, SRV or MTA-STS record names it: clients were likely never given it; if they use it, plan it with --include %s", parent, parent, name)
}

// onPrevious reports whether name is on one of the previous plan's
// certificates.
func (p *planner) onPrevious(name string) bool {
	if p.prev == nil {
		return false
	}
	if p.prevNames == nil {
		p.prevNames = map[string]bool{}
		for i := range p.prev.Certificates {
			for _, n := range p.prev.Certificates[i].Names {
				p.prevNames[n] = true
			}
		}
	}
	return p.prevNames[name]
}

func (p *planner) excludeLookupFailed(name string, n *model.Name) {
	p.exclude(name, model.ExcludeLookupFailed, fmt.Sprintf("DNS lookup failed (%s): fix the zone or its servers, then plan again", n.Error))
}

func (p *planner) warnMustExcluded(name string, k int) {
	p.warn(model.WarnMustCoverIssue, name, "must-cover name cannot be planned: %s", p.excluded[k].Reason)
}

// under reports whether name is domain or below it.
func under(name, domain string) bool {
	return name == domain || len(name) > len(domain)+1 && name[len(name)-len(domain)-1] == '.' && name[len(name)-len(domain):] == domain
}
