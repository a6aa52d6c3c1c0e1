package model

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// readInventory decodes the inventory at path a name and a domain at a
// time: a large host's inventory is hundreds of megabytes of JSON, and
// reading it whole (the file's bytes beside the decoded inventory) would
// double what `plan --inventory` holds. Any error sends the caller back to
// the whole-file path, whose messages (the kind, the byte of a syntax
// error, the field of a type error) stay those of [ReadFile]. name and
// domain, when not nil, see each name and domain as it is decoded.
//
// The names and domains are counted first (countLists), so that each list
// is allocated once at its size: grown by append, the names of 100,000
// domains (70 MB of [Name]s) left each smaller copy behind as a hole
// that the next could not fit in, some 60 MiB of peak RSS.
func readInventory(path string, inv *Inventory, name func(*Name), domain func(*Domain)) (ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	nNames, nDomains, err := countLists(f)
	if err != nil {
		return false
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false
	}
	dec := json.NewDecoder(bufio.NewReaderSize(f, 256<<10))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	in := interner{}
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
			names, ok = decodeList(dec, nNames, hooked(name, in.name))
		case strings.EqualFold(key, "domains"):
			domains, ok = decodeList(dec, nDomains, hooked(domain, in.domain))
		default:
			var raw json.RawMessage
			ok = dec.Decode(&raw) == nil
			rest[key] = raw
		}
		if !ok {
			return false
		}
	}
	if !endOfDocument(dec) || !decodeRest(path, rest, inv) {
		return false
	}
	inv.Names, inv.Domains = names, domains
	return true
}

// endOfDocument reads the closing brace and reports whether nothing
// follows it (more after the document: let ReadFile say what).
func endOfDocument(dec *json.Decoder) bool {
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return false
	}
	_, err := dec.Token()
	return err == io.EOF
}

// decodeRest decodes the inventory's small fields, kept raw, into inv and
// checks its kind and version.
func decodeRest(path string, rest map[string]json.RawMessage, inv *Inventory) bool {
	shell, err := json.Marshal(rest)
	return err == nil && json.Unmarshal(shell, inv) == nil && checkHeader(path, KindInventory, inv.Header) == nil
}

// hooked calls the caller's hook (when not nil), then shrink.
func hooked[T any](hook, shrink func(*T)) func(*T) {
	if hook == nil {
		return shrink
	}
	return func(v *T) {
		hook(v)
		shrink(v)
	}
}

// decodeList decodes a JSON array (or null) element by element, passing
// each to shrink; size is how many elements to make room for.
func decodeList[T any](dec *json.Decoder, size int, shrink func(*T)) ([]T, bool) {
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
	list := make([]T, 0, size)
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		shrink(&v)
		list = append(list, v)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim(']') {
		return nil, false
	}
	return list, true
}

// countLists counts the elements of the top-level "names" and "domains"
// arrays of the JSON document r, without decoding them: a scan of its
// bytes for commas at depth two, about a tenth of the decoding's time.
// The counts only size the lists (an odd document, such as one whose keys
// are escaped, gives counts that are merely wrong).
func countLists(r io.Reader) (names, domains int, err error) {
	var sc listCounter
	buf := make([]byte, 256<<10)
	for {
		n, err := r.Read(buf)
		sc.scan(buf[:n])
		if err == io.EOF {
			return sc.names, sc.domains, nil
		}
		if err != nil {
			return 0, 0, err
		}
	}
}

// listCounter is countLists' state between reads.
type listCounter struct {
	depth          int
	inString, esc  bool
	key            []byte // the last string at depth one: a key, when an array follows
	count          *int   // the array being counted, at depth two
	empty          bool   // no element yet in it
	names, domains int
}

func (sc *listCounter) scan(b []byte) {
	for _, c := range b {
		if sc.inString {
			sc.stringByte(c)
			continue
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			continue
		}
		if sc.depth == 2 && sc.count != nil {
			// The first element, then one more after each comma.
			if c == ',' || sc.empty && c != ']' {
				*sc.count++
			}
			sc.empty = false
		}
		switch c {
		case '"':
			sc.inString = true
			if sc.depth == 1 {
				sc.key = sc.key[:0]
			}
		case '{', '[':
			sc.depth++
			if sc.depth == 2 {
				sc.startList(c == '[')
			}
		case '}', ']':
			sc.depth--
		}
	}
}

// stringByte reads a byte inside a string, keeping those of a key.
func (sc *listCounter) stringByte(c byte) {
	switch {
	case sc.esc:
		sc.esc = false
	case c == '\\':
		sc.esc = true
	case c == '"':
		sc.inString = false
	case sc.depth == 1:
		sc.key = append(sc.key, c)
	}
}

// startList starts counting the value just opened at depth two, when it
// is an array and its key is "names" or "domains".
func (sc *listCounter) startList(array bool) {
	sc.count, sc.empty = nil, true
	switch {
	case !array:
	case strings.EqualFold(string(sc.key), "names"):
		sc.count = &sc.names
	case strings.EqualFold(string(sc.key), "domains"):
		sc.count = &sc.domains
	}
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

// interner makes the strings that repeat across an inventory's names and
// domains share one copy: the JSON decoder allocates every string it
// reads, and in a host's inventory most of them are the same few roles,
// server IPs, CAA reasons and domain sources, or a hosted domain's name
// repeated in each of its names' domains and sources. At 100,000 domains
// that was a quarter of the decoded inventory's strings. A name itself
// occurs once among the names and is not kept here (its copy in its
// domain's Names is not worth a map entry).
type interner map[string]string

func (t interner) str(p *string) {
	if *p == "" {
		return
	}
	if s, ok := t[*p]; ok {
		*p = s
		return
	}
	t[*p] = *p
}

func (t interner) strs(l []string) {
	for i := range l {
		t.str(&l[i])
	}
}

func (t interner) name(n *Name) {
	t.strs(n.Roles)
	t.strs(n.Domains)
	for i := range n.Sources {
		s := &n.Sources[i]
		t.str(&s.Domain)
		t.str(&s.Role)
		if s.Record == "exists" {
			s.Record = "exists"
		}
	}
	t.strs(n.Addresses)
	t.str(&n.Here)
	t.caa(&n.CAA)
	if n.CAAWild != nil {
		t.caa(n.CAAWild)
	}
	t.str(&n.TLSADNSSEC)
	t.str(&n.Error)
}

func (t interner) caa(v *CAAVerdict) {
	t.str(&v.At)
	t.strs(v.Records)
	t.str(&v.Reason)
	t.str(&v.Error)
}

func (t interner) domain(d *Domain) {
	t.str(&d.Domain)
	t.str(&d.Source)
	t.strs(d.AlsoIn)
	t.str(&d.Owner)
}
