package monitor

import (
	"fmt"
	"sort"
	"strconv"
	"time"
)

// FailingDomain is a hosted domain whose DNS lookups fail, as the last
// renew or issue run with an inventory found (the state directory keeps
// the set): while they fail its names cannot be checked before an order,
// and the plan keeps them as they were.
type FailingDomain struct {
	Domain string    `json:"domain"`
	Since  time.Time `json:"since"`
	Error  string    `json:"error,omitempty"`
}

// AddFailingDomains adds a WARNING finding per failing domain, with how
// long it has failed at now, and lists them in r.FailingDomains.
func (r *Result) AddFailingDomains(now time.Time, ds []FailingDomain) {
	if len(ds) == 0 {
		return
	}
	r.FailingDomains = append(r.FailingDomains, ds...)
	for _, d := range ds {
		msg := fmt.Sprintf("%s: DNS lookups failing for %s (since %s)", d.Domain, howLong(now.Sub(d.Since)), day(d.Since))
		if d.Error != "" {
			msg += ": " + d.Error
		}
		r.Findings = append(r.Findings, Finding{Status: Warning, Name: d.Domain, Message: msg})
		r.Status = max(r.Status, Warning)
	}
	sort.SliceStable(r.Findings, func(i, j int) bool { return r.Findings[i].Status > r.Findings[j].Status })
	r.Summary = summary(*r)
}

// howLong is a duration as a person says it: "12 minutes", "5 hours",
// "3 days" (rounded down; under a minute is "1 minute").
func howLong(d time.Duration) string {
	unit := func(n int64, word string) string {
		if n == 1 {
			return "1 " + word
		}
		return strconv.FormatInt(n, 10) + " " + word + "s"
	}
	switch {
	case d >= 48*time.Hour:
		return unit(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour:
		return unit(int64(d/time.Hour), "hour")
	}
	return unit(max(1, int64(d/time.Minute)), "minute")
}
