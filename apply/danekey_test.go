package apply

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/store"
)

func spkiOf(t *testing.T, c *store.Cert) string {
	t.Helper()
	b, err := x509.MarshalPKIXPublicKey(c.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func keep(c model.PlannedCert, key string) model.PlannedCert {
	c.Key, c.KeyReason = key, "validated TLSA records at _25._tcp."+c.Names[0]
	return c
}

// TestPlanKeyKeep: a certificate the plan keeps the key of is renewed,
// with a changed name set, on its current key; without the plan's keep
// the same renewal gets a new key (so the test can fail). A kept key that
// does not exist refuses that certificate's order, and the others proceed.
func TestPlanKeyKeep(t *testing.T) {
	e := newEnv(t)
	r := e.run(plan("p1", defCert("mail.d.test"), keep(sniCert("sni-smtp.d.test", "smtp.d.test"), model.KeyKeep)), ModeIssue)
	if got := statuses(r); got != "default-127.0.0.2=issued sni-smtp.d.test=failed" {
		t.Fatalf("first run: %s", got)
	}
	if c := r.Certificates[1]; !strings.Contains(c.Error, "there is no current key to keep") || !strings.Contains(c.Error, "nothing was ordered") {
		t.Errorf("keep without a key: %q", c.Error)
	}
	if n := len(e.ca.Orders()); n != 1 {
		t.Errorf("%d orders, want the default's only", n)
	}

	before := spkiOf(t, e.stored("default-127.0.0.2"))
	r = e.run(plan("p2", keep(defCert("mail.d.test", "imap.d.test"), model.KeyKeep)), ModeRenew)
	if got := statuses(r); got != "default-127.0.0.2=issued" {
		t.Fatalf("kept key, names changed: %s", got)
	}
	after := e.stored("default-127.0.0.2")
	if got := spkiOf(t, after); got != before {
		t.Errorf("key changed under KeyKeep: %s, was %s", got, before)
	}
	if len(after.Meta.Names) != 2 {
		t.Errorf("names %v", after.Meta.Names)
	}

	r = e.run(plan("p3", defCert("mail.d.test", "imap.d.test", "late.d.test")), ModeRenew)
	if got := statuses(r); got != "default-127.0.0.2=issued" {
		t.Fatalf("control: %s", got)
	}
	if got := spkiOf(t, e.stored("default-127.0.0.2")); got == before {
		t.Errorf("control: a reissue without KeyKeep kept the key")
	}
}

// TestPlanKeyNext: KeyNext orders with the staged next key (and drops
// it); without one staged, the order is refused.
func TestPlanKeyNext(t *testing.T) {
	e := newEnv(t)
	r := e.run(plan("p1", keep(defCert("mail.d.test"), model.KeyNext)), ModeIssue)
	if got := statuses(r); got != "default-127.0.0.2=failed" || !strings.Contains(r.Certificates[0].Error, "no next key is staged") {
		t.Fatalf("next without a key: %s %q", got, r.Certificates[0].Error)
	}

	st, err := store.Open(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Lock(); err != nil {
		t.Fatal(err)
	}
	key, err := acme.GenerateKey(acme.EC256)
	if err != nil {
		t.Fatal(err)
	}
	pemKey, _ := acme.EncodeKey(key)
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	h := sha256.Sum256(spki)
	want := hex.EncodeToString(h[:])
	if err := st.SaveNextKey("default-127.0.0.2", &store.NextKey{KeyPEM: pemKey, KeyType: "ec256", SPKISHA256: want, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.Unlock(); err != nil {
		t.Fatal(err)
	}
	r = e.run(plan("p2", keep(defCert("mail.d.test"), model.KeyNext)), ModeIssue)
	if got := statuses(r); got != "default-127.0.0.2=issued" {
		t.Fatalf("next key staged: %s %+v", got, r.Certificates[0])
	}
	if got := spkiOf(t, e.stored("default-127.0.0.2")); got != want {
		t.Errorf("issued on %s, want the next key %s", got, want)
	}
	if _, err := st.LoadNextKey("default-127.0.0.2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("next key still staged: %v", err)
	}
}

// TestPlannedDANEExcluded: a name whose TLSA records trust no key of the
// default (none yet: a first plan) is left out by the planner, and the
// default is issued for the other names: one customer's records do not
// block the IP's shared certificate. (The control: the same default with
// the pinned name on it and its key kept, as the planner planned it
// before, is refused whole.) Once its record for the default's key is
// published, the next plan puts it on the default, whose key is kept.
func TestPlannedDANEExcluded(t *testing.T) {
	e := newEnv(t)
	ip := []string{"127.0.0.2"}
	name := func(n string) model.Name {
		return model.Name{Name: n, Roles: []string{model.RoleMail}, Domains: []string{"d.test"}, Addresses: ip, Here: model.HereAll, CAAOK: true}
	}
	pinned := name("smtp.d.test")
	pinned.Roles = []string{model.RoleMX}
	pinned.TLSA, pinned.TLSADNSSEC = []model.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: strings.Repeat("ab", 32)}}, model.DNSSECSecure
	inv := &model.Inventory{Header: model.Header{Kind: model.KindInventory, Version: model.Version}, ServerIPs: ip,
		Names: []model.Name{name("imap.d.test"), name("mail.d.test"), pinned}}
	keys := planner.KeyState{Known: true}
	p1, err := planner.Plan(inv, nil, planner.Policy{Keys: keys}, nil, e.now)
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Excluded) != 1 || p1.Excluded[0].Name != "smtp.d.test" || p1.Excluded[0].Code != model.ExcludeDANEPinned {
		t.Fatalf("first plan: excluded %+v, want smtp.d.test (dane-pinned)", p1.Excluded)
	}

	control := e.run(plan("c", keep(defCert("imap.d.test", "mail.d.test", "smtp.d.test"), model.KeyKeep)), ModeIssue)
	if got := statuses(control); got != "default-127.0.0.2=failed" {
		t.Fatalf("control (the pinned name on the default, key kept): %s", got)
	}
	r := e.run(p1, ModeIssue)
	if got := statuses(r); got != "default-127.0.0.2=issued" {
		t.Fatalf("planned: %s (%+v)", got, r.Certificates)
	}
	def := e.stored("default-127.0.0.2")
	if !slices.Equal(def.Meta.Names, []string{"imap.d.test", "mail.d.test"}) {
		t.Errorf("default names %v", def.Meta.Names)
	}

	// The record for the default's key published: it joins, key kept.
	spki := spkiOf(t, def)
	inv.Names[2].TLSA = append(inv.Names[2].TLSA, model.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: spki})
	keys.Current = map[string]string{"default-127.0.0.2": spki}
	p2, err := planner.Plan(inv, nil, planner.Policy{Keys: keys}, p1, e.now)
	if err != nil {
		t.Fatal(err)
	}
	if pc := p2.Certificates[0]; len(p2.Excluded) != 0 || !slices.Contains(pc.Names, "smtp.d.test") || pc.Key != model.KeyKeep {
		t.Fatalf("published: %+v, excluded %+v", p2.Certificates, p2.Excluded)
	}
	if got := statuses(e.run(p2, ModeRenew)); got != "default-127.0.0.2=issued" {
		t.Fatalf("renew: %s", got)
	}
	if got := spkiOf(t, e.stored("default-127.0.0.2")); got != spki {
		t.Errorf("key changed: %s, was %s", got, spki)
	}
}
