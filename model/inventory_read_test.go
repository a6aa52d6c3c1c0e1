package model

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
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
		ok := readInventory(p, &got)
		if ok != streams[name] {
			t.Errorf("%s: streamed %v, want %v", name, ok, streams[name])
		}
		if ok && (wantErr != nil || !reflect.DeepEqual(got, want)) {
			t.Errorf("%s: streamed\n%+v\nwant (json.Unmarshal)\n%+v", name, got, want)
		}
	}
}
