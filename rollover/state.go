package rollover

// This file is the state machine: pure, with the clock as an argument.

import (
	"fmt"
	"strings"
	"time"

	"github.com/certplan/certplan/store"
)

// States of a rollover, in order.
const (
	StateNone     = "none"     // no next key staged
	StateStaged   = "staged"   // staged; its records are not yet validated and on every authoritative server
	StateWaiting  = "waiting"  // seen everywhere; waiting two TTLs from FirstSeen
	StateReady    = "ready"    // the next renewal switches to the next key
	StateSwitched = "switched" // the next key is current; the old key's records are to be removed (Finish)
)

// Status is where one certificate's rollover stands.
type Status struct {
	ID    string `json:"id"`
	State string `json:"state"`
	// StagedAt is when the next key was made; FirstSeen when its records
	// were first seen everywhere; ReadyAt when two TTLs from then have
	// passed (zero until seen); SwitchedAt when it became current.
	StagedAt   time.Time `json:"staged_at,omitzero"`
	FirstSeen  time.Time `json:"first_seen,omitzero"`
	ReadyAt    time.Time `json:"ready_at,omitzero"`
	SwitchedAt time.Time `json:"switched_at,omitzero"`
	TTL        uint32    `json:"ttl,omitempty"`
	// Waits says, for people, what the switch waits for (empty when
	// ready or when there is nothing to wait for).
	Waits string `json:"waits,omitempty"`
	// Current and Next are the records of the current and next keys.
	Current []Record `json:"current,omitempty"`
	Next    []Record `json:"next,omitempty"`
	// Seen is the observation of the next key's records (StateStaged,
	// StateWaiting, StateReady).
	Seen []Seen `json:"seen,omitempty"`
}

// Step is the rollover's state from the staged key nk and an observation
// of its records seen at now. It returns nk with FirstSeenAt and TTL
// updated, for the caller to store: FirstSeenAt is set when every name's
// record is first seen everywhere, and cleared when an observation misses
// one; the next key is ready two TTLs (the largest of nk.TTL and what the
// servers give) after FirstSeenAt. Without names nothing pins the key and
// it is ready at once.
func Step(nk store.NextKey, seen []Seen, now time.Time) (Status, store.NextKey) {
	st := Status{State: StateStaged, StagedAt: nk.CreatedAt, Seen: seen}
	if len(nk.Names) == 0 {
		st.State = StateReady
		return st, nk
	}
	for _, s := range seen {
		nk.TTL = max(nk.TTL, s.TTL)
	}
	st.TTL = nk.TTL
	if why := notEverywhere(nk.Names, seen); why != "" {
		nk.FirstSeenAt = time.Time{}
		st.Waits = why
		return st, nk
	}
	if nk.FirstSeenAt.IsZero() {
		nk.FirstSeenAt = now.UTC()
	}
	st.FirstSeen = nk.FirstSeenAt
	st.ReadyAt = nk.FirstSeenAt.Add(2 * time.Duration(nk.TTL) * time.Second)
	if now.Before(st.ReadyAt) {
		st.State = StateWaiting
		st.Waits = fmt.Sprintf("the next key's records are seen everywhere since %s; waiting two TTLs (%s) until %s, so that no resolver still holds the old record set",
			st.FirstSeen.Format(time.RFC3339), 2*time.Duration(nk.TTL)*time.Second, st.ReadyAt.Format(time.RFC3339))
		return st, nk
	}
	st.State = StateReady
	return st, nk
}

// notEverywhere says which of names' records are not yet seen
// everywhere, and where they are missing ("" when all are).
func notEverywhere(names []string, seen []Seen) string {
	byName := map[string]Seen{}
	for _, s := range seen {
		byName[s.Name] = s
	}
	var why []string
	for _, n := range names {
		s, ok := byName[n]
		if !ok {
			why = append(why, n+": not observed")
			continue
		}
		if s.Everywhere() {
			continue
		}
		why = append(why, s.Name+": "+s.describe())
	}
	return strings.Join(why, "; ")
}

// describe says where the record is missing.
func (s Seen) describe() string {
	var parts []string
	if !s.Validated {
		parts = append(parts, "not validated through the resolver ("+s.Resolver+")")
	}
	if s.Err != "" {
		return strings.Join(append(parts, "authoritative servers not found: "+s.Err), ", ")
	}
	n, of := s.OnServers()
	if n < of || of == 0 {
		var missing []string
		for _, sv := range s.Servers {
			if !sv.Has {
				m := sv.NS + " " + sv.Addr
				if sv.Err != "" {
					m += " (" + sv.Err + ")"
				}
				missing = append(missing, m)
			}
		}
		parts = append(parts, fmt.Sprintf("on %d of %d authoritative servers of %s (missing on %s)", n, of, s.Zone, strings.Join(missing, ", ")))
	}
	return strings.Join(parts, ", ")
}
