package planner

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/model"
)

var (
	gateIP   = []string{"127.0.0.2"}
	spkiCur  = strings.Repeat("aa", 32)
	spkiNext = strings.Repeat("bb", 32)
	spkiDef  = strings.Repeat("cc", 32)
)

func ee(spki ...string) []model.TLSA {
	var out []model.TLSA
	for _, s := range spki {
		out = append(out, model.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: s})
	}
	return out
}

// daneInventory: mx.d.test (pinned as set), mail.d.test, mail.e.test.
func daneInventory(set func(n *model.Name)) *model.Inventory {
	mx := nm("mx.d.test", []string{"d.test"}, gateIP, model.RoleMX)
	set(&mx)
	return inventory(gateIP, mx,
		nm("mail.d.test", []string{"d.test"}, gateIP, model.RoleMail),
		nm("mail.e.test", []string{"e.test"}, gateIP, model.RoleMail))
}

// movedPrev: mx.d.test on an SNI certificate of its own, the others on
// the default.
func movedPrev() *model.Plan {
	return &model.Plan{Header: model.Header{Kind: model.KindPlan, Version: model.Version},
		Certificates: []model.PlannedCert{
			{ID: "default-127.0.0.2", Default: true, IPs: gateIP, Names: []string{"mail.d.test", "mail.e.test"}},
			{ID: "sni-d.test", IPs: gateIP, Names: []string{"mx.d.test"}},
		}}
}

func TestDANEKeys(t *testing.T) {
	secure := func(recs ...model.TLSA) func(*model.Name) {
		return func(n *model.Name) { n.TLSA, n.TLSADNSSEC = recs, model.DNSSECSecure }
	}
	for _, c := range []struct {
		name       string
		set        func(*model.Name)
		next       string
		key, cause string
	}{
		{"pinned name keeps its key", secure(ee(spkiCur)...), "",
			model.KeyKeep, "validated TLSA records at _25._tcp.mx.d.test: the current key is kept"},
		{"unknown keeps the key", func(n *model.Name) { n.TLSAError = "SERVFAIL" }, "",
			model.KeyKeep, "the TLSA lookup of _25._tcp.mx.d.test failed: SERVFAIL: an unknown state never lets a key change"},
		{"not validated keeps the key", func(n *model.Name) { n.TLSA = ee(spkiCur) }, spkiNext,
			model.KeyKeep, "were not validated"},
		{"insecure zone does not", func(n *model.Name) { n.TLSA, n.TLSADNSSEC = ee(spkiCur), model.DNSSECInsecure }, "", "", ""},
		{"DANE-TA alone does not", secure(model.TLSA{Usage: 2, Selector: 1, MatchingType: 1, Data: spkiCur}), "", "", ""},
		{"next key staged, record not published", secure(ee(spkiCur)...), spkiNext, model.KeyKeep, "the current key is kept"},
		{"next key ready", secure(ee(spkiCur, spkiNext)...), spkiNext,
			model.KeyNext, "the staged next key (3 1 1 " + spkiNext + ") is published"},
		{"submission port pinned", func(n *model.Name) {
			n.PortTLSA = []model.PortTLSA{{Port: 587, Records: ee(spkiCur), DNSSEC: model.DNSSECSecure}}
		}, "", model.KeyKeep, "validated TLSA records at _587._tcp.mx.d.test"},
	} {
		t.Run(c.name, func(t *testing.T) {
			inv := daneInventory(c.set)
			pol := Policy{Keys: KeyState{Next: map[string]string{"sni-d.test": c.next}}}
			p := mustPlan(t, inv, nil, pol, movedPrev())
			pc := certByID(p, "sni-d.test")
			if pc == nil {
				t.Fatalf("no sni-d.test: %+v", p.Certificates)
			}
			if pc.Key != c.key || !strings.Contains(pc.KeyReason, c.cause) {
				t.Errorf("key %q (%s), want %q with %q", pc.Key, pc.KeyReason, c.key, c.cause)
			}
			if def := certByID(p, "default-127.0.0.2"); def.Key != "" {
				t.Errorf("the default, without pinned names, has key %q", def.Key)
			}
		})
	}
}

