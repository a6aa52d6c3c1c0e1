package planner

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

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
	tlsa   bool // the inventory has TLSA records for it
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

// ipGroup is a set of server IPs whose planned names are identical.
type ipGroup struct {
	ips   []int
	cands []int // in name order
	def   *bcert
	sni   []*bcert
	// inDef marks cands on the default certificate (bitset over cand indices).
	inDef []uint64
	// overflow: planned names of the group that are not on its default.
	overflow int
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

	cands   []cand
	ipArena []int
	needIdx bool // build nameIdx (a lookup for every probed name follows)
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
}

// Plan computes the certificates that make every planned name of inv verify
// on the server IPs with and without SNI; see the package documentation for
// the rules. probes and prev may be nil. now only stamps the plan's
// generated_at. The error reports an invalid inventory or policy, never a
// problem with a name: those are in the plan.
func Plan(inv *model.Inventory, probes *model.ProbeReport, pol Policy, prev *model.Plan, now time.Time) (*model.Plan, error) {
	if inv == nil {
		return nil, errors.New("plan: no inventory")
	}
	p := &planner{inv: inv, pol: pol, prev: prev, used: map[string]bool{}, exclIdx: map[string]int{}}
	if err := p.setup(); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	p.needIdx = probes != nil
	p.selectNames()
	p.groupIPs()
	p.build()
	out := p.assemble()
	if probes != nil {
		out.Coverage = p.coverage(probes)
	}
	if !now.IsZero() {
		out.GeneratedAt = now.UTC().Format(time.RFC3339)
	}
	out.ID = planID(out)
	return out, nil
}

