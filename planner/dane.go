package planner

import (
	"crypto/sha256"
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
// treated as pinning it. The rule: a pinned name goes only on a
// certificate whose key it already trusts, so that one customer's TLSA
// records cost only that customer's name, never a shared certificate.
//
//   - Fit (fitKey): a pinned name trusts certificate C's current key
//     ([KeyState.Current]) when each of its record sets holds a "3 1 1"
//     record for it (records seen but not validated count: they show the
//     key is trusted), and C's staged next key when each holds a
//     validated one. A name that C's previous
//     version (same ID) held stays on C with its key whatever its records
//     say, when C has a key ([KeyState.Known]): keeping it changes nothing
//     senders see, and an unknown state never lets a key change. C gets
//     [model.KeyNext] when some pinned name trusts the next key and every
//     name that trusts the current one (or stays) trusts it too, else
//     [model.KeyKeep]. KeyReason names the records, or why their state is
//     unknown.
//   - Exclusion (unfit): a pinned name C's key does not fit is left out
//     of the plan ([model.ExcludeDANEPinned]) with the records to publish
//     for that key ("3 1 1" for its SPKI), or, when C has no key yet (a
//     certificate never issued: its key is made at issuance), with the
//     advice to stage one (certplan rollover begin) and publish its
//     record. Plan then plans again without the name (the certificates
//     may change, so the fit is tested again, until nothing more is
//     left out: at most once per pinned name), and the rest of C is
//     planned and issued as usual. The exclusion is stable: the next
//     plan tests the name again as a new one, with the same answer until
//     the records or the keys change.
//   - Refusal (unfit, [GateError]): a name served now (a previous
//     certificate with a key held it) that the plan moves onto a
//     certificate whose key it does not trust (--repack, a new
//     certificate ID) is not left out: that would take it off the
//     certificate that serves it too, and the IP's default, whose key it
//     does not pin, would answer for it. It cannot stay either: the plan
//     put it elsewhere (build.go already avoids the moves it can:
//     refillDefault leaves pinned names where they are). The plan is
//     refused with the records to publish.
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
	// Known: Current lists every certificate that has a key (the caller
	// read the state directory), so one missing has none yet. When false
	// (certplan plan, which reads no state), a name stays on the
	// certificate that held it as if that one had a key.
	Known bool
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
	return k.secure && k.lists(spki)
}

// lists reports whether the set holds a "3 1 1 spki" record, validated
// or not (RFC 6698 §2.1; "3 1 1" is the one computable from the SPKI
// digest the state directory keeps).
func (k keyPin) lists(spki string) bool {
	if spki == "" {
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
// names, leaves out (p.unfit) or refuses (p.refusals) the pinned names
// their certificate's key does not fit, and warns of DANE-TA records that
// pin an intermediate.
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
		spki, fit, bad := p.fitKey(c.id, pins)
		p.setKey(pc, spki, fit)
		for _, pn := range bad {
			p.unfitName(c.id, spki, pn)
		}
	}
	p.warnTA(out)
}

// fitKey decides the key of certificate id (its staged next key, or its
// current one) and splits its pinned names into those that trust it and
// those that do not. spki is that key's SPKI SHA-256, "" when the
// certificate has none yet.
func (p *planner) fitKey(id string, pins []pinnedName) (spki string, fit, bad []pinnedName) {
	cur, next := p.pol.Keys.Current[id], p.pol.Keys.Next[id]
	onCur := func(pn pinnedName) bool { return p.stays(id, cur, pn) || allList(pn.pins, cur) }
	onNext := func(pn pinnedName) bool { return next != "" && allHave(pn.pins, next) }
	useNext := false
	for _, pn := range pins {
		if onNext(pn) {
			useNext = true
		} else if onCur(pn) {
			useNext = false
			break
		}
	}
	spki, test := cur, onCur
	if useNext {
		spki, test = next, onNext
	}
	for _, pn := range pins {
		if test(pn) {
			fit = append(fit, pn)
		} else {
			bad = append(bad, pn)
		}
	}
	return spki, fit, bad
}