// TestDANEFit: a pinned name goes only on a certificate whose key its
// records trust; otherwise it is left out with the records to publish,
// and the rest is planned as usual.
func TestDANEFit(t *testing.T) {
	secure := func(recs ...model.TLSA) func(*model.Name) {
		return func(n *model.Name) { n.TLSA, n.TLSADNSSEC = recs, model.DNSSECSecure }
	}
	servfail := func(n *model.Name) { n.TLSAError = "SERVFAIL" }
	const def, sni = "default-127.0.0.2", "sni-d.test"
	known := func(cur, next map[string]string) KeyState { return KeyState{Known: true, Current: cur, Next: next} }
	for _, c := range []struct {
		name string
		set  func(*model.Name)
		keys KeyState
		prev *model.Plan
		// on: the certificate mx.d.test is on with key, else excluded
		// with a reason holding why.
		on, key, why string
	}{
		{"first plan, records for another key", secure(ee(spkiCur)...), known(map[string]string{def: spkiDef}, nil), nil,
			"", "", "publish _25._tcp.mx.d.test. IN TLSA 3 1 1 " + spkiDef + " beside the current records"},
		{"first plan, no key yet", secure(ee(spkiCur)...), KeyState{Known: true}, nil,
			"", "", "its key is made at issuance; stage it now (certplan rollover begin " + def + "), publish the 3 1 1 record that prints at _25._tcp.mx.d.test"},
		{"keys not read (certplan plan)", secure(ee(spkiCur)...), KeyState{}, nil,
			"", "", "its key is not known here (certplan plan reads no state directory)"},
		{"records for the current key", secure(ee(spkiCur, spkiDef)...), known(map[string]string{def: spkiDef}, nil), nil,
			def, model.KeyKeep, "the current key is kept"},
		{"records for the ready next key", secure(ee(spkiNext)...), known(map[string]string{def: spkiDef}, map[string]string{def: spkiNext}), nil,
			def, model.KeyNext, "the staged next key (3 1 1 " + spkiNext + ")"},
		{"next key not validated", func(n *model.Name) { n.TLSA = ee(spkiNext) }, known(map[string]string{def: spkiDef}, map[string]string{def: spkiNext}), nil,
			"", "", "were not validated"},
		{"not validated, for the current key", func(n *model.Name) { n.TLSA = ee(spkiDef) }, known(map[string]string{def: spkiDef}, nil), nil,
			def, model.KeyKeep, "an unknown state never lets a key change"},
		{"lookup failed, no previous plan", servfail, known(map[string]string{def: spkiDef}, nil), nil,
			"", "", "the TLSA lookup of _25._tcp.mx.d.test failed: SERVFAIL, and they trust no key of " + def},
		{"lookup failed, on the previous plan", servfail, known(map[string]string{def: spkiDef, sni: spkiCur}, nil), movedPrev(),
			sni, model.KeyKeep, "an unknown state never lets a key change"},
		{"on the previous plan, never issued", servfail, known(map[string]string{def: spkiDef}, nil), movedPrev(),
			"", "", "its key is made at issuance; stage it now (certplan rollover begin " + sni + ")"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := mustPlan(t, daneInventory(c.set), nil, Policy{Keys: c.keys}, c.prev)
			if d := certByID(p, def); d == nil || !slices.Contains(d.Names, "mail.d.test") || !slices.Contains(d.Names, "mail.e.test") {
				t.Fatalf("certificates %+v: want the others on %s", p.Certificates, def)
			}
			var holder *model.PlannedCert
			for i := range p.Certificates {
				if slices.Contains(p.Certificates[i].Names, "mx.d.test") {
					holder = &p.Certificates[i]
				}
			}
			i := slices.IndexFunc(p.Excluded, func(e model.Exclusion) bool { return e.Name == "mx.d.test" })
			if c.on == "" {
				if holder != nil || i < 0 || p.Excluded[i].Code != model.ExcludeDANEPinned || !strings.Contains(p.Excluded[i].Reason, c.why) {
					t.Fatalf("mx.d.test on %+v, excluded %+v: want it excluded (dane-pinned) with %q", holder, p.Excluded, c.why)
				}
				if d := certByID(p, def); d.Key != "" {
					t.Errorf("the default, its pinned name left out, has key %q", d.Key)
				}
				return
			}
			if holder == nil || holder.ID != c.on || holder.Key != c.key || !strings.Contains(holder.KeyReason, c.why) || i >= 0 {
				t.Fatalf("mx.d.test on %+v (excluded %+v): want it on %s with key %s and %q", holder, p.Excluded, c.on, c.key, c.why)
			}
		})
	}
}

