package apply

import (
	"crypto"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/rollover"
	"github.com/certplan/certplan/store"
)

// rolloverDNS makes e's DNS server (127.0.0.1) the first of two
// authoritative servers of d.test, starts the second on 127.0.0.3 (same
// port), and returns an observer asking them through a validating
// resolver's stand-in, and a function that adds records to both servers
// or to the first only.
func rolloverDNS(t *testing.T, e *env) (*rollover.Observer, func(both bool, rr string)) {
	t.Helper()
	_, port, _ := net.SplitHostPort(e.dns.Addr())
	ns2 := dnstest.New()
	if err := ns2.AddZone("d.test.", "$ORIGIN d.test.\n@ IN SOA ns1.d.test. h.d.test. 1 3600 600 86400 60\n"); err != nil {
		t.Fatal(err)
	}
	if err := ns2.Start("127.0.0.3:" + port); err != nil {
		t.Skipf("second authoritative server on 127.0.0.3:%s: %v", port, err)
	}
	t.Cleanup(func() { ns2.Close() })
	add := func(both bool, rr string) {
		t.Helper()
		if err := e.dns.Add(rr); err != nil {
			t.Fatal(err)
		}
		if both {
			if err := ns2.Add(rr); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, rr := range []string{"d.test. 60 IN NS ns1.d.test.", "d.test. 60 IN NS ns2.d.test.", "ns1.d.test. 60 IN A 127.0.0.1", "ns2.d.test. 60 IN A 127.0.0.3"} {
		add(true, rr)
	}
	p, _ := strconv.Atoi(port)
	res, err := dnstest.StartResolver(e.dns.Addr(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	return &rollover.Observer{Resolver: res.Addr(), AuthPort: p, Timeout: 2 * time.Second}, add
}

func stageNext(t *testing.T, e *env, id string, names ...string) *store.NextKey {
	t.Helper()
	st, err := store.Open(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Lock(); err != nil {
		t.Fatal(err)
	}
	nk, _, err := rollover.Stage(st, id, "ec256", func() (crypto.Signer, error) { return acme.GenerateKey(acme.EC256) }, e.now)
	if err != nil {
		t.Fatal(err)
	}
	nk.Names = names
	if err := st.SaveNextKey(id, nk); err != nil {
		t.Fatal(err)
	}
	return nk
}

func loadNext(t *testing.T, e *env, id string) *store.NextKey {
	t.Helper()
	st, _ := store.OpenReadOnly(e.dir)
	nk, err := st.LoadNextKey(id)
	if err != nil {
		t.Fatalf("next key: %v", err)
	}
	return nk
}

// TestRolloverSwitch: a certificate with a staged next key keeps its
// current key (also when a renewal is due) until the next key's record is
// validated, on both authoritative servers and two TTLs old by the
// injected clock; then a renewal run switches to it by itself, and the
// store keeps the old key's records for rollover finish.
func TestRolloverSwitch(t *testing.T) {
	e := newEnv(t)
	obs, add := rolloverDNS(t, e)
	p := plan("p1", defCert("mail.d.test"))
	if r := e.run(p, ModeIssue); statuses(r) != "default-127.0.0.2=issued" {
		t.Fatalf("first issue: %s", statuses(r))
	}
	id := "default-127.0.0.2"
	old := e.stored(id).Meta.SPKISHA256
	add(true, "_25._tcp.mail.d.test. 300 IN TLSA 3 1 1 "+old)
	nk := stageNext(t, e, id, "mail.d.test")
	withObs := func(o *Options) { o.Rollover = obs }

	// Not published: nothing due, nothing switched.
	if r := e.run(p, ModeRenew, withObs); statuses(r) != id+"=unchanged" {
		t.Fatalf("not published: %s", statuses(r))
	}
	// A renewal due while the rollover waits keeps the current key.
	r := e.run(p, ModeIssue, withObs, func(o *Options) { o.Force = true })
	if statuses(r) != id+"=issued" || e.stored(id).Meta.SPKISHA256 != old || !strings.Contains(strings.Join(r.Certificates[0].Warnings, " "), "the current key is kept") {
		t.Fatalf("forced while waiting: %s, key %s, warnings %q", statuses(r), e.stored(id).Meta.SPKISHA256, r.Certificates[0].Warnings)
	}
	// On one of two servers: still waiting, not seen.
	add(false, "_25._tcp.mail.d.test. 300 IN TLSA 3 1 1 "+nk.SPKISHA256)
	e.now = e.now.Add(time.Minute)
	if r := e.run(p, ModeRenew, withObs); statuses(r) != id+"=unchanged" || !loadNext(t, e, id).FirstSeenAt.IsZero() {
		t.Fatalf("one server: %s", statuses(r))
	}
	// On both: first seen now; two TTLs (600 s) later, not a second before, it switches.
	add(true, "_25._tcp.mail.d.test. 300 IN TLSA 3 1 1 "+nk.SPKISHA256)
	e.now = e.now.Add(time.Minute)
	seen := e.now
	if r := e.run(p, ModeRenew, withObs); statuses(r) != id+"=unchanged" || !loadNext(t, e, id).FirstSeenAt.Equal(seen) {
		t.Fatalf("both servers: %s, first seen %v, want %v", statuses(r), loadNext(t, e, id).FirstSeenAt, seen)
	}
	e.now = seen.Add(600*time.Second - time.Second)
	if r := e.run(p, ModeRenew, withObs); statuses(r) != id+"=unchanged" {
		t.Fatalf("a second before two TTLs: %s", statuses(r))
	}
	e.now = seen.Add(600 * time.Second)
	r = e.run(p, ModeRenew, withObs)
	c := r.Certificates[0]
	if c.Status != StatusIssued || c.Reason != ReasonKeyRollover {
		t.Fatalf("two TTLs after: %+v", c)
	}
	checkVerified(t, r, 1)
	if got := e.stored(id).Meta.SPKISHA256; got != nk.SPKISHA256 {
		t.Fatalf("key after the switch %s, want the next key %s", got, nk.SPKISHA256)
	}
	st, _ := store.OpenReadOnly(e.dir)
	if _, err := st.LoadNextKey(id); err == nil {
		t.Fatal("the next-key slot was not dropped")
	}
	rk, err := st.LoadRolledKey(id)
	if err != nil || rk.OldSPKISHA256 != old || rk.NewSPKISHA256 != nk.SPKISHA256 || !rk.SwitchedAt.Equal(e.now) {
		t.Fatalf("rolled key %+v, %v", rk, err)
	}
}

// TestPlanKeyUnderRollover: with Options.Rollover, the plan's KeyNext
// switches only when the rollover finds the next key ready (until then
// the current key is kept), and a plan that keeps the key while the
// rollover finds it ready is refused rather than ordered with the old key
// again and again.
func TestPlanKeyUnderRollover(t *testing.T) {
	e := newEnv(t)
	obs, add := rolloverDNS(t, e)
	id := "default-127.0.0.2"
	if r := e.run(plan("p1", defCert("mail.d.test")), ModeIssue); statuses(r) != id+"=issued" {
		t.Fatalf("first issue: %s", statuses(r))
	}
	old := e.stored(id).Meta.SPKISHA256
	add(true, "_25._tcp.mail.d.test. 300 IN TLSA 3 1 1 "+old)
	nk := stageNext(t, e, id, "mail.d.test")
	withObs := func(o *Options) { o.Rollover = obs }
	force := func(o *Options) { o.Force = true }

	// Published on one server only: KeyNext keeps the current key.
	add(false, "_25._tcp.mail.d.test. 300 IN TLSA 3 1 1 "+nk.SPKISHA256)
	r := e.run(plan("p2", keep(defCert("mail.d.test"), model.KeyNext)), ModeIssue, withObs, force)
	if statuses(r) != id+"=issued" || e.stored(id).Meta.SPKISHA256 != old {
		t.Fatalf("next not ready: %s, key %s, want the current %s", statuses(r), e.stored(id).Meta.SPKISHA256, old)
	}

	// On both, two TTLs on: ready. A plan that keeps the key is refused.
	add(true, "_25._tcp.mail.d.test. 300 IN TLSA 3 1 1 "+nk.SPKISHA256)
	e.now = e.now.Add(time.Minute)
	e.run(plan("p2", keep(defCert("mail.d.test"), model.KeyNext)), ModeRenew, withObs)
	e.now = e.now.Add(601 * time.Second)
	r = e.run(plan("p3", keep(defCert("mail.d.test"), model.KeyKeep)), ModeRenew, withObs)
	if statuses(r) != id+"=failed" || !strings.Contains(r.Certificates[0].Error, "the rollover found the next key ready") {
		t.Fatalf("keep while ready: %s %q", statuses(r), r.Certificates[0].Error)
	}
	r = e.run(plan("p2", keep(defCert("mail.d.test"), model.KeyNext)), ModeIssue, withObs, force)
	if statuses(r) != id+"=issued" || e.stored(id).Meta.SPKISHA256 != nk.SPKISHA256 {
		t.Fatalf("next ready: %s, key %s, want the next %s", statuses(r), e.stored(id).Meta.SPKISHA256, nk.SPKISHA256)
	}
}
