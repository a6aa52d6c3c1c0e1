package monitor

import (
	"fmt"

	"github.com/certplan/certplan/model"
)

// senderFindings are the problems validating senders have with a probed
// MX endpoint (the DANE and MTA-STS verdicts of its coverage row): a
// refusal of delivery is CRITICAL, since mail from those senders stops
// (a DANE "fail" on a secure record set, an MTA-STS "fail" under
// "enforce"); an MTA-STS failure under "testing" and a DANE state that
// cannot be known are WARNING.
func senderFindings(row model.Coverage) []Finding {
	at := fmt.Sprintf("%s on %s:%d: ", row.Name, row.IP, row.Port)
	var fs []Finding
	add := func(st Status, msg, d string) {
		fs = append(fs, Finding{Status: st, Name: row.Name, Message: at + msg + detail(d)})
	}
	switch row.DANE {
	case model.SenderFail:
		add(Critical, "DANE senders refuse delivery", row.DANEDetail)
	case model.SenderUnknown:
		add(Warning, "DANE state unknown", row.DANEDetail)
	}
	switch row.MTASTS {
	case model.SenderFail:
		add(Critical, "MTA-STS senders refuse delivery", row.MTASTSDetail)
	case model.SenderWarn:
		add(Warning, `MTA-STS senders report a failure ("enforce" would refuse delivery)`, row.MTASTSDetail)
	}
	return fs
}

// hasSenderVerdicts reports whether any row has a DANE or MTA-STS verdict.
func hasSenderVerdicts(cov []model.Coverage) bool {
	for _, row := range cov {
		if row.DANE != "" || row.MTASTS != "" {
			return true
		}
	}
	return false
}