// TestDANEFitStable: the plan made from the last one is the same: a name
// left out stays out (and is not refused) until its records or the keys
// change, and then it joins.
func TestDANEFitStable(t *testing.T) {
	inv := daneInventory(func(n *model.Name) { n.TLSA, n.TLSADNSSEC = ee(spkiCur), model.DNSSECSecure })
	pol := Policy{Keys: KeyState{Known: true, Current: map[string]string{"default-127.0.0.2": spkiDef}}}
	p1 := mustPlan(t, inv, nil, pol, nil)
	p2 := mustPlan(t, inv, nil, pol, p1)
	p3 := mustPlan(t, inv, nil, pol, p2)
	for _, p := range []*model.Plan{p2, p3} {
		if len(p.Certificates) != 1 || !slices.Equal(p.Certificates[0].Names, p1.Certificates[0].Names) || !slices.EqualFunc(p.Excluded, p1.Excluded, func(a, b model.Exclusion) bool { return a == b }) {
			t.Errorf("planned again: %+v excluded %+v, want %+v excluded %+v", p.Certificates, p.Excluded, p1.Certificates, p1.Excluded)
		}
	}
	// The record for the default's key published: the name joins it.
	inv.Names[slices.IndexFunc(inv.Names, func(n model.Name) bool { return n.Name == "mx.d.test" })].TLSA = ee(spkiCur, spkiDef)
	p4 := mustPlan(t, inv, nil, pol, p3)
	if d := certByID(p4, "default-127.0.0.2"); d == nil || !slices.Contains(d.Names, "mx.d.test") || d.Key != model.KeyKeep {
		t.Errorf("published: %+v", p4.Certificates)
	}
}

// TestDANERefusal: --repack would move the pinned mx.d.test off its SNI
// certificate onto the default, whose key its records do not pin; the
// refusal names the records for the default's current key. Without
// --repack the name stays, and so does its key.
func TestDANERefusal(t *testing.T) {
	inv := daneInventory(func(n *model.Name) { n.TLSA, n.TLSADNSSEC = ee(spkiCur), model.DNSSECSecure })
	keys := KeyState{Current: map[string]string{"default-127.0.0.2": spkiDef, "sni-d.test": spkiCur}}
	pol := Policy{MaxNames: 2, Repack: true, Keys: keys}
	_, err := Plan(inv, nil, pol, movedPrev(), now)
	var ge *GateError
	if !errors.As(err, &ge) || len(ge.DANE) != 1 {
		t.Fatalf("repack: err %v, want a GateError for mx.d.test", err)
	}
	r := ge.DANE[0]
	want := "_25._tcp.mx.d.test. IN TLSA 3 1 1 " + spkiDef
	if r.Name != "mx.d.test" || r.Cert != "default-127.0.0.2" || !slices.Equal(r.From, []string{"sni-d.test"}) || !slices.Equal(r.Records, []string{want}) {
		t.Errorf("refusal %+v, want mx.d.test from sni-d.test to default-127.0.0.2 with %q", r, want)
	}
	if h := strings.Join(ge.Hints(), "\n"); !strings.Contains(h, "\n  "+want) || !strings.Contains(h, "without --repack") {
		t.Errorf("hints:\n%s", h)
	}
	if !strings.Contains(err.Error(), "mx.d.test would move to default-127.0.0.2 (from sni-d.test)") {
		t.Errorf("error: %v", err)
	}

	// Published: the move is allowed.
	inv.Names[slices.IndexFunc(inv.Names, func(n model.Name) bool { return n.Name == "mx.d.test" })].TLSA = ee(spkiCur, spkiDef)
	if _, err := Plan(inv, nil, pol, movedPrev(), now); err != nil {
		t.Errorf("with the default's key published: %v", err)
	}

	// Without --repack nothing moves.
	inv = daneInventory(func(n *model.Name) { n.TLSA, n.TLSADNSSEC = ee(spkiCur), model.DNSSECSecure })
	p := mustPlan(t, inv, nil, Policy{MaxNames: 2, Keys: keys}, movedPrev())
	if pc := certByID(p, "sni-d.test"); pc == nil || !slices.Equal(pc.Names, []string{"mx.d.test"}) || pc.Key != model.KeyKeep {
		t.Errorf("without repack: %+v", p.Certificates)
	}

	// A name no certificate served: left out, not refused (TestDANEFit).
	inv = daneInventory(func(n *model.Name) { n.TLSAError = "SERVFAIL" })
	prev := movedPrev()
	prev.Certificates = prev.Certificates[:1]
	p = mustPlan(t, inv, nil, Policy{MaxNames: 2}, prev)
	if !slices.ContainsFunc(p.Excluded, func(e model.Exclusion) bool { return e.Name == "mx.d.test" && e.Code == model.ExcludeDANEPinned }) {
		t.Errorf("new to the plan: excluded %+v", p.Excluded)
	}

	// Moved to a certificate never issued: refused, the key not known.
	_, err = Plan(inv, nil, Policy{MaxNames: 2, Repack: true}, movedPrev(), now)
	if !errors.As(err, &ge) || len(ge.DANE) != 1 || ge.DANE[0].KeyKnown || len(ge.DANE[0].Records) != 0 {
		t.Fatalf("moved to a new certificate: %v", err)
	}
	if h := strings.Join(ge.Hints(), "\n"); !strings.Contains(h, "is not known yet: stage one") {
		t.Errorf("hints:\n%s", h)
	}
}

