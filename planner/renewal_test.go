package planner

import (
	"testing"
	"time"
)

func TestDecideRenewal(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	names := []string{"mail.domain2.test", "server.main-domain.test"}
	cert := func(mod func(*CertState)) *CertState {
		c := &CertState{Names: names, NotBefore: t0, NotAfter: t0.Add(90 * 24 * time.Hour)}
		if mod != nil {
			mod(c)
		}
		return c
	}
	day := 24 * time.Hour
	tests := []struct {
		name      string
		now       time.Time
		planned   []string
		cur       *CertState
		jitter    float64
		action    string
		reason    string
		nextCheck time.Time
	}{
		{"none yet", t0, names, nil, 0, ActionIssue, ReasonNoCert, time.Time{}},
		{"fresh", t0.Add(day), names, cert(nil), 0, ActionNone, ReasonNotDue, t0.Add(60 * day)},
		{"a third left", t0.Add(60 * day), names, cert(nil), 0, ActionRenew, ReasonThirdLeft, time.Time{}},
		{"expired", t0.Add(91 * day), names, cert(nil), 0, ActionRenew, ReasonExpired, time.Time{}},
		{"names changed", t0.Add(day), []string{"mail.domain2.test"}, cert(nil), 0, ActionReissue, ReasonNamesChanged, time.Time{}},
		{"ARI window not open", t0.Add(10 * day), names, cert(func(c *CertState) {
			c.ARI = &Window{Start: t0.Add(20 * day), End: t0.Add(22 * day)}
		}), 0.5, ActionNone, ReasonNotDue, t0.Add(21 * day)},
		{"ARI window open, before the jittered point", t0.Add(20*day + time.Hour), names, cert(func(c *CertState) {
			c.ARI = &Window{Start: t0.Add(20 * day), End: t0.Add(22 * day)}
		}), 0.5, ActionNone, ReasonNotDue, t0.Add(21 * day)},
		{"ARI window open, past the point (CA revoked: window in the past)", t0.Add(10 * day), names, cert(func(c *CertState) {
			c.ARI = &Window{Start: t0.Add(2 * day), End: t0.Add(3 * day)}
		}), 0.9, ActionRenew, ReasonARIWindow, time.Time{}},
		{"due, first failure a minute ago", t0.Add(60 * day), names, cert(func(c *CertState) {
			c.Failures, c.LastFailure = 1, t0.Add(60*day-30*time.Second)
		}), 0, ActionWait, ReasonBackoff, t0.Add(60*day + 30*time.Second)},
		{"due, third failure 90 minutes ago", t0.Add(60 * day), names, cert(func(c *CertState) {
			c.Failures, c.LastFailure = 3, t0.Add(60*day-90*time.Minute)
		}), 0, ActionWait, ReasonBackoff, t0.Add(60*day + 10*time.Minute)},
		{"due, backoff over", t0.Add(60 * day), names, cert(func(c *CertState) {
			c.Failures, c.LastFailure = 2, t0.Add(60*day-11*time.Minute)
		}), 0, ActionRenew, ReasonThirdLeft, time.Time{}},
		{"due, CA said retry after", t0.Add(60 * day), names, cert(func(c *CertState) {
			c.RetryAfter = t0.Add(60*day + time.Hour)
		}), 0, ActionWait, ReasonCARetryAfter, t0.Add(60*day + time.Hour)},
		{"names changed during backoff waits", t0.Add(day), []string{"a.test"}, cert(func(c *CertState) {
			c.Failures, c.LastFailure = 4, t0.Add(time.Hour)
		}), 0, ActionWait, ReasonBackoff, t0.Add(day + time.Hour)},
		{"not due: a failure does not matter", t0.Add(day), names, cert(func(c *CertState) {
			c.Failures, c.LastFailure = 4, t0.Add(day)
		}), 0, ActionNone, ReasonNotDue, t0.Add(60 * day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := DecideRenewal(tt.now, tt.planned, tt.cur, tt.jitter)
			if d.Action != tt.action || d.Reason != tt.reason || !d.NextCheck.Equal(tt.nextCheck) {
				t.Errorf("got %s/%s next %s (%s), want %s/%s next %s", d.Action, d.Reason, d.NextCheck, d.Message, tt.action, tt.reason, tt.nextCheck)
			}
			if d.Message == "" {
				t.Error("empty message")
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{0, time.Minute, 10 * time.Minute, 100 * time.Minute, 24 * time.Hour, 24 * time.Hour}
	for n, w := range want {
		if got := Backoff(n); got != w {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, w)
		}
	}
}

// TestDecideIssue: a certificate never issued backs off after failed
// attempts and honours the CA's Retry-After, as a renewal does.
func TestDecideIssue(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		now         time.Time
		failures    int
		lastFailure time.Time
		retryAfter  time.Time
		action      string
		reason      string
		nextCheck   time.Time
		message     string
	}{
		{"never tried", t0, 0, time.Time{}, time.Time{}, ActionIssue, ReasonNoCert, time.Time{}, "no certificate yet"},
		{"first failure 30 s ago", t0, 1, t0.Add(-30 * time.Second), time.Time{}, ActionWait, ReasonBackoff, t0.Add(30 * time.Second),
			"no certificate yet, but the last attempt failed: backing off until 2026-11-01T00:00:30Z"},
		{"first failure 2 minutes ago", t0, 1, t0.Add(-2 * time.Minute), time.Time{}, ActionIssue, ReasonNoCert, time.Time{}, "no certificate yet"},
		{"second failure 5 minutes ago", t0, 2, t0.Add(-5 * time.Minute), time.Time{}, ActionWait, ReasonBackoff, t0.Add(5 * time.Minute),
			"no certificate yet, but the last 2 attempts failed: backing off until 2026-11-01T00:05:00Z"},
		{"fifth failure 23 hours ago", t0, 5, t0.Add(-23 * time.Hour), time.Time{}, ActionWait, ReasonBackoff, t0.Add(time.Hour), ""},
		{"rate limited: Retry-After beyond the backoff", t0, 1, t0.Add(-2 * time.Minute), t0.Add(3 * time.Hour), ActionWait, ReasonCARetryAfter, t0.Add(3 * time.Hour),
			"no certificate yet, but the CA asked to wait until 2026-11-01T03:00:00Z"},
		{"Retry-After passed", t0, 1, t0.Add(-2 * time.Hour), t0.Add(-time.Hour), ActionIssue, ReasonNoCert, time.Time{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := DecideIssue(tt.now, tt.failures, tt.lastFailure, tt.retryAfter)
			if d.Action != tt.action || d.Reason != tt.reason || !d.NextCheck.Equal(tt.nextCheck) {
				t.Errorf("got %s/%s next %s (%s), want %s/%s next %s", d.Action, d.Reason, d.NextCheck, d.Message, tt.action, tt.reason, tt.nextCheck)
			}
			if tt.message != "" && d.Message != tt.message {
				t.Errorf("message %q, want %q", d.Message, tt.message)
			}
		})
	}
}
