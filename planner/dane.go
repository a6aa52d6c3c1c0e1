package planner

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/certplan/certplan/model"
)

// DANE (RFC 7672, RFC 7671). What TLSA records pin is the inventory's
// one rule, [model.Name.DANEPin] (and [model.PortTLSA.DANEPin] for the
// submission ports): a secure usage 3 or 1 record pins the key, and a
// state that cannot be known (a failed lookup, records not validated) is
// treated as pinning it. The gates:
//
//   - Key keeping (daneKeys): a certificate any of whose names has its key
//     pinned gets [model.KeyKeep] (apply reuses the current key), or
//     [model.KeyNext] when its staged next key is ready (nextKeyReady:
//     every pinned name has a secure "3 1 1" record for it). KeyReason
//     names the records, or why their state is unknown.
//   - Refusal (checkMoves): with a previous plan, a pinned name put on a
//     certificate other than the one that served it (a new certificate
//     ID, a name moved, --repack) gets that certificate's key, which
//     its TLSA records do not pin unless they already list it; the plan is
//     refused with a [GateError] naming, per name, the records to
//     publish. build.go avoids the moves it can (refillDefault leaves
//     pinned names where they are). A first plan (no previous one) serves
//     no certificate of ours yet: its certificates are marked KeyKeep and
//     get a [model.WarnDANE] warning, and apply refuses to order one
//     without a key to keep.
//   - DANE-TA (warnTA): secure usage 2 records that match none of the
//     CA's roots ([KeyState.CARoots]) pin an intermediate, and a CA that
//     issues from several (Let's Encrypt: E5-E9, R10-R14) breaks them at
//     random: a [model.WarnDANETA] warning lists "2 1 1" records for the
//     roots.

// KeyState is what the state directory knows of the certificates' keys,
// and the CA's roots: input to the DANE gates, read by the caller (the
// CLI fills it from the store) so that Plan stays pure.
type KeyState struct {
	// Current maps a certificate ID to the SHA-256 of its current key's
	// SubjectPublicKeyInfo, lowercase hex (the data of "3 1 1").
	Current map[string]string
	// Next maps a certificate ID to the SPKI SHA-256 of its staged next
	// key (store.NextKey).
	Next map[string]string
	// CARoots are the roots the CA issues under (for Let's Encrypt, ISRG
	// Root X1 and X2); nil when unknown.
	CARoots []*x509.Certificate
}

// keyPin is one TLSA record set that pins (or may pin) a name's key.
type keyPin struct {
	owner  string // such as "_25._tcp.mx.d.test"
	reason string
	recs   []model.TLSA
	secure bool // PinKey; false: PinUnknown
}

// has reports whether the set holds a validated "3 1 1 spki" record.
func (k keyPin) has(spki string) bool {
	if !k.secure || spki == "" {
		return false
	}
	for _, t := range k.recs {
		if t.Usage == 3 && t.Selector == 1 && t.MatchingType == 1 && strings.EqualFold(t.Data, spki) {
			return true
		}
	}
	return false
}

// keyPins returns the record sets that pin n's key: _25._tcp and the
// submission ports' ([model.Name.PortTLSA]). An MX target kept from the
// previous plan through a failed lookup (keep.go; its TLSA was not asked)
// counts as unknown: an unknown state never lets a key change.
func keyPins(n *model.Name) []keyPin {
	var out []keyPin
	if lookupUnknown(n) {
		return []keyPin{{owner: "_25._tcp." + n.Name, reason: "the lookup of " + n.Name + " failed (" + n.Error + "), so whether TLSA records at _25._tcp." + n.Name + " pin its key is unknown"}}
	}
	add := func(owner, pin, why string, recs []model.TLSA) {
		if pin == model.PinKey || pin == model.PinUnknown {
			out = append(out, keyPin{owner: owner, reason: why, recs: recs, secure: pin == model.PinKey})
		}
	}
	pin, why := n.DANEPin()
	add("_25._tcp."+n.Name, pin, why, n.TLSA)
	for i := range n.PortTLSA {
		pt := &n.PortTLSA[i]
		pin, why := pt.DANEPin(n.Name)
		add(fmt.Sprintf("_%d._tcp.%s", pt.Port, n.Name), pin, why, pt.Records)
	}
	return out
}

// danePinned reports whether any TLSA record set of n pins something
// (key or CA), or may: such a name is exempt from the per-domain cap.
func danePinned(n *model.Name) bool {
	if lookupUnknown(n) {
		return true
	}
	if pin, _ := n.DANEPin(); pin != model.PinNone {
		return true
	}
	for i := range n.PortTLSA {
		if pin, _ := n.PortTLSA[i].DANEPin(n.Name); pin != model.PinNone {
			return true
		}
	}
	return false
}

