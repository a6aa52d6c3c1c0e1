package planner

import (
	"fmt"
	"slices"
	"time"
)

// Renewal actions, from nothing to do to a first issuance.
const (
	ActionNone    = "none"    // the current certificate is fine; NextCheck says when to look again
	ActionWait    = "wait"    // something is due, but a backoff or the CA's Retry-After holds it until NextCheck
	ActionRenew   = "renew"   // same names, renewal due (ARI window, a third of the lifetime left, or expired)
	ActionReissue = "reissue" // the plan changed the certificate's names
	ActionIssue   = "issue"   // no current certificate
)

// Reason codes for a RenewalDecision.
const (
	ReasonNoCert         = "no-certificate"
	ReasonNamesChanged   = "names-changed"
	ReasonARIWindow      = "ari-window"        // the CA's suggested window (RFC 9773) has opened
	ReasonThirdLeft      = "third-of-lifetime" // no ARI: a third of the lifetime is left
	ReasonExpired        = "expired"
	ReasonNotDue         = "not-due"
	ReasonBackoff        = "backoff"     // earlier attempts failed; waiting before the next
	ReasonCARetryAfter   = "retry-after" // the CA asked us to wait
	ReasonARIUnavailable = "ari-unavailable"
)

// CertState is what the state directory knows of one issued certificate.
type CertState struct {
	Names     []string // sorted
	NotBefore time.Time
	NotAfter  time.Time
	// ARI is the CA's suggested renewal window, when the CA supports ARI
	// (RFC 9773) and it was fetched; nil otherwise.
	ARI *Window
	// Failures counts consecutive failed attempts for this certificate;
	// LastFailure is when the last one ended.
	Failures    int
	LastFailure time.Time
	// RetryAfter is the earliest time the CA allows another attempt (from a
	// Retry-After header or a rate-limit error), zero for none.
	RetryAfter time.Time
}

// Window is a renewal window suggested by the CA.
type Window struct {
	Start, End time.Time
}

// RenewalDecision says what to do with one planned certificate.
type RenewalDecision struct {
	Action string `json:"action"`
	Reason string `json:"reason"`
	// Message explains the decision to a person.
	Message string `json:"message"`
	// RenewAt is when the certificate becomes due (zero when it is due now
	// or there is none).
	RenewAt time.Time `json:"renew_at,omitzero"`
	// NextCheck is when a later run should look again: RenewAt, or the end
	// of a backoff.
	NextCheck time.Time `json:"next_check,omitzero"`
}

// Backoff returns how long to wait after the n-th consecutive failure:
// 1 minute, 10 minutes, 100 minutes, then a day. A CA's rate limits count
// failures per hour and week, so retrying faster only burns the budget.
func Backoff(failures int) time.Duration {
	switch {
	case failures <= 0:
		return 0
	case failures == 1:
		return time.Minute
	case failures == 2:
		return 10 * time.Minute
	case failures == 3:
		return 100 * time.Minute
	default:
		return 24 * time.Hour
	}
}

// RenewAt returns when cur becomes due. With an ARI window it is a point in
// the window chosen by jitter in [0, 1) (RFC 9773 §4.2: pick a uniformly random
// time in the window, so that a CA's clients do not all renew at once; the
// caller draws jitter, keeping this function pure). Without ARI it is when a
// third of the lifetime is left, as lego and Let's Encrypt suggest.
func RenewAt(cur *CertState, jitter float64) (time.Time, string) {
	if cur.ARI != nil && !cur.ARI.End.Before(cur.ARI.Start) {
		span := cur.ARI.End.Sub(cur.ARI.Start)
		j := min(max(jitter, 0), 1)
		return cur.ARI.Start.Add(time.Duration(float64(span) * j)), ReasonARIWindow
	}
	life := cur.NotAfter.Sub(cur.NotBefore)
	return cur.NotAfter.Add(-life / 3), ReasonThirdLeft
}

