package rollover

import (
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/store"
)

func seenAll(name string, ttl uint32, n int) Seen {
	s := Seen{Name: name, Validated: true, Zone: "d.test.", TTL: ttl}
	for i := range n {
		s.Servers = append(s.Servers, ServerSeen{NS: "ns.d.test.", Addr: "127.0.0." + string(rune('2'+i)) + ":53", Has: true})
	}
	return s
}

// TestStep walks the state machine with an injected clock: staged until
// seen everywhere, waiting two TTLs from the first time it is, ready
// after; a miss on one server starts the wait again.
func TestStep(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	nk := store.NextKey{SPKISHA256: "ab", CreatedAt: t0, Names: []string{"mx.d.test"}}
	missing := seenAll("mx.d.test", 300, 3)
	missing.Servers[2].Has = false

	st, nk := Step(nk, []Seen{missing}, t0.Add(time.Minute))
	if st.State != StateStaged || !nk.FirstSeenAt.IsZero() || !strings.Contains(st.Waits, "on 2 of 3 authoritative servers") {
		t.Fatalf("one server missing: %+v, first seen %v", st, nk.FirstSeenAt)
	}
	notValidated := seenAll("mx.d.test", 300, 3)
	notValidated.Validated, notValidated.Resolver = false, "no AD bit"
	if st, _ := Step(nk, []Seen{notValidated}, t0.Add(time.Minute)); st.State != StateStaged || !strings.Contains(st.Waits, "not validated") {
		t.Fatalf("not validated: %+v", st)
	}

	seen := t0.Add(10 * time.Minute)
	st, nk = Step(nk, []Seen{seenAll("mx.d.test", 300, 3)}, seen)
	if st.State != StateWaiting || !nk.FirstSeenAt.Equal(seen) || !st.ReadyAt.Equal(seen.Add(10*time.Minute)) || nk.TTL != 300 {
		t.Fatalf("seen everywhere: %+v, next key %+v", st, nk)
	}
	st, nk = Step(nk, []Seen{seenAll("mx.d.test", 300, 3)}, seen.Add(10*time.Minute-time.Second))
	if st.State != StateWaiting || !nk.FirstSeenAt.Equal(seen) {
		t.Fatalf("a second before two TTLs: %+v", st)
	}
	if st, _ := Step(nk, []Seen{seenAll("mx.d.test", 300, 3)}, seen.Add(10*time.Minute)); st.State != StateReady {
		t.Fatalf("two TTLs after: %+v", st)
	}
	// A server that loses the record starts the wait again.
	st, nk = Step(nk, []Seen{missing}, seen.Add(11*time.Minute))
	if st.State != StateStaged || !nk.FirstSeenAt.IsZero() {
		t.Fatalf("lost on one server: %+v", st)
	}
	st, _ = Step(nk, []Seen{seenAll("mx.d.test", 300, 3)}, seen.Add(12*time.Minute))
	if st.State != StateWaiting || !st.ReadyAt.Equal(seen.Add(22*time.Minute)) {
		t.Fatalf("seen again: %+v", st)
	}
}

// TestStepEveryName: a certificate with two pinned names waits for both,
// and for the larger TTL.
func TestStepEveryName(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	nk := store.NextKey{SPKISHA256: "ab", CreatedAt: t0, Names: []string{"mx.d.test", "mx2.d.test"}}
	if st, _ := Step(nk, []Seen{seenAll("mx.d.test", 300, 2)}, t0); st.State != StateStaged || !strings.Contains(st.Waits, "mx2.d.test: not observed") {
		t.Fatalf("one name of two: %+v", st)
	}
	st, _ := Step(nk, []Seen{seenAll("mx.d.test", 300, 2), seenAll("mx2.d.test", 3600, 2)}, t0)
	if st.State != StateWaiting || !st.ReadyAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("both names: %+v", st)
	}
	noServers := Seen{Name: "mx.d.test", Validated: true, Err: "no NS"}
	if st, _ := Step(nk, []Seen{noServers, seenAll("mx2.d.test", 300, 2)}, t0); st.State != StateStaged {
		t.Fatalf("servers unknown: %+v", st)
	}
}

// TestStepNoNames: a key that nothing pins may be used at once.
func TestStepNoNames(t *testing.T) {
	if st, _ := Step(store.NextKey{SPKISHA256: "ab"}, nil, time.Now()); st.State != StateReady {
		t.Fatalf("no pinned names: %+v", st)
	}
}

func TestRecordString(t *testing.T) {
	r := Record{Name: "MX.d.test.", TTL: 3600, SPKI: "ab"}
	if got, want := Records([]string{r.Name}, 3600, "ab")[0].String(), "_25._tcp.mx.d.test. 3600 IN TLSA 3 1 1 ab"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestEntryHost(t *testing.T) {
	for entry, want := range map[string]string{
		"mx.d.test": "mx.d.test", "_465._tcp.smtp.d.test": "smtp.d.test", "_587._tcp.smtp.d.test": "smtp.d.test",
		"_x._tcp.a.test": "_x._tcp.a.test", // not a port: the entry as it is
	} {
		if got := Host(entry); got != want {
			t.Errorf("Host(%q) = %q, want %q", entry, got, want)
		}
	}
}
