package planner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/certplan/certplan/model"
)

// DANE. A name with TLSA records on a certificate that will be ordered
// gets a [model.WarnDANE] warning: a new key breaks a usage 3 (DANE-EE)
// or 1 record, a new issuing CA a usage 2 (DANE-TA) or 0 record, and
// delivery from DANE senders fails (RFC 7672).

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
