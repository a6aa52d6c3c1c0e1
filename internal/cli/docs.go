package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"

	"github.com/certplan/certplan/model"
)

// readDocument reads the certplan document at path (given with flag, such
// as --inventory) into v, with errors in an admin's words: the flag and the
// file, and what is wrong with it, rather than Go's "cannot unmarshal string
// into Go struct field Inventory.names of type []model.Name".
func readDocument(flag, path, kind string, v any) error {
	return readDocumentWith(flag, path, func() error { return model.ReadFile(path, kind, v) })
}

// readDocumentWith is readDocument with the reading done by read, such as
// model.ReadInventory with hooks.
func readDocumentWith(flag, path string, read func() error) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return withHint(fmt.Errorf("%s %s: is a directory", flag, path), fmt.Sprintf("%s takes the file written by certplan with --format json -o FILE", flag))
	}
	err := read()
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &pe):
		return fmt.Errorf("%s %s: %w", flag, path, pe.Err)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return withHint(fmt.Errorf("%s %s: field %s holds %s where certplan writes %s", flag, path, field, jsonKind(te.Value), goKind(te.Type)),
			"the file is damaged or edited by hand: write it again with certplan")
	case errors.As(err, &se):
		return withHint(fmt.Errorf("%s %s: not valid JSON (at byte %d): %s", flag, path, se.Offset, strings.TrimPrefix(se.Error(), "json: ")),
			"is it the right file? if so, it is damaged or cut short: write it again with certplan")
	case strings.Contains(err.Error(), "is newer than this certplan"):
		return withHint(fmt.Errorf("%s: %w", flag, err), "a newer certplan wrote it: upgrade this one, or write the file again with it")
	}
	return withHint(fmt.Errorf("%s: %w", flag, err), fmt.Sprintf("%s takes the file written by certplan with --format json -o FILE", flag))
}

// jsonKind names a JSON value kind as encoding/json reports it.
func jsonKind(v string) string {
	switch {
	case v == "string":
		return "a string"
	case v == "number" || strings.HasPrefix(v, "number "):
		return "a number"
	case v == "bool":
		return "true or false"
	case v == "array":
		return "a list"
	case v == "object":
		return "an object"
	}
	return v
}

// goKind names what a Go type is in JSON.
func goKind(t reflect.Type) string {
	if t == nil {
		return "another kind of value"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return goKind(t.Elem())
	}
	return "another kind of value"
}
