package model

import (
	"encoding/json"
	"fmt"
	"os"
)

// ReadFile decodes the document at path into v (a *Inventory, *ProbeReport or
// *Plan) and checks its kind and version. want is the expected Kind* value.
func ReadFile(path, want string, v any) error {
	if inv, ok := v.(*Inventory); ok && want == KindInventory {
		return ReadInventory(path, inv, nil, nil)
	}
	return readWhole(path, want, v)
}

// ReadInventory reads the inventory at path as [ReadFile] does, calling
// name and domain (when not nil) on each name and domain as it is decoded:
// a caller that reads only part of a large inventory drops the rest there
// (see planner.SlimName), before the next is read.
func ReadInventory(path string, inv *Inventory, name func(*Name), domain func(*Domain)) error {
	var streamed Inventory
	if readInventory(path, &streamed, name, domain) {
		*inv = streamed
		return nil
	}
	if err := readWhole(path, KindInventory, inv); err != nil {
		return err
	}
	for i := range inv.Names {
		if name != nil {
			name(&inv.Names[i])
		}
	}
	for i := range inv.Domains {
		if domain != nil {
			domain(&inv.Domains[i])
		}
	}
	return nil
}

// readWhole decodes the whole file at once; its errors say where a
// document is wrong.
func readWhole(path, want string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var h Header
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("%s: not a certplan document: %w", path, err)
	}
	if err := checkHeader(path, want, h); err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Marshal encodes v as indented JSON with a trailing newline.
func Marshal(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
