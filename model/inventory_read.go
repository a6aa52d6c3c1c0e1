package model

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// readInventory decodes the inventory at path a name and a domain at a
// time: a large host's inventory is hundreds of megabytes of JSON, and
// reading it whole (the file's bytes beside the decoded inventory) would
// double what `plan --inventory` holds. Any error sends the caller back to
// the whole-file path, whose messages (the kind, the byte of a syntax
// error, the field of a type error) stay those of [ReadFile].
func readInventory(path string, inv *Inventory) (ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(f, 256<<10))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	var names []Name
	var domains []Domain
	// The other fields are small: kept raw, then decoded together as
	// json.Unmarshal would decode them.
	rest := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		key, isKey := t.(string)
		if err != nil || !isKey {
			return false
		}
		switch {
		case strings.EqualFold(key, "names"):
			if names, ok = decodeList[Name](dec); !ok {
				return false
			}
		case strings.EqualFold(key, "domains"):
			if domains, ok = decodeList[Domain](dec); !ok {
				return false
			}
		default:
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return false
			}
			rest[key] = raw
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return false
	}
	if _, err := dec.Token(); err == nil {
		return false // more after the document: let ReadFile say what
	}
	shell, err := json.Marshal(rest)
	if err != nil || json.Unmarshal(shell, inv) != nil || checkHeader(path, KindInventory, inv.Header) != nil {
		return false
	}
	inv.Names, inv.Domains = names, domains
	return true
}

// decodeList decodes a JSON array (or null) element by element.
func decodeList[T any](dec *json.Decoder) ([]T, bool) {
	t, err := dec.Token()
	if err != nil {
		return nil, false
	}
	if t == nil {
		return nil, true
	}
	if t != json.Delim('[') {
		return nil, false
	}
	list := []T{}
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		list = append(list, v)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim(']') {
		return nil, false
	}
	return list, true
}

// checkHeader checks a document's kind and version.
func checkHeader(path, want string, h Header) error {
	if h.Kind != want {
		if h.Kind == "" {
			return fmt.Errorf("%s: not a certplan document (no \"kind\"); want %s", path, want)
		}
		return fmt.Errorf("%s: is a %s document, want %s", path, h.Kind, want)
	}
	if h.Version > Version {
		return fmt.Errorf("%s: %s version %d is newer than this certplan understands (%d)", path, h.Kind, h.Version, Version)
	}
	return nil
}
