package monitor

import (
	"strings"
	"testing"
	"time"
)

// TestFailingDomains: each failing domain is a WARNING with how long it has
// failed; a CRITICAL finding stays first; none leaves the result as it was.
func TestFailingDomains(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	certs := []Cert{{ID: "c1", Issued: true, NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(60 * 24 * time.Hour)}}
	r := Evaluate(now, certs, nil, nil, DefaultThresholds)
	r.AddFailingDomains(now, nil)
	if r.Status != OK || len(r.Findings) != 0 {
		t.Fatalf("no failing domain: %+v", r)
	}
	r.AddFailingDomains(now, []FailingDomain{{Domain: "b.test", Since: now.Add(-3 * time.Hour), Error: "MX b.test: SERVFAIL"}})
	if r.Status != Warning || len(r.FailingDomains) != 1 {
		t.Fatalf("status %v, failing %v", r.Status, r.FailingDomains)
	}
	want := "b.test: DNS lookups failing for 3 hours (since 2026-12-06 09:00 UTC): MX b.test: SERVFAIL"
	if r.Findings[0].Message != want || r.Summary != want {
		t.Errorf("finding %q, summary %q, want %q", r.Findings[0].Message, r.Summary, want)
	}

	certs[0].NotAfter = now.Add(-time.Hour)
	r = Evaluate(now, certs, nil, nil, DefaultThresholds)
	r.AddFailingDomains(now, []FailingDomain{{Domain: "b.test", Since: now.Add(-time.Minute)}})
	if r.Status != Critical || r.Findings[0].Status != Critical || !strings.HasPrefix(r.Findings[1].Message, "b.test: DNS lookups failing for 1 minute") {
		t.Errorf("with an expired certificate: %+v", r)
	}
}

func TestHowLong(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1 minute", 90 * time.Second: "1 minute", 59 * time.Minute: "59 minutes",
		time.Hour: "1 hour", 47 * time.Hour: "47 hours", 48 * time.Hour: "2 days", 400 * time.Hour: "16 days",
	} {
		if got := howLong(d); got != want {
			t.Errorf("howLong(%v) = %q, want %q", d, got, want)
		}
	}
}
