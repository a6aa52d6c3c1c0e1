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
		var streamed Inventory
		if readInventory(path, &streamed) {
			*inv = streamed
			return nil
		}
	}
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
