package dnscheck

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o644) }

func TestReadDomains(t *testing.T) {
	in := "# hosted domains\n\nExample.TEST.\n  bücher.test  # an IDN\nexample.test\n\t\nb.test\n"
	got, err := ReadDomains(strings.NewReader(in), "domains.txt")
	want := []string{"b.test", "example.test", "xn--bcher-kva.test"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}

	_, err = ReadDomains(strings.NewReader("ok.test\nbad_name.test\n\ntwo words.test\n*.wild.test\n"), "list")
	var le *LineError
	if !errors.As(err, &le) || le.File != "list" || le.Line != 2 {
		t.Fatalf("err %v, want a LineError at list:2", err)
	}
	for _, want := range []string{`list:2: "bad_name.test": underscore`, `list:4: "two words.test": want one domain a line`, `list:5: "*.wild.test": a wildcard`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	// A byte-order mark and CRLF line ends, as Windows editors write, even
	// when the first line is a comment.
	for _, in := range []string{"\ufeff# hosted\r\nb.test\r\n", "\ufeffb.test\r\n"} {
		got, err = ReadDomains(strings.NewReader(in), "bom.txt")
		if err != nil || !reflect.DeepEqual(got, []string{"b.test"}) {
			t.Errorf("%q: got %v, %v; want [b.test]", in, got, err)
		}
	}

	got, err = ReadDomains(strings.NewReader("# nothing\n"), "-")
	if err != nil || len(got) != 0 {
		t.Errorf("empty list: %v %v", got, err)
	}

	_, err = ReadDomains(strings.NewReader("a.test\n"+strings.Repeat("x", maxLine+1)+"\n"), "big")
	if err == nil || !strings.Contains(err.Error(), "big:2: line longer than") {
		t.Errorf("long line: %v", err)
	}

	_, err = ReadDomains(strings.NewReader(strings.Repeat("bad_\n", 30)), "many")
	if err == nil || strings.Count(err.Error(), "\n") != maxListErrors || !strings.Contains(err.Error(), "too many errors") {
		t.Errorf("many errors: %v", err)
	}
}

func TestZoneDirDomains(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"example.test.db":       "$TTL 300\n@ IN SOA ns.example.test. h.example.test. 1 2 3 4 5\n$ORIGIN sub.example.test.\nx IN A 127.0.0.2\n",
		"origin.db":             "; a comment\n$TTL 300\n$ORIGIN Other.TEST.\n@ IN SOA ns h 1 2 3 4 5\n",
		"b.test.zone":           "@ IN A 127.0.0.2\n",
		"xn--bcher-kva.test.db": "",
		"named.ca":              ". IN NS a.root-servers.net.\n",
		"c.test.db.jnl":         "binary",
		"c.test.db.bak":         "old",
		".hidden.test.db":       "",
		// Zones a name server keeps for itself: skipped, not errors.
		"localhost.zone":            "$TTL 86400\n@ IN SOA @ root 1 2 3 4 5\n",
		"localdomain.zone":          "",
		"0.0.127.in-addr.arpa.zone": "",
		"root.db":                   "$ORIGIN .\n. IN NS a.root-servers.net.\n",
		"reverse.db":                "$ORIGIN 2.0.192.IN-ADDR.ARPA.\n",
		"0.0.10.zone":               "",
	}
	for n, text := range files {
		if err := writeFile(filepath.Join(dir, n), text); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.test.db"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A zone file linked from elsewhere counts; a dangling link does not.
	elsewhere := t.TempDir()
	if err := writeFile(filepath.Join(elsewhere, "linked.test.db"), "@ IN A 127.0.0.2\n"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "linked.test.db"), filepath.Join(dir, "linked.test.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "gone.test.db"), filepath.Join(dir, "gone.test.db")); err != nil {
		t.Fatal(err)
	}
	got, err := ZoneDirDomains(dir)
	want := []string{"b.test", "example.test", "linked.test", "other.test", "xn--bcher-kva.test"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}

	if err := writeFile(filepath.Join(dir, "bad.db"), "$ORIGIN bad_origin.test.\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := ZoneDirDomains(dir); err == nil || !strings.Contains(err.Error(), "bad.db:1: $ORIGIN \"bad_origin.test.\": underscore") {
		t.Errorf("bad origin: %v", err)
	}
	os.Remove(filepath.Join(dir, "bad.db"))
	if err := writeFile(filepath.Join(dir, "bad_name.db"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ZoneDirDomains(dir); err == nil || !strings.Contains(err.Error(), "bad_name.db: origin from the file name") {
		t.Errorf("bad file name: %v", err)
	}
	os.Remove(filepath.Join(dir, "bad_name.db"))
	// A file that is not text (no line end in 64 KiB) is named as such.
	if err := writeFile(filepath.Join(dir, "binary.db"), strings.Repeat("x", maxLine+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := ZoneDirDomains(dir); err == nil || !strings.Contains(err.Error(), "binary.db:1: line longer than 65536 bytes: not a BIND zone file") || strings.Contains(err.Error(), "bufio") {
		t.Errorf("binary file: %v", err)
	}
	if _, err := ZoneDirDomains(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing dir: no error")
	}
}
