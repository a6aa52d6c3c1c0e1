package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/report"
)

//	go test -run XXX -fuzz FuzzDocuments -fuzztime 150s -parallel 1 ./internal/cli/

// fuzzNow is the clock of the plans FuzzDocuments makes.
var fuzzNow = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// FuzzDocuments reads three files as the documents of --inventory, --probe
// and --previous (or --plan), as plan and issue do, then plans and renders
// what they accept. A document is accepted or refused with an error naming
// its flag; an accepted one, written again, reads back and writes the same
// bytes (nothing is lost or made up by a round trip); whatever they hold,
// the planner and the reports do not panic, and the plan they give is a
// --plan document that reads back.
func FuzzDocuments(f *testing.F) {
	inv, err := os.ReadFile("../../report/testdata/inventory.json")
	if err != nil {
		f.Fatal(err)
	}
	probe, err := os.ReadFile("../../report/testdata/probe.json")
	if err != nil {
		f.Fatal(err)
	}
	plan := []byte(`{"kind":"certplan.plan","version":1}`)
	var i model.Inventory
	var pr model.ProbeReport
	if json.Unmarshal(inv, &i) == nil && json.Unmarshal(probe, &pr) == nil {
		if p, err := planner.Plan(&i, &pr, planner.Policy{Hostname: "server.main-domain.test"}, nil, fuzzNow); err == nil {
			plan, _ = model.Marshal(p)
		}
	}
	f.Add(inv, probe, plan)
	f.Add(inv, []byte(nil), []byte(nil))
	// The scripts' documents, each in its kind's place.
	for _, d := range scriptFiles(f, func(n string) bool { return strings.HasSuffix(n, ".json") }) {
		switch {
		case bytes.Contains(d, []byte(model.KindInventory)):
			f.Add(d, probe, plan)
		case bytes.Contains(d, []byte(model.KindProbe)):
			f.Add(inv, d, plan)
		default:
			f.Add(inv, probe, d)
		}
	}
	dir := fuzzTempDir(f)
	f.Fuzz(func(t *testing.T, invData, probeData, planData []byte) {
		var inv model.Inventory
		var pr model.ProbeReport
		var prev model.Plan
		invOK := roundTrip(t, dir, "--inventory", model.KindInventory, invData, &inv, &model.Inventory{})
		probeOK := len(probeData) > 0 && roundTrip(t, dir, "--probe", model.KindProbe, probeData, &pr, &model.ProbeReport{})
		prevOK := len(planData) > 0 && roundTrip(t, dir, "--previous", model.KindPlan, planData, &prev, &model.Plan{})
		if !invOK {
			return
		}
		var prp *model.ProbeReport
		if probeOK {
			prp = &pr
		}
		var prevp *model.Plan
		if prevOK {
			prevp = &prev
		}
		p, err := planner.Plan(&inv, prp, planner.Policy{Hostname: "server.main-domain.test"}, prevp, fuzzNow)
		if err != nil {
			return
		}
		report.Text(p, &inv)
		report.Markdown(p, &inv)
		report.HTML(p, &inv)
		b, err := model.Marshal(p)
		if err != nil {
			t.Fatalf("the plan does not marshal: %v", err)
		}
		roundTrip(t, dir, "--plan", model.KindPlan, b, &model.Plan{}, &model.Plan{})
	})
}

// roundTrip reads data as flag's document of kind into v, as the command
// line does, and reports whether it was accepted. An accepted document is
// written with model.Marshal, read again into fresh and written again: the
// two writings are the same bytes.
func roundTrip(t *testing.T, dir, flag, kind string, data []byte, v, fresh any) bool {
	t.Helper()
	path := filepath.Join(dir, strings.TrimPrefix(flag, "--")+".json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := readDocument(flag, path, kind, v); err != nil {
		if !strings.HasPrefix(err.Error(), flag+" ") && !strings.HasPrefix(err.Error(), flag+": ") {
			t.Fatalf("error %q does not start with %s", err, flag)
		}
		return false
	}
	b1, err := model.Marshal(v)
	if err != nil {
		t.Fatalf("%s: accepted, does not marshal: %v", flag, err)
	}
	if err := os.WriteFile(path, b1, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := readDocument(flag, path, kind, fresh); err != nil {
		t.Fatalf("%s: accepted, written again, refused: %v\n%s", flag, err, b1)
	}
	b2, err := model.Marshal(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("%s: written again differently:\n%s\n---\n%s", flag, b1, b2)
	}
	return true
}
