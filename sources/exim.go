package sources

import (
	"fmt"
	"io"
	"strings"
)

// Debian's Exim keeps its settings in update-exim4.conf.conf, shell
// assignments such as dc_other_hostnames='example.com:example.net'.
// dc_other_hostnames are the domains delivered here besides the host's own
// name, dc_relay_domains those relayed (this server as backup MX or
// gateway). Each is an Exim domain list (Exim's spec, "Domain, host, address
// and local part lists"): items separated by ":" (or by the character
// after a leading "<"), "/file" for a file of one item a line,
// "lsearch;/file" for a file's keys, "@" for the local host, "*" and "^"
// patterns, "!" negation.
const eximConf = "/etc/exim4/update-exim4.conf.conf"

// eximParams are the settings naming domains whose mail Exim accepts.
var eximParams = []string{"dc_other_hostnames", "dc_relay_domains"}

// Exim reads the domains of Debian's Exim configuration under root:
// dc_other_hostnames and dc_relay_domains, and the domain list files and
// lsearch files they name. Patterns, negations, named lists and database
// lookups cannot be listed: InputErrors.
func Exim(root string) *Result {
	r := &Result{}
	file := under(root, eximConf)
	f := r.openFile(file, false)
	if f == nil {
		return r
	}
	defer f.Close()
	r.exim(f, file, root)
	return r
}

// exim reads update-exim4.conf.conf from rd (named file) and the files it
// names under root.
func (r *Result) exim(rd io.Reader, file, root string) {
	r.eachLine(rd, file, func(n int, line string) {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			return
		}
		key, val, ok := strings.Cut(t, "=")
		if !ok || !isParamName(key) {
			r.fail(file, n, fmt.Errorf("%q: want name='value'", truncate(t, 80)))
			return
		}
		if !contains(eximParams, key) {
			return
		}
		val, ok = unquote(val)
		if !ok {
			r.fail(file, n, fmt.Errorf("%s: unbalanced quotes", key))
			return
		}
		for _, item := range splitEximList(val) {
			r.eximItem(root, item, key, file, n)
		}
	})
}

// unquote removes one pair of shell quotes around s.
func unquote(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", true
	}
	if q := s[0]; q == '\'' || q == '"' {
		if len(s) < 2 || s[len(s)-1] != q || strings.IndexByte(s[1:len(s)-1], q) >= 0 {
			return "", false
		}
		return s[1 : len(s)-1], true
	}
	if strings.ContainsAny(s, `'"`) {
		return "", false
	}
	return s, true
}

// splitEximList splits an Exim list on ":" or on the separator a leading
// "<" names; "::" is a literal colon (never in a domain), items are
// trimmed, empty ones dropped.
func splitEximList(s string) []string {
	s = strings.TrimSpace(s)
	sep := ":"
	if len(s) >= 2 && s[0] == '<' && !isSpace(s[1]) {
		sep, s = s[1:2], s[2:]
	}
	var out []string
	for _, item := range strings.Split(s, sep) {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// eximItem adds one item of a domain list.
func (r *Result) eximItem(root, item, key, file string, line int) {
	source := "exim:" + eximConf
	switch {
	case item == "@" || item == "@[]" || strings.EqualFold(item, "localhost"):
		// The host's own name and IP literals: not hosted domains.
	case strings.HasPrefix(item, "/"):
		r.listFile(root, item, "exim", false)
	case strings.HasPrefix(item, "!"), strings.HasPrefix(item, "+"), strings.HasPrefix(item, "^"), strings.Contains(item, "*") && !strings.Contains(item, ";"):
		r.fail(file, line, fmt.Errorf("%s: %q is a pattern, negation or named list, which cannot be listed: give its domains with --domains", key, item))
	case strings.Contains(item, ";"):
		r.eximLookup(root, item, key, file, line)
	default:
		r.add(item, source, "", file, line)
	}
}

// eximLookup adds the keys of an lsearch file ("lsearch;/path"); other
// lookups cannot be listed.
func (r *Result) eximLookup(root, item, key, file string, line int) {
	typ, path, _ := strings.Cut(item, ";")
	typ = strings.TrimSuffix(strings.TrimSuffix(typ, "*@"), "*")
	path = strings.TrimSpace(path)
	if typ != "lsearch" || !strings.HasPrefix(path, "/") {
		r.fail(file, line, fmt.Errorf("%s: %q: a %s lookup cannot be listed from its files: export its domains, one a line, to a file and give it with --domains", key, item, typ))
		return
	}
	lf := under(root, path)
	f := r.openFile(lf, false)
	if f == nil {
		return
	}
	defer f.Close()
	r.eachLine(f, lf, func(n int, l string) {
		t := strings.TrimSpace(l)
		if t == "" || t[0] == '#' || isSpace(l[0]) {
			return // blank, comment, continuation
		}
		// An lsearch key ends at a colon or whitespace.
		k := strings.Fields(t)[0]
		k, _, _ = strings.Cut(k, ":")
		r.add(strings.Trim(k, `"`), "exim:"+path, "", lf, n)
	})
}