// stays reports whether pn's name was on certificate id in the previous
// plan and stays there with its key: when the certificate has one (cur),
// or whether it has is not known.
func (p *planner) stays(id, cur string, pn pinnedName) bool {
	if p.prev == nil || cur == "" && p.pol.Keys.Known {
		return false
	}
	i := slices.IndexFunc(p.prev.Certificates, func(pc model.PlannedCert) bool { return pc.ID == id })
	return i >= 0 && slices.Contains(p.prev.Certificates[i].Names, p.cands[pn.ci].name)
}

func allList(ks []keyPin, spki string) bool {
	return !slices.ContainsFunc(ks, func(k keyPin) bool { return !k.lists(spki) })
}

func allHave(ks []keyPin, spki string) bool {
	return !slices.ContainsFunc(ks, func(k keyPin) bool { return !k.has(spki) })
}

// setKey sets pc's Key: KeyNext when the key chosen (spki) is its staged
// next key, else KeyKeep, with the reasons of the names that fit it.
func (p *planner) setKey(pc *model.PlannedCert, spki string, fit []pinnedName) {
	if len(fit) == 0 {
		return
	}
	if spki != "" && spki == p.pol.Keys.Next[pc.ID] {
		pc.Key = model.KeyNext
		pc.KeyReason = "the staged next key (3 1 1 " + spki + ") is published and validated at every pinned name: it becomes the key"
		return
	}
	var why []string
	unknown := false
	for _, pn := range fit {
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
}

// unfitName leaves out (p.unfit) a pinned name that does not trust the
// key spki of certificate id, or refuses the plan when the name is
// served now (see the refusal above).
func (p *planner) unfitName(id, spki string, pn pinnedName) {
	name := p.cands[pn.ci].name
	var why, recs []string
	for _, k := range pn.pins {
		if !k.lists(spki) {
			why = append(why, k.reason)
			if spki != "" {
				recs = append(recs, k.owner+". IN TLSA 3 1 1 "+spki)
			}
		}
	}
	if from := p.servedBy(name); len(from) > 0 {
		p.refusals.DANE = append(p.refusals.DANE, DANERefusal{Name: name, Cert: id, From: from, KeyKnown: spki != "", Why: why, Records: recs})
		return
	}
	if p.unfit == nil {
		p.unfit = map[string]string{}
	}
	head := strings.Join(why, "; ") + ", and they trust no key of " + id + ", the certificate it would go on: "
	if spki == "" && !p.pol.Keys.Known {
		p.unfit[name] = head + "its key is not known here (certplan plan reads no state directory): certplan issue, which reads the keys, gives the records to publish for it, or stage one (certplan rollover begin " + id + ") and publish the 3 1 1 record that prints at " + owners(pn.pins)
		return
	}
	if spki == "" {
		p.unfit[name] = head + "its key is made at issuance; stage it now (certplan rollover begin " + id + "), publish the 3 1 1 record that prints at " + owners(pn.pins) + ", wait two TTLs, and plan again (once " + id + " is issued, the next plan gives the record for its key)"
		return
	}
	p.unfit[name] = head + "publish " + strings.Join(recs, "; ") + " beside the current records (RFC 7671 §8.1), wait two TTLs, and plan again"
}

// servedBy are the IDs of the previous certificates that held name and
// have a key (or whether they have is not known): the name is served now.
func (p *planner) servedBy(name string) []string {
	if p.prev == nil {
		return nil
	}
	var ids []string
	for i := range p.prev.Certificates {
		pc := &p.prev.Certificates[i]
		if slices.Contains(pc.Names, name) && (!p.pol.Keys.Known || p.pol.Keys.Current[pc.ID] != "") {
			ids = append(ids, pc.ID)
		}
	}
	return ids
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
			if t.Matches(r) {
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

// movable returns cs without the names whose key DANE pins, unless an
// enforce MTA-STS policy lists them: refillDefault does not take those
// off the SNI certificates that serve them (their key would change). If
// that leaves none, it returns cs: fitKey then tests the moves.
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