func (p *planner) setup() error {
	var err error
	if p.limit, err = p.pol.NameLimit(); err != nil {
		return err
	}
	p.limits = p.pol.Limits.withDefaults()
	p.ca = p.pol.CAIdentifier
	if p.ca == "" {
		p.ca = p.inv.CAIdentifier
	}
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
	for _, s := range p.pol.Exclude {
		pat, err := ParsePattern(s)
		if err != nil {
			return err
		}
		p.pats = append(p.pats, pat)
	}
	p.must = map[string]bool{}
	if p.pol.Hostname != "" {
		h, err := NormalizeName(p.pol.Hostname)
		if err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
		p.host = h
		p.must[h] = true
	}
	for _, s := range p.pol.Include {
		n, err := NormalizeName(s)
		if err != nil {
			return fmt.Errorf("include: %w", err)
		}
		p.must[n] = true
	}
	if p.prev != nil {
		for i := range p.prev.Certificates {
			p.used[p.prev.Certificates[i].ID] = true
		}
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

// selectNames applies the name rules and fills p.cands, sorted by name.
func (p *planner) selectNames() {
	if ic := p.inv.CAIdentifier; ic != "" && ic != p.ca {
		p.warn(model.WarnCAMismatch, "", "the inventory checked CAA for %q, the plan is for %q: CAA verdicts may be wrong; rerun the inventory with --ca-identifier %s", ic, p.ca, p.ca)
	}
	seen := map[string]bool{} // must-cover names found
	// Duplicates: in a sorted inventory (certplan writes them sorted) they
	// are next to each other. Whether it is sorted is found on the way, not
	// by a pass of its own (a million names' strings do not stay in the
	// cache between two passes); from the first name out of order on, a
	// map of the names seen finds them.
	var dup map[string]bool
	prevName, prevRaw := "", ""
	p.cands = make([]cand, 0, len(p.inv.Names)+len(p.must))
	p.ipArena = make([]int, 0, len(p.inv.Names)+len(p.inv.Names)/4)
	for i := range p.inv.Names {
		n := &p.inv.Names[i]
		name := n.Name
		if dup == nil && name < prevRaw {
			dup = make(map[string]bool, len(p.inv.Names))
			for j := range i {
				dup[names.FromDNS(p.inv.Names[j].Name)] = true
			}
		}
		prevRaw = name
		if strings.HasSuffix(name, ".") || strings.ToLower(name) != name {
			name = names.FromDNS(name)
		}
		if name == "" || name == prevName {
			continue // "." (null MX, SRV "no service") is not a name
		}
		prevName = name
		if dup != nil {
			if dup[name] {
				continue
			}
			dup[name] = true
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
	if !slices.IsSortedFunc(p.cands, func(a, b cand) int { return strings.Compare(a.name, b.name) }) {
		slices.SortFunc(p.cands, func(a, b cand) int { return strings.Compare(a.name, b.name) })
	}
	p.keepPrevious()
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

// rankKeys sets each cand's krank to the rank of its key among the
// distinct keys in string order, and returns the keys by rank, copied into
// one string so that comparing them later reads memory in cache.
//
// A map from key to number and a sort of the keys is the obvious way, and
// at 10⁵ names it is fast: the map fits in the processor's cache. At 10⁶
// it does not, and every probe waits for memory. But names are sorted, and
// the names one label above their client domain with the same label
// (mail.a.test, mail.b.test, ...) list their keys in order: the cands are a
// few runs of ascending keys, one per label, and merging the runs ranks
// the keys reading each run in order. The other names (a shared MX host,
// names deeper below their domain) are sorted apart and merged as one more
// run.
func (p *planner) rankKeys() []string {
	var runs [][]int32
	var odd []int32
	cur, label, last := -1, "", ""
	for ci := range p.cands {
		c := &p.cands[ci]
		n, k := c.name, c.key
		if underKey(c) {
			if l := n[:len(n)-len(k)-1]; strings.IndexByte(l, '.') < 0 {
				if cur < 0 || l != label || k <= last {
					cur, label = len(runs), l
					runs = append(runs, nil)
				}
				runs[cur] = append(runs[cur], int32(ci))
				last = k
				continue
			}
		}
		odd = append(odd, int32(ci))
	}
	if len(odd) > 0 {
		slices.SortFunc(odd, func(a, b int32) int { return strings.Compare(p.cands[a].key, p.cands[b].key) })
		runs = append(runs, odd)
	}
	// A binary heap of runs by their head's key.
	heap := make([]int, len(runs))
	head := make([]string, len(runs))
	pos := make([]int, len(runs))
	for r := range runs {
		heap[r] = r
		head[r] = p.cands[runs[r][0]].key
	}
	less := func(i, j int) bool { return head[heap[i]] < head[heap[j]] }
	down := func(i int) {
		for {
			m, l, r := i, 2*i+1, 2*i+2
			if l < len(heap) && less(l, m) {
				m = l
			}
			if r < len(heap) && less(r, m) {
				m = r
			}
			if m == i {
				return
			}
			heap[i], heap[m] = heap[m], heap[i]
			i = m
		}
	}
	for i := len(heap)/2 - 1; i >= 0; i-- {
		down(i)
	}
	var arena []byte
	off := make([]int32, 1, len(p.inv.Domains)+1)
	rank := int32(-1)
	for len(heap) > 0 {
		r := heap[0]
		ci := runs[r][pos[r]]
		k := head[r]
		if rank < 0 || k != string(arena[off[rank]:off[rank+1]]) {
			rank++
			arena = append(arena, k...)
			off = append(off, int32(len(arena)))
		}
		p.cands[ci].krank = rank
		if pos[r]++; pos[r] < len(runs[r]) {
			head[r] = p.cands[runs[r][pos[r]]].key
		} else {
			heap[0] = heap[len(heap)-1]
			heap = heap[:len(heap)-1]
		}
		down(0)
	}
	all := string(arena)
	keys := make([]string, len(off)-1)
	for k := range keys {
		keys[k] = all[off[k]:off[k+1]]
	}
	return keys
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

// check applies the name rules to one inventory name; on exclusion it
// records the reason and returns false.
func (p *planner) check(name string, n *model.Name, must bool) (_ cand, ok bool) {
	if !must {
		for _, pat := range p.pats {
			if pat.Match(name) {
				p.exclude(name, model.ExcludePolicy, fmt.Sprintf("left out by --exclude %q", pat.String()))
				return cand{}, false
			}
		}
	}
	if err := CheckName(name); err != nil {
		p.exclude(name, model.ExcludeInvalidName, fmt.Sprintf("not a host name a public CA issues for: %v", err))
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
	var elsewhere []string
	for _, s := range n.Addresses {
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
	here := p.ipArena[start:]
	if !slices.IsSorted(here) {
		slices.Sort(here)
	}
	here = slices.Compact(here)
	p.ipArena = p.ipArena[:start+len(here)]
	defer func() {
		if !ok {
			p.ipArena = p.ipArena[:start]
		}
	}()
	if len(n.Addresses) == 0 {
		via := ""
		if len(n.CNAMEChain) > 0 {
			via = " (CNAME to " + n.CNAMEChain[len(n.CNAMEChain)-1] + ")"
		}
		p.exclude(name, model.ExcludeNoAddress, fmt.Sprintf("has no A or AAAA record%s: no client can reach it; add a record for a server IP (%s) or leave it out", via, strings.Join(p.ips, ", ")))
		return cand{}, false
	}
	if len(here) == 0 {
		p.exclude(name, model.ExcludePointsElsewhere, fmt.Sprintf("points elsewhere: resolves to %s, not to a server IP (%s); its clients reach another server, and HTTP-01 validation would too", strings.Join(n.Addresses, ", "), strings.Join(p.ips, ", ")))
		return cand{}, false
	}
	if !n.CAAOK {
		if p.prev != nil && n.CAA.Error != "" {
			p.pend(name, n, must, true)
			return cand{}, false
		}
		p.exclude(name, model.ExcludeCAAForbids, p.caaReason(n))
		return cand{}, false
	}
	if wildKept {
		p.warn(model.WarnWildcardKept, name, "kept from the previous plan, although it resolves only as its domain's wildcard record does and no MX, SRV or MTA-STS record names it (a new plan would leave it out): leave it out with --exclude %s if no client uses it, or keep it for good with --include %s", name, name)
	}
	if n.TLSAError != "" {
		p.warn(model.WarnTLSALookupFailed, name, "planned, but its TLSA lookup failed (%s): whether a DANE record pins its key or CA is unknown; look at _25._tcp.%s before a new key is deployed (--reuse-key keeps the key)", n.TLSAError, name)
	}
	if len(elsewhere) > 0 {
		p.warn(model.WarnSomeHere, name, "resolves to %s as well as to this server: HTTP-01 validation may reach the other address and fail; fix the record or validate with DNS-01", strings.Join(elsewhere, ", "))
	}
	prio := Priority(n.Roles)
	if must {
		prio = 0 // the hostname and --include names come first
	}
	key := ""
	if len(n.Domains) > 0 {
		key = slices.Min(n.Domains)
	}
	c := cand{name: name, prio: int8(prio), key: key, must: must, ipOff: int32(start), ipLen: int32(len(here)),
		listed: len(n.Domains) > 1 || len(n.Domains) == 1 && !under(name, n.Domains[0]), tlsa: len(n.TLSA) > 0}
	if c.key == "" {
		c.key = RegisteredDomain(name)
	}
	return c, true
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

// caaReason explains why CAA excludes n, with the fix: the zone-file line
// that lets the CA issue, at the name whose CAA set applies; for a failed
// lookup, the zone whose DNS servers must answer ([planner.caaZone]).
func (p *planner) caaReason(n *model.Name) string {
	v := n.CAA
	if v.Error != "" {
		return fmt.Sprintf("CAA lookup failed (%s), which a CA treats as forbidding issuance: fix the DNS servers of %s (where its CAA records are looked up), or leave the name out", v.Error, p.caaZone(n.Name))
	}
	why := v.Reason
	if why == "" {
		why = fmt.Sprintf("CAA at %s does not allow %q", cmp.Or(v.At, n.Name), p.ca)
	}
	recs := ""
	if len(v.Records) > 0 {
		recs = " (" + strings.Join(v.Records, "; ") + ")"
	}
	// The set may have been found through a CNAME (X an alias of Y): the
	// records live at Y, and X can hold no others.
	at := cmp.Or(caaAlias(v), v.At, n.Name)
	if strings.Contains(why, "critical record") {
		return fmt.Sprintf("%s%s: no CA may issue; remove the critical record at %s or leave the name out with --exclude", why, recs, at)
	}
	return fmt.Sprintf("%s%s: the CA would refuse the whole order; to let it issue, add this record: %s; or leave the name out with --exclude", why, recs, CAAIssueRecord(at, p.ca))
}

// CAAIssueRecord returns the zone-file line of a CAA record at name that
// allows the CA with issuer domain ca to issue (RFC 8659 §4.2), such as
// `example.test. IN CAA 0 issue "letsencrypt.org"`. The value is always a
// quoted character-string; quotes, backslashes and bytes outside printable
// ASCII in it are escaped as RFC 1035 §5.1 says.
func CAAIssueRecord(name, ca string) string {
	name = strings.TrimSuffix(name, ".") + "."
	return name + " IN CAA 0 issue " + zoneQuote(ca)
}

// zoneQuote quotes s as an RFC 1035 character-string.
func zoneQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// caaAlias returns the CNAME target where v's set was found, or "": the
// verdict's Alias, or for an inventory written before it had one, read
// from the reason dnscheck writes ("CAA at X (CNAME to Y) ...").
func caaAlias(v model.CAAVerdict) string {
	if v.Alias != "" {
		return v.Alias
	}
	rest, ok := strings.CutPrefix(v.Reason, "CAA at "+v.At+" (CNAME to ")
	if !ok || v.At == "" {
		return ""
	}
	target, _, ok := strings.Cut(rest, ")")
	if !ok || target == "" || strings.ContainsAny(target, " \"") {
		return ""
	}
	return target
}

// caaZone returns where the CAA records of name live, for a name whose CAA
// lookup failed: the closest name enclosing it (or itself) at which the
// inventory found a CAA set for another name, else its registered domain.
func (p *planner) caaZone(name string) string {
	if p.caaAts == nil {
		p.caaAts = map[string]bool{}
		for i := range p.inv.Names {
			if v := &p.inv.Names[i].CAA; v.Error == "" && v.At != "" {
				p.caaAts[names.FromDNS(v.At)] = true
			}
		}
	}
	for d := name; d != ""; {
		if p.caaAts[d] {
			return d
		}
		_, d, _ = strings.Cut(d, ".")
	}
	return RegisteredDomain(name)
}

// groupIPs groups the server IPs whose planned name sets are identical.
func (p *planner) groupIPs() {
	per := make([][]int, len(p.ips))
	count := make([]int, len(p.ips))
	for _, i := range p.ipArena {
		count[i]++
	}
	for i := range per {
		per[i] = make([]int, 0, count[i])
	}
	for ci := range p.cands {
		for _, i := range p.ipsOf(ci) {
			per[i] = append(per[i], ci)
		}
	}
	p.ipGroup = make([]int, len(p.ips))
	byHash := map[uint64][]int{}
	for i := range p.ips {
		p.ipGroup[i] = -1
		if len(per[i]) == 0 {
			p.warnIdle(i)
			continue
		}
		h := fnv.New64a()
		var b [8]byte
		for _, ci := range per[i] {
			for k := range b {
				b[k] = byte(ci >> (8 * k))
			}
			h.Write(b[:])
		}
		sum := h.Sum64()
		found := false
		for _, gi := range byHash[sum] {
			if slices.Equal(p.groups[gi].cands, per[i]) {
				p.groups[gi].ips = append(p.groups[gi].ips, i)
				p.ipGroup[i] = gi
				found = true
				break
			}
		}
		if !found {
			byHash[sum] = append(byHash[sum], len(p.groups))
			p.ipGroup[i] = len(p.groups)
			p.groups = append(p.groups, &ipGroup{ips: []int{i}, cands: per[i]})
		}
	}
}

// warnIdle says that server IP i gets no default certificate: no planned
// name resolves to it, and a certificate without names cannot be ordered.
func (p *planner) warnIdle(i int) {
	ip := p.ips[i]
	if p.prev != nil {
		for k := range p.prev.Certificates {
			if pc := &p.prev.Certificates[k]; pc.Default && slices.Contains(pc.IPs, ip) {
				p.warn(model.WarnIdleIP, "", "no planned name resolves to %s: no default certificate is planned for it; %s, its default in the previous plan, no longer is (its files stay where the servers read them, but certplan stops renewing it for %s): take the IP out of the server IPs, or point names at it", ip, pc.ID, ip)
				return
			}
		}
	}
	p.warn(model.WarnIdleIP, "", "no planned name resolves to %s: no default certificate is planned for it, and the plan leaves the one its servers present alone", ip)
}

// inGroup reports whether a planned name is in group g.
func (p *planner) inGroup(ci, g int) bool {
	for _, i := range p.ipsOf(ci) {
		if p.ipGroup[i] == g {
			return true
		}
	}
	return false
}

// groupsOf returns the groups a planned name is in.
func (p *planner) groupsOf(ci int) []int {
	var gs []int
	for _, i := range p.ipsOf(ci) {
		if g := p.ipGroup[i]; g >= 0 && !slices.Contains(gs, g) {
			gs = append(gs, g)
		}
	}
	return gs
}

// prevName is a planned name on a previous certificate, with what build
// needs of it, read once while its cand is in cache.
type prevName struct {
	ci, krank int32
	// groups has bit g set when the name is in group g (groups < 64).
	groups uint64
}

// in reports whether the name is in group g.
func (p *planner) in(pn prevName, g int) bool {
	if len(p.groups) <= 64 {
		return pn.groups&(1<<g) != 0
	}
	return p.inGroup(int(pn.ci), g)
}

// matchPrevious assigns previous certificates to groups: defaults to the
// group sharing most names with them (preferring one sharing an IP and
// needing fewest additions), SNI certificates to the group sharing most
// names. It returns, per group, its previous default and previous SNI
// certificates, and, for a group left without a previous default, the
// heir: a previous default served on one of its IPs that shares no name
// with it and that no group continues. Its ID passes to the group's
// default (the IP's default certificate keeps its ID when all its names
// changed); its names play no part.
func (p *planner) matchPrevious() (defs []*model.PlannedCert, snis [][]*model.PlannedCert, heirs []*model.PlannedCert) {
	defs = make([]*model.PlannedCert, len(p.groups))
	snis = make([][]*model.PlannedCert, len(p.groups))
	heirs = make([]*model.PlannedCert, len(p.groups))
	if p.prev == nil {
		return defs, snis, heirs
	}
	type pair struct{ g, c, ipx, overlap, added int }
	var pairs []pair
	p.servedGroups()
	p.prevCands = make(map[*model.PlannedCert][]prevName, len(p.prev.Certificates))
	flat, off := p.joinPrevious()
	overlap := make([]int, len(p.groups))
	for c := range p.prev.Certificates {
		pc := &p.prev.Certificates[c]
		clear(overlap)
		cs := flat[off[c]:off[c]]
		for _, pn := range flat[off[c]:off[c+1]] {
			if pn.ci < 0 {
				continue
			}
			cs = append(cs, pn) // in place: cs never passes the entry read
			if len(p.groups) <= 64 {
				for m := pn.groups; m != 0; m &= m - 1 {
					overlap[bits.TrailingZeros64(m)]++
				}
				continue
			}
			for _, g := range p.groupsOf(int(pn.ci)) {
				overlap[g]++
			}
		}
		cs = cs[:len(cs):len(cs)]
		p.prevCands[pc] = cs
		if !pc.Default {
			// Ties go to a group it is served on: a certificate whose names
			// are all on two groups' IPs stays with its own.
			best, served := -1, false
			for g, o := range overlap {
				if o == 0 || best >= 0 && o < overlap[best] {
					continue
				}
				if best < 0 || o > overlap[best] {
					best, served = g, p.servedOn(pc, g)
				} else if !served && p.servedOn(pc, g) {
					best, served = g, true
				}
			}
			if best >= 0 {
				snis[best] = append(snis[best], pc)
			}
			// A certificate served on IPs now in several groups (merged
			// across groups, see merge) also seeds each other of those
			// groups it shares names with: while their names still
			// coincide, the copies merge again and keep its ID.
			for g, o := range overlap {
				if o > 0 && g != best && p.servedOn(pc, g) {
					snis[g] = append(snis[g], pc)
				}
			}
			continue
		}
		for g, o := range overlap {
			if o == 0 {
				continue
			}
			ipx := 0
			if p.servedOn(pc, g) {
				ipx = 1
			}
			pairs = append(pairs, pair{g, c, ipx, o, len(p.groups[g].cands) - o})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		return cmp.Or(b.ipx-a.ipx, b.overlap-a.overlap, a.added-b.added, a.g-b.g, a.c-b.c)
	})
	taken := map[int]bool{}
	for _, pr := range pairs {
		if defs[pr.g] == nil && !taken[pr.c] {
			defs[pr.g] = &p.prev.Certificates[pr.c]
			taken[pr.c] = true
		}
	}
	// A previous default served on IPs that are now in several groups
	// (defaults merged across groups, or one group split) seeds the default
	// of each of those groups left without one, as if they were still one
	// group: while their names coincide, the defaults merge again and keep
	// its ID; when they differ, one keeps it (see assignIDs).
	for _, pr := range pairs {
		if defs[pr.g] == nil && pr.ipx == 1 {
			defs[pr.g] = &p.prev.Certificates[pr.c]
		}
	}
	continued := map[*model.PlannedCert]bool{}
	for _, d := range defs {
		continued[d] = true
	}
	for g := range defs {
		if defs[g] != nil {
			continue
		}
		for c := range p.prev.Certificates {
			if pc := &p.prev.Certificates[c]; pc.Default && !continued[pc] && p.servedOn(pc, g) {
				heirs[g] = pc
				continued[pc] = true
				break
			}
		}
	}
	// The certificates served on a group's IPs first, then copies of
	// others', each by ID: build gives a name to the first that holds it,
	// and a copy must not take a name from the certificate that served it
	// on these IPs (its ID would change on every run).
	for g := range snis {
		if len(snis[g]) < 2 {
			continue
		}
		own := make(map[*model.PlannedCert]bool, len(snis[g]))
		for _, pc := range snis[g] {
			own[pc] = p.servedOn(pc, g)
		}
		slices.SortFunc(snis[g], func(a, b *model.PlannedCert) int {
			if own[a] != own[b] {
				if own[a] {
					return -1
				}
				return 1
			}
			return strings.Compare(a.ID, b.ID)
		})
	}
	return defs, snis, heirs
}

// servedGroups sets p.prevGroups: for each previous certificate, the
// groups of the server IPs it was served on, read in one pass over the
// certificates in order. At 10⁶ names there are 10⁴ certificates, whose
// IP strings lie far apart in memory: looking them up again for each
// question about a certificate (servedOn, servedElsewhere) waited for
// memory each time.
func (p *planner) servedGroups() {
	p.prevGroups = make(map[*model.PlannedCert][]int, len(p.prev.Certificates))
	for c := range p.prev.Certificates {
		pc := &p.prev.Certificates[c]
		var gs []int
		for _, s := range pc.IPs {
			if i, ok := p.ipIdx[s]; ok && p.ipGroup[i] >= 0 {
				gs = append(gs, p.ipGroup[i])
			}
		}
		p.prevGroups[pc] = gs
	}
}

// servedOn reports whether the previous certificate pc was served on one
// of group g's IPs.
func (p *planner) servedOn(pc *model.PlannedCert, g int) bool {
	return slices.Contains(p.prevGroups[pc], g)
}

// servedElsewhere reports whether the previous certificate pc was served on
// an IP of another group than g.
func (p *planner) servedElsewhere(pc *model.PlannedCert, g int) bool {
	for _, h := range p.prevGroups[pc] {
		if h != g {
			return true
		}
	}
	return false
}

// sortByPriority orders cands by priority, client domain, name (cand
// indices are in name order). It sorts packed integers: fast for 10⁶ names.
func (p *planner) sortByPriority(cs []int) {
	p.sortPacked(cs, true)
}

// sortByKey orders cands by client domain, name.
func (p *planner) sortByKey(cs []int) {
	p.sortPacked(cs, false)
}

func (p *planner) sortPacked(cs []int, prio bool) {
	keys := p.packKeys(cs, prio)
	slices.Sort(keys)
	for i, k := range keys {
		cs[i] = keyCI(k)
	}
}

// Packed sort keys: priority (optional), key rank, cand index, so that
// sorting compares integers. 30 bits of cand index and 28 of key rank hold
// far more names than a plan has.
const (
	ciBits   = 30
	rankBits = 28
	prioMask = uint64(1<<64-1) &^ (1<<(ciBits+rankBits) - 1)
)

func (p *planner) packKeys(cs []int, prio bool) []uint64 {
	keys := make([]uint64, len(cs))
	for i, ci := range cs {
		c := &p.cands[ci]
		k := uint64(c.krank)<<ciBits | uint64(ci)
		if prio {
			k |= uint64(c.prio) << (ciBits + rankBits)
		}
		keys[i] = k
	}
	return keys
}

func keyCI(k uint64) int     { return int(k & (1<<ciBits - 1)) }
func keyRank(k uint64) int32 { return int32(k >> ciBits & (1<<rankBits - 1)) }

// domainRuns splits cands sorted by key into runs of one client domain.
func (p *planner) domainRuns(cs []int) [][]int {
	var runs [][]int
	p.eachRun(cs, func(run []int) { runs = append(runs, run) })
	return runs
}

// eachRun calls f with each run of one client domain in cs (sorted by key).
func (p *planner) eachRun(cs []int, f func([]int)) {
	for i := 0; i < len(cs); {
		j := i + 1
		for j < len(cs) && p.cands[cs[j]].krank == p.cands[cs[i]].krank {
			j++
		}
		f(cs[i:j:j])
		i = j
	}
}

func (p *planner) build() {
	defs, snis, heirs := p.matchPrevious()
	placed := make([]int32, len(p.cands)) // group index + 1 when placed in that group
	byKey := make([]*bcert, p.nkeys)
	for g, grp := range p.groups {
		stamp := int32(g + 1)
		def := &bcert{def: true, ips: grp.ips, prev: cmp.Or(defs[g], heirs[g])}
		grp.def = def
		clear(byKey)
		pk := &packer{p: p, limit: p.limit, ips: grp.ips, byKey: byKey, buckets: make([][]*bcert, p.limit+1)}
		if defs[g] == nil && len(snis[g]) == 0 {
			// A fresh group: fill the default by priority, pack the rest.
			// The sort keys carry each name's key rank, so the packing
			// reads no cand (in key order, cands are far apart).
			keys := p.packKeys(grp.cands, true)
			slices.Sort(keys)
			n := min(len(keys), p.limit)
			def.names = make([]int, n)
			for i, k := range keys[:n] {
				def.names[i] = keyCI(k)
			}
			rest := keys[n:]
			for i := range rest {
				rest[i] &^= prioMask
			}
			slices.Sort(rest)
			cis := make([]int, len(rest))
			for i, k := range rest {
				cis[i] = keyCI(k)
			}
			for i := 0; i < len(rest); {
				kr := keyRank(rest[i])
				j := i + 1
				for j < len(rest) && keyRank(rest[j]) == kr {
					j++
				}
				pk.place(kr, cis[i:j:j])
				i = j
			}
		} else {
			var fresh []int
			if defs[g] != nil {
				for _, pn := range p.prevCands[defs[g]] {
					if ci := int(pn.ci); placed[ci] != stamp && p.in(pn, g) {
						def.names = append(def.names, ci)
						placed[ci] = stamp
					}
				}
				if len(def.names) > p.limit {
					p.sortByPriority(def.names)
					for _, ci := range def.names[p.limit:] {
						placed[ci] = 0
					}
					def.names = def.names[:p.limit]
				}
			}
			kept := make([]*bcert, len(snis[g]))
			for k, pc := range snis[g] {
				pns := p.prevCands[pc]
				c := &bcert{prev: pc, ips: grp.ips, names: make([]int, 0, len(pns)), kr: make([]int32, 0, len(pns)),
					shared: p.servedElsewhere(pc, g)}
				kept[k] = c
				for _, pn := range pns {
					if ci := int(pn.ci); placed[ci] != stamp && p.in(pn, g) {
						c.names = append(c.names, ci)
						c.kr = append(c.kr, pn.krank)
						placed[ci] = stamp
					}
				}
			}
			for _, c := range kept {
				if len(c.names) > p.limit {
					p.sortByPriority(c.names)
					for _, ci := range c.names[p.limit:] {
						placed[ci] = 0
					}
					c.names, c.kr = c.names[:p.limit], nil
				}
				if len(c.names) > 0 {
					pk.keep(c)
				}
			}
			for _, ci := range grp.cands {
				if placed[ci] != stamp {
					fresh = append(fresh, ci)
				}
			}
			p.sortByKey(fresh)
			runs := p.domainRuns(fresh)
			// Whole client domains, most important first, onto the default
			// while it has room for all of a domain's new names.
			minPrio := func(run []int) int {
				m := lowestPriority
				for _, ci := range run {
					m = min(m, int(p.cands[ci].prio))
				}
				return m
			}
			slices.SortStableFunc(runs, func(a, b []int) int { return minPrio(a) - minPrio(b) })
			for _, run := range runs {
				if len(def.names)+len(run) <= p.limit {
					def.names = append(def.names, run...)
				} else {
					pk.place(p.cands[run[0]].krank, run)
				}
			}
			if len(def.names) == 0 {
				pk.certs = p.refillDefault(grp, def, pk.certs)
			}
		}
		slices.Sort(def.names)
		grp.inDef = make([]uint64, (len(p.cands)+63)/64)
		for _, ci := range def.names {
			grp.inDef[ci/64] |= 1 << (ci % 64)
		}
		grp.overflow = len(grp.cands) - len(def.names)
		grp.sni = pk.certs
		for _, c := range grp.sni {
			slices.Sort(c.names)
		}
	}
	// In a deterministic order: groups by first IP, default first, then SNI
	// certificates in creation order.
	for _, grp := range p.groups {
		p.certs = append(p.certs, grp.def)
		p.certs = append(p.certs, grp.sni...)
	}
	p.merge()
	p.assignIDs()
}

// refillDefault fills the empty default certificate of a group whose names
// are all on SNI certificates (the previous default's names went away, or
// the group had none, and no new client domain fit on it): as a fresh
// group's default, with the group's highest-priority names up to the
// limit, taken off the SNI certificates that held them. A client without
// SNI gets the default certificate, so one without names would leave every
// such client with a mismatch, and an order without identifiers cannot be
// placed. It returns the SNI certificates that still hold names; one left
// with none is dropped (its previous ID is retired).
func (p *planner) refillDefault(grp *ipGroup, def *bcert, sni []*bcert) []*bcert {
	keys := p.packKeys(grp.cands, true)
	slices.Sort(keys)
	n := min(len(keys), p.limit)
	promoted := make(map[int]bool, n)
	for _, k := range keys[:n] {
		ci := keyCI(k)
		def.names = append(def.names, ci)
		promoted[ci] = true
	}
	out := sni[:0]
	for _, c := range sni {
		c.names = slices.DeleteFunc(c.names, func(ci int) bool { return promoted[ci] })
		if len(c.names) > 0 {
			out = append(out, c)
		}
	}
	clear(sni[len(out):])
	return out
}

// merge folds the certificates that would be identical orders into one.
// Groups hold different name sets, but trimming each to the limit can
// leave two groups' defaults with the same names (the same highest-priority
// names, more than a certificate holds), and a client domain on several
// groups' IPs can fill identical SNI certificates. Two orders for one
// identifier set cost an order twice and count twice against the CA's
// limit on duplicate certificates (Let's Encrypt: 5 per week), so
// certificates with the same names and the same Default flag become one,
// served on the union of their IPs, in the place of the first (groups by
// first IP). A default and an SNI certificate with the same names stay two:
// Default holds for all of a certificate's IPs. Everything else that
// deploys a certificate (key type, hooks) is the same for all of a plan's
// certificates. Each group keeps its own name set, default marks and
// overflow, so SNI-only names, over-limit warnings and coverage notes stay
// per IP. A certificate without names is dropped, not merged.
func (p *planner) merge() {
	byHash := map[uint64][]int{} // name-set hash → indices in out
	out := p.certs[:0]
	into := map[*bcert]*bcert{}
	for _, c := range p.certs {
		if len(c.names) == 0 {
			// Nothing to order, nothing to serve: never planned. build
			// gives every group's default names (refillDefault) and makes
			// no SNI certificate without them; this only keeps an empty
			// one out of the plan should that ever change.
			continue
		}
		// Within one plan a cand index stands for its name.
		var h uint64 = 14695981039346656037
		if c.def {
			h = 1099511628211
		}
		for _, ci := range c.names {
			h = (h ^ uint64(ci)) * 1099511628211
		}
		var rep *bcert
		for _, k := range byHash[h] {
			if o := out[k]; o.def == c.def && slices.Equal(o.names, c.names) {
				rep = o
				break
			}
		}
		if rep == nil {
			byHash[h] = append(byHash[h], len(out))
			out = append(out, c)
			continue
		}
		// Groups share no IP: the union is both lists, sorted.
		rep.ips = append(slices.Clip(rep.ips), c.ips...)
		slices.Sort(rep.ips)
		if c.prev != nil && c.prev != rep.prev && !slices.Contains(rep.alt, c.prev) {
			if rep.prev == nil {
				rep.prev = c.prev
			} else {
				rep.alt = append(rep.alt, c.prev)
			}
		}
		into[c] = rep
	}
	clear(p.certs[len(out):])
	p.certs = out
	if len(into) == 0 {
		return
	}
	for _, grp := range p.groups {
		if r := into[grp.def]; r != nil {
			grp.def = r
		}
		for k, c := range grp.sni {
			if r := into[c]; r != nil {
				grp.sni[k] = r
			}
		}
	}
}

// assignIDs gives each certificate its ID. A certificate that continues a
// previous one keeps that ID (previous IDs are reserved); the others get a
// new one: "default-<first IP>" or "sni-<first client domain>".
//
// A certificate may continue several previous ones (two that merge) and a
// previous one may be continued by several (a merged default or SNI
// certificate seeds each of its groups, and their names now differ). Each
// previous ID then goes to one certificate and each certificate keeps at
// most one: first to a certificate whose names are exactly the previous
// one's (it stays "unchanged": no order), then to the one sharing most
// names with it, then to the first certificate (groups by first IP) and
// the lowest previous ID. A previous ID left over is retired; a
// certificate left without one is new.
func (p *planner) assignIDs() {
	contested := false
	claims := map[*model.PlannedCert]int{}
	for _, c := range p.certs {
		if c.prev != nil {
			claims[c.prev]++
			contested = contested || claims[c.prev] > 1 || len(c.alt) > 0
		}
	}
	if contested {
		p.resolvePrevious()
	}
	for _, c := range p.certs {
		switch {
		case c.prev != nil:
			c.id = c.prev.ID
		case c.def:
			c.id = p.newID("default-" + p.ips[c.ips[0]])
		default:
			c.id = p.newID("sni-" + c.key)
		}
	}
}

// resolvePrevious pairs certificates with previous ones, each at most once,
// by the rule in assignIDs.
func (p *planner) resolvePrevious() {
	type pair struct {
		k      int // index in p.certs
		pc     *model.PlannedCert
		same   bool
		common int
	}
	var pairs []pair
	mark := make([]int32, len(p.cands))
	for k, c := range p.certs {
		if c.prev == nil {
			continue
		}
		for _, ci := range c.names {
			mark[ci] = int32(k + 1)
		}
		for _, pc := range append([]*model.PlannedCert{c.prev}, c.alt...) {
			pns := p.prevCands[pc]
			n := 0
			for _, pn := range pns {
				if mark[pn.ci] == int32(k+1) {
					n++
				}
			}
			same := n == len(c.names) && len(pns) == n && len(pc.Names) == n
			pairs = append(pairs, pair{k, pc, same, n})
		}
		c.prev, c.alt = nil, nil
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if a.same != b.same {
			if a.same {
				return -1
			}
			return 1
		}
		return cmp.Or(b.common-a.common, a.k-b.k, strings.Compare(a.pc.ID, b.pc.ID))
	})
	taken := map[*model.PlannedCert]bool{}
	for _, pr := range pairs {
		if c := p.certs[pr.k]; c.prev == nil && !taken[pr.pc] {
			c.prev = pr.pc
			taken[pr.pc] = true
		}
	}
}

func (p *planner) newID(base string) string {
	id := base
	for k := 2; p.used[id]; k++ {
		id = fmt.Sprintf("%s-%d", base, k)
	}
	p.used[id] = true
	return id
}

// packer places client domains' names on a group's SNI certificates: the
// certificate that already holds the domain when it has room, else the one
// with the least room that fits (best fit), else a new one. A domain with
// more names than a certificate holds fills new certificates first.
type packer struct {
	p       *planner
	limit   int
	ips     []int
	certs   []*bcert
	byKey   []*bcert   // by key rank: the certificate holding that client domain
	buckets [][]*bcert // by room left; lazily cleaned
}

func (k *packer) room(c *bcert) int { return k.limit - len(c.names) }

func (k *packer) keep(c *bcert) {
	k.certs = append(k.certs, c)
	if len(c.kr) == len(c.names) {
		for _, kr := range c.kr {
			if k.byKey[kr] == nil {
				k.byKey[kr] = c
			}
		}
	} else {
		for _, ci := range c.names {
			if kr := k.p.cands[ci].krank; k.byKey[kr] == nil {
				k.byKey[kr] = c
			}
		}
	}
	c.kr = nil
	if c.key == "" && len(c.names) > 0 {
		c.key = k.p.cands[c.names[0]].key
	}
	if r := k.room(c); r > 0 && !c.shared {
		k.buckets[r] = append(k.buckets[r], c)
	}
}

func (k *packer) add(c *bcert, kr int32, run []int) {
	c.names = append(c.names, run...)
	k.byKey[kr] = c
	if r := k.room(c); r > 0 && !c.shared {
		k.buckets[r] = append(k.buckets[r], c)
	}
}

func (k *packer) newCert(kr int32, run []int) {
	c := &bcert{ips: k.ips, key: k.p.cands[run[0]].key, names: make([]int, 0, k.limit)}
	k.certs = append(k.certs, c)
	k.add(c, kr, run)
}

// place packs run, the names of the client domain of key rank kr.
func (k *packer) place(kr int32, run []int) {
	for len(run) > k.limit {
		k.newCert(kr, run[:k.limit:k.limit])
		run = run[k.limit:]
	}
	s := len(run)
	if s == 0 {
		return
	}
	if c := k.byKey[kr]; c != nil && k.room(c) >= s {
		k.add(c, kr, run)
		return
	}
	for r := s; r <= k.limit; r++ {
		b := k.buckets[r]
		for len(b) > 0 {
			c := b[len(b)-1]
			b = b[:len(b)-1]
			if k.room(c) == r {
				k.buckets[r] = b
				k.add(c, kr, run)
				return
			}
		}
		k.buckets[r] = b
	}
	k.newCert(kr, run)
}

// assemble turns the built certificates into the plan document.
func (p *planner) assemble() *model.Plan {
	out := &model.Plan{
		Header: model.Header{Kind: model.KindPlan, Version: model.Version},
		Policy: model.PlanPolicy{
			ServerIPs:    p.ips,
			Profile:      cmp.Or(p.pol.Profile, ProfileClassic),
			MaxNames:     p.limit,
			CAIdentifier: p.ca,
			Hostname:     p.host,
		},
		Certificates: []model.PlannedCert{},
		SNIOnly:      []string{},
		Excluded:     p.excluded,
		Warnings:     p.warnings,
	}
	if p.pol.MaxNames > 0 && p.pol.Profile == "" {
		out.Policy.Profile = ""
	}
	for m := range p.must {
		if m != p.host {
			out.Policy.Include = append(out.Policy.Include, m)
		}
	}
	slices.Sort(out.Policy.Include)
	for _, pat := range p.pats {
		out.Policy.Exclude = append(out.Policy.Exclude, pat.String())
	}
	// SNI-only names and the IPs it would take to serve them by default.
	sniOnly := make([]bool, len(p.cands))
	for _, grp := range p.groups {
		if grp.overflow == 0 {
			continue
		}
		var ipNames []string
		for _, i := range grp.ips {
			ipNames = append(ipNames, p.ips[i])
		}
		extra := (grp.overflow + p.limit - 1) / p.limit
		out.ExtraIPsNeeded += extra
		p.warnOverLimit(out, grp, ipNames, extra)
		for _, ci := range grp.cands {
			if !grp.has(ci) {
				sniOnly[ci] = true
			}
		}
	}
	n := 0
	for _, s := range sniOnly {
		if s {
			n++
		}
	}
	out.SNIOnly = make([]string, 0, n)
	var mx []string
	nmx := 0
	mxPrio := model.RolePriority[model.RoleMX]
	for ci, s := range sniOnly {
		if !s {
			continue
		}
		c := &p.cands[ci]
		out.SNIOnly = append(out.SNIOnly, c.name)
		switch {
		case c.must:
			out.Warnings = append(out.Warnings, model.Warning{Code: model.WarnSNIOnly, Name: c.name,
				Message: "a must-cover name that only SNI clients will verify: clients without SNI get a mismatch; give it room on the default certificate (fewer names on the IP, or a higher --max-names)"})
		case int(c.prio) <= mxPrio:
			if nmx++; len(mx) < 5 {
				mx = append(mx, c.name)
			}
		}
	}
	if nmx > 0 {
		eg := strings.Join(mx, ", ")
		if nmx > len(mx) {
			eg += ", ..."
		}
		out.Warnings = append(out.Warnings, model.Warning{Code: model.WarnSNIOnly,
			Message: fmt.Sprintf("%d MX targets only SNI clients will verify (%s): MTAs that send no SNI, such as Postfix by default, get a mismatch; give them another IP or fewer names per IP", nmx, eg)})
	}
	// The certificates' names, read from a copy of the names alone, made
	// in one pass in order: a certificate's names lie far apart among the
	// cands (a client domain's names are spread over the sorted names by
	// their first label), and at 10⁶ names the cands do not stay in the
	// processor's cache while the certificates pick names out of them,
	// where the names alone (16 bytes a name instead of the cand's 56)
	// mostly do. The few must-cover names and names with TLSA records are
	// marked in a bitset, so the cands are read only for those.
	names := make([]string, len(p.cands))
	special := make([]uint64, (len(p.cands)+63)/64)
	for ci := range p.cands {
		c := &p.cands[ci]
		names[ci] = c.name
		if c.must || c.tlsa {
			special[ci/64] |= 1 << (ci % 64)
		}
	}
	// The previous certificates continued, by pointer while the
	// certificates are built (their IDs lie far apart in memory), then by
	// ID in one pass over the previous certificates in order.
	prevPtr := map[*model.PlannedCert]bool{}
	for _, c := range p.certs {
		pc := model.PlannedCert{ID: c.id, Default: c.def, Names: make([]string, len(c.names))}
		for i, ci := range c.names {
			pc.Names[i] = names[ci]
			if special[ci/64]&(1<<(ci%64)) == 0 {
				continue
			}
			cd := &p.cands[ci]
			if cd.must {
				pc.MustCover = append(pc.MustCover, cd.name)
			}
			if cd.tlsa {
				c.tlsa = append(c.tlsa, ci)
			}
		}
		for _, i := range c.ips {
			pc.IPs = append(pc.IPs, p.ips[i])
		}
		pc.Change = "new"
		if c.prev != nil {
			prevPtr[c.prev] = true
			pc.Change = "unchanged"
			if !p.samePrev(c) {
				old := c.prev.Names
				if !slices.IsSorted(old) {
					old = slices.Clone(old)
					slices.Sort(old)
				}
				pc.Added, pc.Removed = diff(pc.Names, old)
				if len(pc.Added)+len(pc.Removed) > 0 {
					pc.Change = "changed"
				}
			}
		}
		c.change = pc.Change
		out.Certificates = append(out.Certificates, pc)
	}
	slices.SortFunc(out.Certificates, func(a, b model.PlannedCert) int { return strings.Compare(a.ID, b.ID) })
	if p.prev != nil {
		prevUsed := make(map[string]bool, len(prevPtr))
		for i := range p.prev.Certificates {
			if pc := &p.prev.Certificates[i]; prevPtr[pc] {
				prevUsed[pc.ID] = true
			}
		}
		for _, c := range p.prev.Certificates {
			if !prevUsed[c.ID] {
				out.Retired = append(out.Retired, c.ID)
			}
		}
		slices.Sort(out.Retired)
	}
	out.NameDomains = p.nameDomains()
	p.budget(out)
	p.dane(out)
	slices.SortFunc(out.Excluded, func(a, b model.Exclusion) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(out.Warnings, func(a, b model.Warning) int {
		return cmp.Or(strings.Compare(a.Code, b.Code), strings.Compare(a.Name, b.Name), strings.Compare(a.Message, b.Message))
	})
	if out.Excluded == nil {
		out.Excluded = []model.Exclusion{}
	}
	if out.Warnings == nil {
		out.Warnings = []model.Warning{}
	}
	return out
}

// samePrev reports whether c holds exactly its previous certificate's
// names, each found in this plan: then it is unchanged without comparing
// strings.
func (p *planner) samePrev(c *bcert) bool {
	pns := p.prevCands[c.prev]
	if len(pns) != len(c.prev.Names) || len(pns) != len(c.names) {
		return false
	}
	for k, pn := range pns {
		if int(pn.ci) != c.names[k] {
			return false
		}
	}
	return true
}

func (g *ipGroup) has(ci int) bool { return g.inDef[ci/64]&(1<<(ci%64)) != 0 }

func (p *planner) warnOverLimit(out *model.Plan, grp *ipGroup, ipNames []string, extra int) {
	out.Warnings = append(out.Warnings, model.Warning{Code: model.WarnOverLimit,
		Message: fmt.Sprintf("%d names resolve to %s, more than one certificate may hold (%d): %d of them are on SNI certificates only, which clients without SNI do not get; %d more IP address(es) would serve them on default certificates",
			len(grp.cands), strings.Join(ipNames, ", "), p.limit, grp.overflow, extra)})
}

// diff returns the names in a and not in b, and in b and not in a; both
// sorted.
func diff(a, b []string) (added, removed []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			added = append(added, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			removed = append(removed, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

// budget counts orders and certificates per registered domain, and warns
// against the CA's rate limits.
func (p *planner) budget(out *model.Plan) {
	type count struct{ certs, orders, stamp int32 }
	regID, doms := p.registeredDomains()
	per := make([]count, len(doms))
	type dup struct {
		n  int
		id string
	}
	sets := map[uint64]*dup{} // name-set hash → ordered certificates with that set
	for k, c := range p.certs {
		ordered := c.change != "unchanged"
		if ordered {
			out.Budget.Orders++
			// Within one plan a cand index stands for its name.
			var h uint64 = 14695981039346656037
			for _, ci := range c.names {
				h = (h ^ uint64(ci)) * 1099511628211
			}
			d := sets[h]
			if d == nil {
				d = &dup{id: c.id}
				sets[h] = d
			}
			d.n++
		}
		stamp := int32(k + 1)
		for _, ci := range c.names {
			x := &per[regID[ci]]
			if x.stamp == stamp {
				continue
			}
			x.stamp = stamp
			x.certs++
			if ordered {
				x.orders++
			}
		}
	}
	out.Budget.PerRegisteredDomain = make([]model.DomainCount, len(per))
	for id, x := range per {
		out.Budget.PerRegisteredDomain[id] = model.DomainCount{Domain: doms[id], Count: int(x.certs), Orders: int(x.orders)}
	}
	for _, dc := range out.Budget.PerRegisteredDomain {
		if dc.Orders > p.limits.CertsPerRegisteredDomain {
			p.warnRate(out, dc.Domain, "%d certificates to order name %s, over the CA's limit of %d per registered domain per week: order in batches over several weeks, or renew with ARI (replaces) where a certificate already exists", dc.Orders, dc.Domain, p.limits.CertsPerRegisteredDomain)
		}
	}
	if out.Budget.Orders > p.limits.NewOrders {
		p.warnRate(out, "", "%d orders, over the CA's limit of %d new orders per 3 hours: issue in batches", out.Budget.Orders, p.limits.NewOrders)
	}
	for _, d := range sets {
		if d.n > p.limits.DuplicateCerts {
			p.warnRate(out, "", "%d certificates to order have the name set of %s, over the CA's limit of %d identical name sets per week", d.n, d.id, p.limits.DuplicateCerts)
		}
	}
}

// underKey reports whether a cand's name is below its client domain.
func underKey(c *cand) bool {
	n, k := c.name, c.key
	return len(n) > len(k)+1 && n[len(n)-len(k)-1] == '.' && n[len(n)-len(k):] == k
}

// registeredDomains returns each planned name's registered domain, as an
// index into doms, which is sorted and without duplicates. Names below
// their client domain (mail.example.com for example.com) share the client
// domain's, computed once per client domain. The ids come in string order
// without a map or a sort of every domain: client domains are ranked in
// string order already, and those that are their own registered domain
// (the usual hosted domain) need only be merged with the few others. At
// 10⁶ names a map and a sort of strings cost more per name than at 10⁵,
// their memory being out of cache.
func (p *planner) registeredDomains() (regID []int32, doms []string) {
	const (
		unknown = iota
		self    // the client domain is its own registered domain
		suffix  // its registered domain is a proper suffix of it
		public  // it is a public suffix: each name has its own
	)
	state := make([]uint8, p.nkeys)
	keyOdd := make([]int32, p.nkeys) // suffix: index in odd
	used := make([]bool, p.nkeys)    // self, with a name below it
	type ent struct {
		reg string
		id  int32
	}
	var odd []ent
	ref := make([]int32, len(p.cands)) // ≥ 0: index in odd; < 0: -(key rank+1)
	for ci := range p.cands {
		c := &p.cands[ci]
		if underKey(c) {
			kr := c.krank
			if state[kr] == unknown {
				d, err := publicsuffix.EffectiveTLDPlusOne(c.key)
				switch {
				case err != nil:
					state[kr] = public
				case d == c.key:
					state[kr] = self
				default:
					state[kr] = suffix
					keyOdd[kr] = int32(len(odd))
					odd = append(odd, ent{reg: d})
				}
			}
			switch state[kr] {
			case self:
				used[kr] = true
				ref[ci] = -(kr + 1)
				continue
			case suffix:
				ref[ci] = keyOdd[kr]
				continue
			}
		}
		ref[ci] = int32(len(odd))
		odd = append(odd, ent{reg: RegisteredDomain(c.name)})
	}
	ord := make([]int32, len(odd))
	for i := range ord {
		ord[i] = int32(i)
	}
	slices.SortFunc(ord, func(a, b int32) int { return strings.Compare(odd[a].reg, odd[b].reg) })
	keyID := make([]int32, p.nkeys)
	id := int32(-1)
	last, lastOdd := "", false
	for r, j := 0, 0; ; {
		for r < p.nkeys && !used[r] {
			r++
		}
		hasK, hasO := r < p.nkeys, j < len(ord)
		if !hasK && !hasO {
			break
		}
		if hasK && (!hasO || p.keyByRank[r] <= odd[ord[j]].reg) {
			// Two client domains differ, so only an odd one can equal it.
			if s := p.keyByRank[r]; !lastOdd || s != last {
				id++
				doms = append(doms, s)
				last = s
			}
			keyID[r] = id
			lastOdd = false
			r++
			continue
		}
		e := &odd[ord[j]]
		if id < 0 || e.reg != last {
			id++
			doms = append(doms, e.reg)
			last = e.reg
		}
		e.id = id
		lastOdd = true
		j++
	}
	regID = make([]int32, len(p.cands))
	for ci, r := range ref {
		if r < 0 {
			regID[ci] = keyID[-r-1]
		} else {
			regID[ci] = odd[r].id
		}
	}
	return regID, doms
}

func (p *planner) warnRate(out *model.Plan, name, format string, args ...any) {
	out.Warnings = append(out.Warnings, model.Warning{Code: model.WarnRateLimit, Name: name, Message: fmt.Sprintf(format, args...)})
}

// dane warns for names with TLSA records on certificates that will be
// ordered: a new key (usage 3) or a new issuing CA (usage 2) breaks delivery
// from DANE senders (RFC 7672).
func (p *planner) dane(out *model.Plan) {
	for _, c := range p.certs {
		if c.change == "unchanged" {
			continue
		}
		for _, ci := range c.tlsa {
			cd := &p.cands[ci]
			n := cd.name
			if cd.inv < 0 {
				continue
			}
			tl := p.inv.Names[cd.inv].TLSA
			if len(tl) == 0 {
				continue
			}
			var ee, ta bool
			for _, t := range tl {
				ee = ee || t.Usage == 3 || t.Usage == 1
				ta = ta || t.Usage == 2 || t.Usage == 0
			}
			var msg []string
			if ee {
				msg = append(msg, "a TLSA record at _25._tcp."+n+" pins the server key: publish a record for the new key and wait two TTLs before deploying, or reuse the key")
			}
			if ta {
				msg = append(msg, "a TLSA record at _25._tcp."+n+" pins the issuing CA, and Let's Encrypt picks intermediates at random: pin every intermediate the CA may use")
			}
			out.Warnings = append(out.Warnings, model.Warning{Code: model.WarnDANE, Name: n, Message: fmt.Sprintf("on %s (to be ordered): %s", c.id, strings.Join(msg, "; "))})
		}
	}
	// A name on several ordered certificates warns once per certificate;
	// keep the first.
	out.Warnings = slices.CompactFunc(sortedWarnings(out.Warnings), func(a, b model.Warning) bool {
		return a.Code == model.WarnDANE && b.Code == model.WarnDANE && a.Name == b.Name
	})
}

func sortedWarnings(w []model.Warning) []model.Warning {
	slices.SortFunc(w, func(a, b model.Warning) int {
		return cmp.Or(strings.Compare(a.Code, b.Code), strings.Compare(a.Name, b.Name), strings.Compare(a.Message, b.Message))
	})
	return w
}

// planID hashes the certificates' IDs, name sets, IPs and default flags.
// Fields are written with length prefixes, so no two plans hash alike by
// concatenation.
func planID(pl *model.Plan) string {
	h := sha256.New()
	buf := make([]byte, 0, 32<<10)
	put := func(s string) {
		if len(buf)+8+len(s) > cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(s)))
		if len(s) > cap(buf)-len(buf) {
			h.Write(buf)
			buf = buf[:0]
			io.WriteString(h, s)
			return
		}
		buf = append(buf, s...)
	}
	for _, c := range pl.Certificates {
		put(c.ID)
		put(strconv.FormatBool(c.Default))
		put(strconv.Itoa(len(c.IPs)))
		for _, ip := range c.IPs {
			put(ip)
		}
		put(strconv.Itoa(len(c.Names)))
		for _, name := range c.Names {
			put(name)
		}
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil)[:12])
}