// stsInventory: d.test's three MX hosts, listed by its policy, and two
// other domains' names.
func stsInventory(mode string) *model.Inventory {
	d := []string{"d.test"}
	var ns []model.Name
	for _, h := range []string{"mx1.d.test", "mx2.d.test", "mx3.d.test"} {
		n := nm(h, d, gateIP, model.RoleMX)
		n.Sources = []model.Source{{Domain: "d.test", Role: model.RoleMX, Record: "d.test. MX 10 " + h + "."}}
		ns = append(ns, n)
	}
	gone := nm("mx4.d.test", d, []string{"127.0.0.77"}, model.RoleMX)
	gone.Here, gone.Sources = model.HereNone, []model.Source{{Domain: "d.test", Role: model.RoleMX}}
	ns = append(ns, gone,
		nm("mail.e.test", []string{"e.test"}, gateIP, model.RoleMail),
		nm("mail.f.test", []string{"f.test"}, gateIP, model.RoleMail))
	inv := inventory(gateIP, ns...)
	inv.Domains = []model.Domain{{Domain: "d.test", Names: []string{"mx1.d.test", "mx2.d.test", "mx3.d.test", "mx4.d.test"},
		MTASTS: &model.MTASTS{TXT: "v=STSv1; id=1", Policy: &model.MTASTSPolicy{Mode: mode, MaxAge: 86400, MX: []string{"*.d.test"}}}}}
	return inv
}

func TestMTASTS(t *testing.T) {
	// Room for all three: they come first (and past the per-domain cap of 1).
	p := mustPlan(t, stsInventory(model.MTASTSEnforce), nil, Policy{MaxNames: 4, MaxNamesPerDomain: 1}, nil)
	def := certByID(p, "default-127.0.0.2")
	for _, h := range []string{"mx1.d.test", "mx2.d.test", "mx3.d.test"} {
		if !slices.Contains(def.Names, h) {
			t.Errorf("enforce: %s not on the default %v", h, def.Names)
		}
	}
	if !hasWarning(p, model.WarnMTASTS, "mx4.d.test", "the MTA-STS policy of d.test (mode enforce, mx *.d.test) lists it, but it is not planned: points") {
		t.Errorf("no mta-sts warning for the host that points elsewhere: %+v", p.Warnings)
	}

	// Over the name limit: refused, naming the domain, policy and host.
	_, err := Plan(stsInventory(model.MTASTSEnforce), nil, Policy{MaxNames: 2}, nil, now)
	var ge *GateError
	if !errors.As(err, &ge) || len(ge.MTASTS) != 1 {
		t.Fatalf("enforce over the limit: %v", err)
	}
	want := MTASTSRefusal{Domain: "d.test", Host: "mx3.d.test", Policy: "mode enforce, mx *.d.test", IPs: gateIP}
	if r := ge.MTASTS[0]; r.Domain != want.Domain || r.Host != want.Host || r.Policy != want.Policy || !slices.Equal(r.IPs, want.IPs) {
		t.Errorf("refusal %+v, want %+v", r, want)
	}
	if !strings.Contains(err.Error(), "mx3.d.test, which the enforce MTA-STS policy of d.test lists (mode enforce, mx *.d.test), would not be on the default certificate of 127.0.0.2") {
		t.Errorf("error: %v", err)
	}

	// testing: a warning.
	p = mustPlan(t, stsInventory(model.MTASTSTesting), nil, Policy{MaxNames: 2}, nil)
	if !hasWarning(p, model.WarnMTASTSTesting, "mx3.d.test", "the MTA-STS policy of d.test (mode testing, mx *.d.test) lists it, but it is not on the default certificate of 127.0.0.2") {
		t.Errorf("testing: no warning: %+v", p.Warnings)
	}
}

