package cli

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certplan/certplan/dnscheck"
	"github.com/certplan/certplan/internal/dnstest"
	"github.com/certplan/certplan/model"
)

// labInventory inventories the lab's zones (examples/lab) from a dnstest
// server, broken domains and all.
func labInventory(t *testing.T) *model.Inventory {
	t.Helper()
	addr, domains := labDNS(t)
	r, err := dnscheck.NewResolver(dnscheck.Config{Servers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ips := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	inv, err := r.Inventory(context.Background(), domains, dnscheck.Options{ServerIPs: ips})
	if err != nil {
		t.Fatal(err)
	}
	inv.InputErrors = []model.InputError{{File: "domains.txt", Line: 3, Message: "not a domain: <a&b>"}}
	return inv
}

// labDNS serves the lab's zones and returns the server's address and the
// hosted domains.
func labDNS(t *testing.T) (string, []string) {
	t.Helper()
	s, domains := dnstest.StartLab(t)
	return s.Addr(), domains
}

// The inventory streamed to its output is byte for byte model.Marshal's
// document, for the lab and for the edge cases of the two lists.
func TestInventoryJSONStreamed(t *testing.T) {
	lab := labInventory(t)
	if len(lab.Names) < 20 || len(lab.Domains) < 40 {
		t.Fatalf("lab inventory: %d names, %d domains", len(lab.Names), len(lab.Domains))
	}
	empty := &model.Inventory{Header: lab.Header, Names: []model.Name{}, Domains: []model.Domain{}, ServerIPs: []string{}}
	oneEach := *lab
	oneEach.Names, oneEach.Domains = lab.Names[:1], lab.Domains[:1]
	for name, inv := range map[string]*model.Inventory{"lab": lab, "empty": empty, "one each": &oneEach} {
		want, err := model.Marshal(inv)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := writeInventoryJSON(&got, inv); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			i := 0
			for i < min(got.Len(), len(want)) && got.Bytes()[i] == want[i] {
				i++
			}
			t.Errorf("%s: streamed JSON differs from model.Marshal at byte %d of %d: got %q, want %q",
				name, i, len(want), got.Bytes()[max(0, i-40):min(got.Len(), i+40)], want[max(0, i-40):min(len(want), i+40)])
		}
	}
}

// certplan inventory --format json from DNS (through a Spill) writes what
// the in-memory path writes for the same inventory read back with
// --inventory, and --format jsonl read back with --inventory gives the
// same document again; plan --inventory plans the same from both.
func TestInventoryCommandFormats(t *testing.T) {
	addr, domains := labDNS(t)
	dir := t.TempDir()
	list := filepath.Join(dir, "domains.txt")
	os.WriteFile(list, []byte(strings.Join(domains, "\n")+"\n# a comment\nnot a domain!\n"), 0o644)
	env := func(k string) string {
		if k == "CERTPLAN_NOW" {
			return "2026-12-06T10:00:00Z"
		}
		return ""
	}
	run := func(want int, args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := Run(context.Background(), args, strings.NewReader(""), &out, &errb, env); code != want {
			t.Fatalf("certplan %s: exit %d, want %d: %s", strings.Join(args, " "), code, want, errb.String())
		}
	}
	path := func(n string) string { return filepath.Join(dir, n) }
	dns := []string{"--resolver", addr, "--server-ip", "127.0.0.2", "--server-ip", "127.0.0.3", "--domains", list}
	run(ExitPartial, append([]string{"inventory", "--format", "json", "-o", path("spilled.json")}, dns...)...)
	run(ExitPartial, append([]string{"inventory", "--format", "jsonl", "-o", path("inv.jsonl")}, dns...)...)
	run(ExitPartial, "inventory", "--inventory", path("spilled.json"), "--format", "json", "-o", path("again.json"))
	run(ExitPartial, "inventory", "--inventory", path("inv.jsonl"), "--format", "json", "-o", path("fromjsonl.json"))
	spilled, _ := os.ReadFile(path("spilled.json"))
	if !bytes.Contains(spilled, []byte(`"name": "mail.domain2.test"`)) || !bytes.Contains(spilled, []byte(`"input_errors"`)) {
		t.Fatalf("spilled.json lacks the lab's names or the input error:\n%.2000s", spilled)
	}
	for _, f := range []string{"again.json", "fromjsonl.json"} {
		b, _ := os.ReadFile(path(f))
		if !bytes.Equal(b, spilled) {
			t.Errorf("%s differs from the inventory written through the spill file", f)
		}
	}
	for _, f := range []string{"spilled.json", "inv.jsonl"} {
		run(ExitPartial, "plan", "--inventory", path(f), "--no-probe", "--format", "json", "-o", path(f+".plan"))
	}
	a, _ := os.ReadFile(path("spilled.json.plan"))
	b, _ := os.ReadFile(path("inv.jsonl.plan"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("plan --inventory of the JSON Lines differs from that of the JSON document")
	}
	jl, _ := os.ReadFile(path("inv.jsonl"))
	lines := bytes.Split(bytes.TrimSpace(jl), []byte("\n"))
	if len(lines) != len(domains)+2 || !bytes.HasPrefix(lines[0], []byte(`{"kind":"certplan.inventory"`)) || !bytes.HasPrefix(lines[len(lines)-1], []byte(`{"end":`)) {
		t.Errorf("inv.jsonl: %d lines (want %d: header, a domain each, end); first %q", len(lines), len(domains)+2, lines[0])
	}
	// Cut short: the end line is missing.
	os.WriteFile(path("cut.jsonl"), bytes.Join(lines[:len(lines)-1], []byte("\n")), 0o644)
	var errb bytes.Buffer
	if code := Run(context.Background(), []string{"plan", "--inventory", path("cut.jsonl"), "--no-probe"}, strings.NewReader(""), io.Discard, &errb, env); code != ExitFailure || !strings.Contains(errb.String(), "cut short") {
		t.Errorf("cut-short JSON Lines: exit %d, %s", code, errb.String())
	}
}
