package model

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"unsafe"
)

// An inventory read a name and a domain at a time is the one
// json.Unmarshal gives, and a document it cannot stream (a syntax error,
// another kind) falls back to ReadFile's whole-file path.
func TestReadInventoryStreamed(t *testing.T) {
	full := Inventory{
		Header:       Header{Kind: KindInventory, Version: Version, GeneratedAt: "2026-12-06T10:00:00Z"},
		CAIdentifier: "letsencrypt.org", ServerIPs: []string{"127.0.0.2"},
		Names: []Name{
			{Name: "mail.d.test", Roles: []string{"mx"}, Domains: []string{"d.test"}, Addresses: []string{"127.0.0.2"}, Here: HereAll, CAAOK: true,
				Sources: []Source{{Domain: "d.test", Role: "mx", Record: "d.test. MX 10 mail.d.test."}}, TLSA: []TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: "ab"}}},
			{Name: "smtp.d.test", Roles: []string{}, Domains: []string{"d.test"}, Here: HereNone, CAA: CAAVerdict{Reason: "x <&>"}},
		},
		Domains:     []Domain{{Domain: "d.test", Names: []string{"mail.d.test"}, MTASTS: &MTASTS{TXT: "v=STSv1; id=1", ID: "1"}}},
		Stats:       InventoryStats{Domains: 1, Names: 2, QueriesByType: map[string]int{"A": 3}},
		InputErrors: []InputError{{File: "f", Line: 2, Message: "bad"}},
	}
	b, _ := json.MarshalIndent(full, "", "  ")
	dir := t.TempDir()
	docs := map[string]string{
		"full":       string(b),
		"empty":      `{"kind":"certplan.inventory","version":1,"names":[],"domains":[]}`,
		"null":       `{"kind":"certplan.inventory","version":1,"names":null}`,
		"upper":      `{"NAMES":[{"name":"a.test"}],"kind":"certplan.inventory","version":1}`,
		"unknown":    `{"kind":"certplan.inventory","version":1,"future":{"x":[1]},"names":[{"name":"a.test","new":1}]}`,
		"wrong kind": `{"kind":"certplan.plan","version":1,"names":[]}`,
		"cut short":  `{"kind":"certplan.inventory","version":1,"names":[{"name":"a.test"}`,
		"two docs":   `{"kind":"certplan.inventory","version":1} {}`,
		"bad type":   `{"kind":"certplan.inventory","version":1,"names":[{"name":5}]}`,
	}
	streams := map[string]bool{"full": true, "empty": true, "null": true, "upper": true, "unknown": true}
	for name, doc := range docs {
		p := filepath.Join(dir, name+".json")
		os.WriteFile(p, []byte(doc), 0o644)
		var want, got Inventory
		wantErr := json.Unmarshal([]byte(doc), &want)
		ok := readInventory(p, &got, nil, nil)
		if ok != streams[name] {
			t.Errorf("%s: streamed %v, want %v", name, ok, streams[name])
		}
		if ok && (wantErr != nil || !reflect.DeepEqual(got, want)) {
			t.Errorf("%s: streamed\n%+v\nwant (json.Unmarshal)\n%+v", name, got, want)
		}
	}
}

// countLists counts the top-level names and domains as json.Unmarshal
// decodes them, whatever their strings and nested lists hold.
func TestCountLists(t *testing.T) {
	docs := []string{
		`{"kind":"certplan.inventory","names":[],"domains":[]}`,
		`{"names":null,"domains":[ ]}`,
		`{"names":[{"name":"a,b]}[{","roles":["x","y"],"caa":{"records":["0 issue \"a,b\"","\\\"],"]}}, {"name":"c"}],"domains":[{"domain":"d","names":["a","b","c"]}]}`,
		`{"server_ips":["1","2"],"stats":{"names":7},"NAMES":[{},{},{}],"Domains":[{"names":[]}],"x":[[1,2],[3]]}`,
		"{\n  \"names\": [\n    {\n      \"name\": \"a\"\n    },\n    {\n      \"name\": \"b\"\n    }\n  ],\n  \"domains\": [\n    {\"domain\": \"x\\\"names\"}\n  ]\n}\n",
	}
	for _, doc := range docs {
		var want Inventory
		if err := json.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		for _, chunk := range []int{1, 3, len(doc)} {
			var sc listCounter
			for b := []byte(doc); len(b) > 0; b = b[min(chunk, len(b)):] {
				sc.scan(b[:min(chunk, len(b))])
			}
			if sc.names != len(want.Names) || sc.domains != len(want.Domains) {
				t.Errorf("%s (read %d bytes at a time): counted %d names, %d domains; want %d, %d", doc, chunk, sc.names, sc.domains, len(want.Names), len(want.Domains))
			}
		}
	}
}

// The streamed read allocates the names and domains once, at their size
// (the counts of countLists): append would leave spare room, and a
// hole in the heap each time it grew.
func TestReadInventorySized(t *testing.T) {
	inv := Inventory{Header: Header{Kind: KindInventory, Version: Version}}
	for i := range 1000 {
		d := "d" + strconv.Itoa(i) + ".test"
		inv.Names = append(inv.Names, Name{Name: "mail." + d, Domains: []string{d}, Roles: []string{RoleMX}, Here: HereAll})
		inv.Domains = append(inv.Domains, Domain{Domain: d, Names: []string{"mail." + d}, Source: "domains:list"})
	}
	b, _ := Marshal(&inv)
	p := filepath.Join(t.TempDir(), "inv.json")
	os.WriteFile(p, b, 0o644)
	var got Inventory
	if err := ReadFile(p, KindInventory, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, inv) {
		t.Fatal("read back differs")
	}
	if cap(got.Names) != len(inv.Names) || cap(got.Domains) != len(inv.Domains) {
		t.Errorf("room for %d names and %d domains, want %d and %d", cap(got.Names), cap(got.Domains), len(inv.Names), len(inv.Domains))
	}
	// The repeated strings share one copy.
	if unsafe.StringData(got.Names[0].Roles[0]) != unsafe.StringData(got.Names[1].Roles[0]) ||
		unsafe.StringData(got.Domains[0].Source) != unsafe.StringData(got.Domains[1].Source) ||
		unsafe.StringData(got.Names[0].Domains[0]) != unsafe.StringData(got.Domains[0].Domain) {
		t.Error("repeated strings are not shared")
	}
}