// testCA makes a root and an intermediate it signs.
func testCA(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func spki211(c *x509.Certificate) model.TLSA {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return model.TLSA{Usage: 2, Selector: 1, MatchingType: 1, Data: hex.EncodeToString(h[:])}
}

// TestDANETA: a "2 1 1" record for an intermediate warns with the
// records for the roots; one for a root does not.
func TestDANETA(t *testing.T) {
	root, rootKey := testCA(t, "Test Root X1", nil, nil)
	root2, _ := testCA(t, "Test Root X2", nil, nil)
	inter, _ := testCA(t, "Test E5", root, rootKey)
	plan := func(rec model.TLSA, roots []*x509.Certificate) *model.Plan {
		inv := daneInventory(func(n *model.Name) { n.TLSA, n.TLSADNSSEC = []model.TLSA{rec}, model.DNSSECSecure })
		return mustPlan(t, inv, nil, Policy{Keys: KeyState{CARoots: roots}}, nil)
	}
	p := plan(spki211(inter), []*x509.Certificate{root, root2})
	for _, r := range []*x509.Certificate{root, root2} {
		want := "_25._tcp.mx.d.test. IN TLSA 2 1 1 " + spki211(r).Data + " (" + r.Subject.CommonName + ")"
		if !hasWarning(p, model.WarnDANETA, "mx.d.test", want) {
			t.Errorf("intermediate pinned: no warning with %q: %+v", want, p.Warnings)
		}
	}
	if p := plan(spki211(root2), []*x509.Certificate{root, root2}); hasWarning(p, model.WarnDANETA, "mx.d.test", "") {
		t.Errorf("root pinned: warned %+v", p.Warnings)
	}
	if p := plan(spki211(inter), nil); !hasWarning(p, model.WarnDANETA, "mx.d.test", "pin the CA's root instead") {
		t.Errorf("roots unknown: %+v", p.Warnings)
	}
}

// TestDANEStaysOnItsCertificate: the previous default's names all went
// away, so the default is refilled from the SNI certificates (build.go's
// refillDefault); the pinned mx.d.test is left on its SNI certificate
// (which keeps its key) instead of moving to the default, which would be
// refused.
func TestDANEStaysOnItsCertificate(t *testing.T) {
	inv := daneInventory(func(n *model.Name) { n.TLSA, n.TLSADNSSEC = ee(spkiCur), model.DNSSECSecure })
	prev := &model.Plan{Header: model.Header{Kind: model.KindPlan, Version: model.Version},
		Certificates: []model.PlannedCert{
			{ID: "default-127.0.0.2", Default: true, IPs: gateIP, Names: []string{"old.x.test"}},
			{ID: "sni-d.test", IPs: gateIP, Names: []string{"mail.d.test", "mail.e.test", "mx.d.test"}},
		}}
	p := mustPlan(t, inv, nil, Policy{Keys: KeyState{Current: map[string]string{"sni-d.test": spkiCur}}}, prev)
	def, sni := certByID(p, "default-127.0.0.2"), certByID(p, "sni-d.test")
	if def == nil || sni == nil || slices.Contains(def.Names, "mx.d.test") || !slices.Contains(sni.Names, "mx.d.test") || sni.Key != model.KeyKeep {
		t.Errorf("certificates %+v: want mx.d.test kept on sni-d.test with its key", p.Certificates)
	}
	if def != nil && !slices.Contains(def.Names, "mail.d.test") {
		t.Errorf("default %v: want the other names refilled onto it", def.Names)
	}
}

// TestDANEKeptThroughFailedLookup: an MX target kept from the previous
// plan although its lookup failed (TLSA not asked) keeps its
// certificate's key.
func TestDANEKeptThroughFailedLookup(t *testing.T) {
	inv := daneInventory(func(n *model.Name) { n.Error = "A mx.d.test: SERVFAIL" })
	p := mustPlan(t, inv, nil, Policy{}, movedPrev())
	pc := certByID(p, "sni-d.test")
	if pc == nil || pc.Key != model.KeyKeep || !strings.Contains(pc.KeyReason, "the lookup of mx.d.test failed (A mx.d.test: SERVFAIL), so whether TLSA records at _25._tcp.mx.d.test pin its key is unknown") {
		t.Errorf("kept through a failed lookup: %+v", pc)
	}
}