// DecideRenewal decides what to do with the certificate that plannedNames
// (sorted) should have, given what is issued now (cur, nil for none) and the
// clock. It reads no clock and draws no random numbers: now and jitter come
// from the caller. For a certificate never issued, with failed attempts
// behind it, DecideIssue honours the backoff.
func DecideRenewal(now time.Time, plannedNames []string, cur *CertState, jitter float64) RenewalDecision {
	if cur == nil {
		return RenewalDecision{Action: ActionIssue, Reason: ReasonNoCert, Message: "no certificate yet"}
	}
	var d RenewalDecision
	switch renewAt, why := RenewAt(cur, jitter); {
	case !slices.Equal(plannedNames, cur.Names):
		d = RenewalDecision{Action: ActionReissue, Reason: ReasonNamesChanged, Message: namesChanged(plannedNames, cur.Names)}
	case !now.Before(cur.NotAfter):
		d = RenewalDecision{Action: ActionRenew, Reason: ReasonExpired,
			Message: fmt.Sprintf("expired %s", cur.NotAfter.UTC().Format(time.RFC3339))}
	case !now.Before(renewAt):
		msg := fmt.Sprintf("a third of the lifetime is left (expires %s)", cur.NotAfter.UTC().Format(time.RFC3339))
		if why == ReasonARIWindow {
			msg = fmt.Sprintf("the CA's renewal window opened %s", cur.ARI.Start.UTC().Format(time.RFC3339))
		}
		d = RenewalDecision{Action: ActionRenew, Reason: why, Message: msg}
	default:
		return RenewalDecision{Action: ActionNone, Reason: ReasonNotDue, RenewAt: renewAt, NextCheck: renewAt,
			Message: fmt.Sprintf("due %s", renewAt.UTC().Format(time.RFC3339))}
	}
	// Something is due: honour the CA's Retry-After and our own backoff.
	return holdFor(now, d, cur.Failures, cur.LastFailure, cur.RetryAfter)
}

// DecideIssue decides about a planned certificate that has never been
// issued: issue it now, unless earlier attempts failed (failures in a row,
// the last ending at lastFailure) and the backoff after them has not
// passed, or the CA's Retry-After (zero for none) has not. Backoff and
// Retry-After apply as in DecideRenewal: a first issuance that keeps
// failing (a CA rate limit, a name that does not validate) is not tried
// again on every run.
func DecideIssue(now time.Time, failures int, lastFailure, retryAfter time.Time) RenewalDecision {
	d := RenewalDecision{Action: ActionIssue, Reason: ReasonNoCert, Message: "no certificate yet"}
	return holdFor(now, d, failures, lastFailure, retryAfter)
}

// holdFor turns the due decision d into a wait while the CA's Retry-After
// or the backoff after failures holds it.
func holdFor(now time.Time, d RenewalDecision, failures int, lastFailure, retryAfter time.Time) RenewalDecision {
	hold, reason := retryAfter, ReasonCARetryAfter
	if b := lastFailure.Add(Backoff(failures)); failures > 0 && b.After(hold) {
		hold, reason = b, ReasonBackoff
	}
	if now.Before(hold) {
		msg := fmt.Sprintf("%s, but %s until %s", d.Message, holdWhy(reason, failures), hold.UTC().Format(time.RFC3339))
		return RenewalDecision{Action: ActionWait, Reason: reason, Message: msg, NextCheck: hold}
	}
	return d
}

func holdWhy(reason string, failures int) string {
	if reason == ReasonCARetryAfter {
		return "the CA asked to wait"
	}
	if failures == 1 {
		return "the last attempt failed: backing off"
	}
	return fmt.Sprintf("the last %d attempts failed: backing off", failures)
}

func namesChanged(planned, current []string) string {
	var added, removed int
	for _, n := range planned {
		if _, ok := slices.BinarySearch(current, n); !ok {
			added++
		}
	}
	for _, n := range current {
		if _, ok := slices.BinarySearch(planned, n); !ok {
			removed++
		}
	}
	return fmt.Sprintf("names changed: %d added, %d removed", added, removed)
}
