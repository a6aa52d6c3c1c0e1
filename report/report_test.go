package report

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, got)
	}
}

// labPlan plans testdata/inventory.json and probe.json.
func labPlan(t *testing.T) (*model.Plan, *model.Inventory) {
	t.Helper()
	var inv model.Inventory
	var pr model.ProbeReport
	if err := model.ReadFile("testdata/inventory.json", model.KindInventory, &inv); err != nil {
		t.Fatal(err)
	}
	if err := model.ReadFile("testdata/probe.json", model.KindProbe, &pr); err != nil {
		t.Fatal(err)
	}
	p, err := planner.Plan(&inv, &pr, planner.Policy{Hostname: "host.hoster.test", Exclude: []string{"autodiscover.*"}, MaxNames: 4}, nil,
		time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return p, &inv
}

func TestSummarize(t *testing.T) {
	p, _ := labPlan(t)
	s := Summarize(p)
	want := Summary{Names: 7, Certificates: 3, Default: 2, SNI: 1, Orders: 3, IPs: 2, Excluded: 3, SNIOnly: 1, ExtraIPs: 1,
		Warnings: len(p.Warnings), Probed: true, Fixed: 2, StillBroken: 6, Regressed: 1, AlreadyOK: 0,
		// smtp.domain4.test verifies both ways through today's default
		// certificate, which the plan replaces, and CAA forbids it.
		// autodiscover.domain1.test, excluded by --exclude, verifies with
		// SNI through its own certificate: not certplan's, left as it is
		// (still broken without SNI, as today).
		BrokenByPlan: []string{"smtp.domain4.test"}}
	if s.MustCoverExcluded != nil {
		t.Errorf("must-cover excluded %v", s.MustCoverExcluded)
	}
	s.MustCoverExcluded = nil
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

func TestRenderings(t *testing.T) {
	p, inv := labPlan(t)
	golden(t, "plan.txt", Text(p, inv))
	golden(t, "plan.md", Markdown(p, inv))
	h := HTML(p, inv)
	golden(t, "plan.html", h)
	// Self-contained: no external resources, no scripts.
	if m := regexp.MustCompile(`(?i)(https?:|src=|<link|<script|url\()`).Find(h); m != nil {
		t.Errorf("HTML refers to something outside itself: %q", m)
	}
	for _, s := range []string{"Coverage before and after", "smtp.domain4.test", "caa-forbids", "regressed", "<style>"} {
		if !strings.Contains(string(h), s) {
			t.Errorf("HTML lacks %q", s)
		}
	}
	// Without an inventory or a probe, everything still renders.
	p.Coverage = nil
	for _, b := range [][]byte{Text(p, nil), Markdown(p, nil), HTML(p, nil)} {
		if len(b) == 0 {
			t.Error("empty rendering")
		}
	}
}

// TestHTMLEscapes: names and reasons come from DNS; they are escaped.
func TestHTMLEscapes(t *testing.T) {
	p := &model.Plan{ID: "x", Excluded: []model.Exclusion{{Name: "a.test", Code: "caa-forbids", Reason: `CAA "<script>alert(1)</script>"`}}}
	h := string(HTML(p, nil))
	if strings.Contains(h, "<script>alert") {
		t.Error("reason not escaped")
	}
	if md := string(Markdown(p, nil)); strings.Contains(md, "<script>") {
		t.Error("markdown not escaped")
	}
}

// TestDefaultCertMode: every rendering says which default-certificate mode
// the plan has, and why its SNI-only names are SNI-only.
func TestDefaultCertMode(t *testing.T) {
	var inv model.Inventory
	if err := model.ReadFile("testdata/inventory.json", model.KindInventory, &inv); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{planner.DefaultCertPerIP, planner.DefaultCertShared} {
		pol := planner.Policy{Hostname: "host.hoster.test", MaxNames: 2, DefaultCert: mode}
		p, err := planner.Plan(&inv, nil, pol, nil, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.SNIOnly) == 0 {
			t.Fatalf("%s: no SNI-only names to explain", mode)
		}
		wantMode, wantWhy := "per-ip (a default certificate per server IP)", "the default certificate of their IP is full"
		if mode == planner.DefaultCertShared {
			wantMode, wantWhy = "shared (one default certificate for every server IP)", "the default certificate shared by all IPs is full"
		}
		for name, b := range map[string][]byte{"text": Text(p, &inv), "markdown": Markdown(p, &inv), "html": HTML(p, &inv)} {
			if !strings.Contains(string(b), wantMode) {
				t.Errorf("%s %s: lacks %q", mode, name, wantMode)
			}
			if !strings.Contains(string(b), wantWhy) {
				t.Errorf("%s %s: lacks %q", mode, name, wantWhy)
			}
		}
	}
}

// TestTextDANE: the text shows each certificate's key decision and the
// names left out for DANE, with the records to publish.
func TestTextDANE(t *testing.T) {
	rec := "_25._tcp.mx.d.test. IN TLSA 3 1 1 " + strings.Repeat("cc", 32)
	p := &model.Plan{Header: model.Header{Kind: model.KindPlan, Version: model.Version},
		Policy: model.PlanPolicy{ServerIPs: []string{"127.0.0.2"}, MaxNames: 100},
		Certificates: []model.PlannedCert{
			{ID: "default-127.0.0.2", Default: true, IPs: []string{"127.0.0.2"}, Names: []string{"mail.e.test"}, Change: "new"},
			{ID: "sni-f.test", IPs: []string{"127.0.0.2"}, Names: []string{"mx.f.test"}, Change: "unchanged",
				Key: model.KeyKeep, KeyReason: "validated TLSA records at _25._tcp.mx.f.test: the current key is kept"}},
		Excluded: []model.Exclusion{{Name: "mx.d.test", Code: model.ExcludeDANEPinned, Reason: "validated TLSA records at _25._tcp.mx.d.test, and they trust no key of default-127.0.0.2: publish " + rec}},
	}
	out := string(Text(p, nil))
	for _, want := range []string{
		"  DANE: 1 name left out, their TLSA records trusting no key of the certificate they would go on (EXCLUDED gives the records to publish): mx.d.test\n",
		"  sni-f.test:\n    mx.f.test\n    key: keep (validated TLSA records at _25._tcp.mx.f.test: the current key is kept)\n",
		"mx.d.test  dane-pinned  validated TLSA records at _25._tcp.mx.d.test, and they trust no key of default-127.0.0.2: publish " + rec + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "default-127.0.0.2:\n    mail.e.test\n    key:") {
		t.Errorf("a key line for a certificate without a key decision:\n%s", out)
	}
}

// TestTextWarningsSummarised: the text report prints five warnings of a
// code and says how many more there are (six print whole); the JSON and
// markdown keep them all.
func TestTextWarningsSummarised(t *testing.T) {
	p := &model.Plan{Header: model.Header{Kind: model.KindPlan, Version: model.Version},
		Policy: model.PlanPolicy{ServerIPs: []string{"127.0.0.2"}, MaxNames: 100}}
	for i := range 300 {
		p.Warnings = append(p.Warnings, model.Warning{Code: model.WarnWildcardName, Name: fmt.Sprintf("*.d%03d.test", i), Message: "replaces two names"})
	}
	for i := range 6 {
		p.Warnings = append(p.Warnings, model.Warning{Code: model.WarnMTASTSTesting, Name: fmt.Sprintf("e%d.test", i), Message: "testing"})
	}
	out := string(Text(p, nil))
	if n := strings.Count(out, "  wildcard-name: *.d"); n != 5 {
		t.Errorf("%d wildcard-name lines, want 5:\n%s", n, out)
	}
	if !strings.Contains(out, "  wildcard-name: ... and 295 more like it (--format json or markdown lists them all)\n") {
		t.Errorf("no summary line:\n%s", out)
	}
	if n := strings.Count(out, "  "+model.WarnMTASTSTesting+": e"); n != 6 || strings.Contains(out, model.WarnMTASTSTesting+": ...") {
		t.Errorf("%d %s lines, want all 6 and no summary:\n%s", n, model.WarnMTASTSTesting, out)
	}
	if md := string(Markdown(p, nil)); strings.Count(md, "`wildcard-name`") != 300 {
		t.Errorf("markdown: %d wildcard-name rows, want 300", strings.Count(md, "`wildcard-name`"))
	}
}