// lookupUnknown reports whether n is an MX target whose own lookup failed
// before its TLSA records were asked.
func lookupUnknown(n *model.Name) bool {
	return n.Error != "" && len(n.TLSA) == 0 && n.TLSAError == "" && n.HasRole(model.RoleMX)
}

// pinnedName is a name of a certificate and the sets pinning its key.
type pinnedName struct {
	ci   int
	pins []keyPin
}

// certPins returns c's names whose key is pinned.
func (p *planner) certPins(c *bcert) []pinnedName {
	var out []pinnedName
	for _, ci := range c.tlsa {
		if cd := &p.cands[ci]; cd.inv >= 0 {
			if kp := keyPins(&p.inv.Names[cd.inv]); len(kp) > 0 {
				out = append(out, pinnedName{ci: ci, pins: kp})
			}
		}
	}
	return out
}

// daneKeys sets Key and KeyReason on the plan's certificates with pinned
// names, refuses the moves their TLSA records do not allow (p.refusals),
// and warns of DANE-TA records that pin an intermediate.
func (p *planner) daneKeys(out *model.Plan) {
	idx := make(map[string]int, len(out.Certificates))
	for i := range out.Certificates {
		idx[out.Certificates[i].ID] = i
	}
	for _, c := range p.certs {
		pins := p.certPins(c)
		if len(pins) == 0 {
			continue
		}
		pc := &out.Certificates[idx[c.id]]
		spki := p.setKey(c.id, pc, pins)
		if p.prev == nil {
			p.warnFirst(out, pc, pins)
			continue
		}
		p.checkMoves(c, spki, pins)
	}
	p.warnTA(out)
}

// setKey sets pc's Key: KeyNext when its staged next key is ready, else
// KeyKeep. It returns the SPKI SHA-256 of the key the certificate will
// have ("" when not known).
func (p *planner) setKey(id string, pc *model.PlannedCert, pins []pinnedName) string {
	if spki, ok := p.nextKeyReady(id, pins); ok {
		pc.Key = model.KeyNext
		pc.KeyReason = "the staged next key (3 1 1 " + spki + ") is published and validated at every pinned name: it becomes the key"
		return spki
	}
	var why []string
	unknown := false
	for _, pn := range pins {
		for _, k := range pn.pins {
			why = append(why, k.reason)
			unknown = unknown || !k.secure
		}
	}
	pc.Key = model.KeyKeep
	pc.KeyReason = strings.Join(why, "; ") + ": the current key is kept"
	if unknown {
		pc.KeyReason = strings.Join(why, "; ") + ": an unknown state never lets a key change"
	}
	return p.pol.Keys.Current[id]
}

// nextKeyReady reports whether certificate id has a staged next key whose
// "3 1 1" record every pinned record set of its names holds, validated,
// and returns its SPKI SHA-256. A set whose state is unknown never holds
// it. (The rollover adds its own conditions here: the record seen on
// every authoritative server, two TTLs passed.)
func (p *planner) nextKeyReady(id string, pins []pinnedName) (string, bool) {
	spki := p.pol.Keys.Next[id]
	if spki == "" {
		return "", false
	}
	for _, pn := range pins {
		for _, k := range pn.pins {
			if !k.has(spki) {
				return "", false
			}
		}
	}
	return spki, true
}

// warnFirst warns, on a first plan, of the pinned names of a certificate
// to be ordered: apply reuses no key it does not have.
func (p *planner) warnFirst(out *model.Plan, pc *model.PlannedCert, pins []pinnedName) {
	if pc.Key == model.KeyNext {
		return
	}
	for _, pn := range pins {
		n := p.cands[pn.ci].name
		out.Warnings = append(out.Warnings, model.Warning{Code: model.WarnDANE, Name: n,
			Message: fmt.Sprintf("on %s (to be ordered): %s: a new key would stop mail from DANE senders, so the order is refused until a next key is staged for %s and its record (3 1 1) published at %s",
				pc.ID, pn.pins[0].reason, pc.ID, owners(pn.pins))})
	}
}

func owners(ks []keyPin) string {
	var o []string
	for _, k := range ks {
		o = append(o, k.owner)
	}
	return strings.Join(o, ", ")
}

// DANE-TA. A usage 2 record (RFC 7671 §5.2) pins a CA certificate in
// the chain; the roots are what stays when the CA changes intermediates.

// warnTA warns of names on the plan whose secure usage 2 records at
// _25._tcp match none of the CA's roots.
func (p *planner) warnTA(out *model.Plan) {
	seen := map[int]bool{}
	for _, c := range p.certs {
		for _, ci := range c.tlsa {
			if seen[ci] || p.cands[ci].inv < 0 {
				continue
			}
			seen[ci] = true
			n := &p.inv.Names[p.cands[ci].inv]
			if msg := taAdvice(n, p.pol.Keys.CARoots); msg != "" {
				out.Warnings = append(out.Warnings, model.Warning{Code: model.WarnDANETA, Name: n.Name, Message: msg})
			}
		}
	}
}

// taAdvice is the warning for n's DANE-TA records ("" when none is due):
// validated usage 2 records none of which matches a root.
func taAdvice(n *model.Name, roots []*x509.Certificate) string {
	if pin, _ := n.DANEPin(); pin == model.PinNone || pin == model.PinUnknown {
		return ""
	}
	var ta []model.TLSA
	for _, t := range n.TLSA {
		if t.Usage == 2 {
			ta = append(ta, t)
		}
	}
	if len(ta) == 0 {
		return ""
	}
	for _, t := range ta {
		for _, r := range roots {
			if tlsaMatches(t, r) {
				return ""
			}
		}
	}
	owner := "_25._tcp." + n.Name + "."
	head := fmt.Sprintf("the DANE-TA records at %s (2 x x) match none of the CA's roots: they pin an intermediate, and the CA issues from several (Let's Encrypt: E5-E9, R10-R14), so a renewal breaks delivery from DANE senders at random", owner[:len(owner)-1])
	if len(roots) == 0 {
		return head + "; pin the CA's root instead (2 1 1 <SHA-256 of its SubjectPublicKeyInfo>)"
	}
	var recs []string
	for _, r := range roots {
		h := sha256.Sum256(r.RawSubjectPublicKeyInfo)
		recs = append(recs, fmt.Sprintf("%s IN TLSA 2 1 1 %s (%s)", owner, hex.EncodeToString(h[:]), r.Subject.CommonName))
	}
	return head + "; publish records for the CA's roots instead: " + strings.Join(recs, "; ")
}

// tlsaMatches reports whether TLSA record t matches certificate c
// (RFC 6698 §2.1: selector 0 the certificate, 1 its SPKI; matching type
// 0 exact, 1 SHA-256, 2 SHA-512).
func tlsaMatches(t model.TLSA, c *x509.Certificate) bool {
	data := c.Raw
	if t.Selector == 1 {
		data = c.RawSubjectPublicKeyInfo
	}
	var sum []byte
	switch t.MatchingType {
	case 0:
		sum = data
	case 1:
		h := sha256.Sum256(data)
		sum = h[:]
	case 2:
		h := sha512.Sum512(data)
		sum = h[:]
	default:
		return false
	}
	return strings.EqualFold(hex.EncodeToString(sum), t.Data)
}

// checkMoves refuses the pinned names of c that its previous version (by
// ID) did not hold: they get c's key (spki, "" when not known), which
// their records must already pin.
func (p *planner) checkMoves(c *bcert, spki string, pins []pinnedName) {
	var before []string
	if i := slices.IndexFunc(p.prev.Certificates, func(pc model.PlannedCert) bool { return pc.ID == c.id }); i >= 0 {
		before = p.prev.Certificates[i].Names
	}
	for _, pn := range pins {
		name := p.cands[pn.ci].name
		if slices.Contains(before, name) {
			continue
		}
		r := DANERefusal{Name: name, Cert: c.id, From: p.prevHolders(name), KeyKnown: spki != ""}
		for _, k := range pn.pins {
			if !k.has(spki) {
				r.Why = append(r.Why, k.reason)
				if spki != "" {
					r.Records = append(r.Records, k.owner+". IN TLSA 3 1 1 "+spki)
				}
			}
		}
		if len(r.Why) > 0 {
			p.refusals.DANE = append(p.refusals.DANE, r)
		}
	}
}

// prevHolders are the IDs of the previous certificates that held name.
func (p *planner) prevHolders(name string) []string {
	var ids []string
	for i := range p.prev.Certificates {
		if slices.Contains(p.prev.Certificates[i].Names, name) {
			ids = append(ids, p.prev.Certificates[i].ID)
		}
	}
	return ids
}

// movable returns cs without the names whose key DANE pins, unless an
// enforce MTA-STS policy lists them: refillDefault does not take those
// off the SNI certificates that serve them (their key would change). If
// that leaves none, it returns cs: the gate then refuses the moves.
func (p *planner) movable(cs []int) []int {
	var out []int
	for _, ci := range cs {
		c := &p.cands[ci]
		if c.tlsa && !c.sts && c.inv >= 0 && len(keyPins(&p.inv.Names[c.inv])) > 0 {
			continue
		}
		out = append(out, ci)
	}
	if len(out) == 0 {
		return cs
	}
	return out
}
