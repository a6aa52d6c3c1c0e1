package sources

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Postfix's main.cf, as postconf(5) describes it: a logical line starts
// with non-whitespace text, a line that starts with whitespace continues
// it, and lines whose first non-whitespace character is "#" are ignored
// (even inside a logical line). Values refer to other parameters as $name,
// ${name} or $(name); lists are separated by commas and/or whitespace.
const postfixMainCF = "/etc/postfix/main.cf"

// postfixParams are the parameters naming domains whose mail Postfix
// accepts: local (mydestination), virtual mailbox and alias, and relay.
var postfixParams = []string{"mydestination", "virtual_mailbox_domains", "virtual_alias_domains", "relay_domains"}

// postfixSourceText are the table types whose source text postmap(1)
// reads: "type:/path" is built from /path, one "key value" a line.
var postfixSourceText = map[string]bool{"hash": true, "texthash": true, "lmdb": true, "btree": true, "cdb": true, "dbm": true, "sdbm": true}

// maxExpand bounds the nesting of $name expansion, and maxExpanded the
// length of a value once expanded: "a = $b $b", "b = $c $c", ... would
// otherwise double at each level. Each parameter is expanded once
// (mainCF.expanded), so the work is linear in main.cf.
const (
	maxExpand   = 20
	maxExpanded = 1 << 20
)

// Postfix reads the domains Postfix accepts mail for from main.cf under
// root: mydestination (default "$myhostname, localhost.$mydomain,
// localhost", as postconf(5)), virtual_mailbox_domains,
// virtual_alias_domains and relay_domains (unset: none, as Postfix 3 with
// compatibility_level 2 and later). "localhost" and "localhost.*" are
// dropped. A database table (mysql:, pgsql:, ldap:, ...) or a pattern
// table (regexp:, pcre:, cidr:) cannot be listed: an InputError.
func Postfix(root string) *Result {
	r := &Result{}
	file := under(root, postfixMainCF)
	f := r.openFile(file, false)
	if f == nil {
		return r
	}
	defer f.Close()
	r.postfix(f, file, root)
	return r
}

// postfix reads main.cf from rd (named file) and the files it names under
// root.
func (r *Result) postfix(rd io.Reader, file, root string) {
	cf := r.mainCF(rd, file)
	cf.defaults(root)
	for _, p := range postfixParams {
		val, ok := cf.params[p]
		if !ok {
			if p != "mydestination" {
				continue
			}
			val = "$myhostname, localhost.$mydomain, localhost"
		}
		line := cf.lines[p]
		v, err := cf.expand(val, 0)
		if err != nil {
			r.fail(file, line, fmt.Errorf("%s: %w", p, err))
			continue
		}
		for _, item := range splitPostfixList(v) {
			r.postfixItem(root, item, p, file, line)
		}
	}
}

// mainCF is the parameters of a main.cf, with the line each was set on.
type mainCF struct {
	params map[string]string
	lines  map[string]int
	// expanded caches each parameter's expanded value (or error).
	expanded map[string]expansion
}

type expansion struct {
	val string
	err error
}

// mainCF parses main.cf from rd.
func (r *Result) mainCF(rd io.Reader, file string) *mainCF {
	cf := &mainCF{params: map[string]string{}, lines: map[string]int{}}
	var cur strings.Builder
	start := 0
	flush := func() {
		if start > 0 {
			cf.set(r, file, start, cur.String())
		}
		cur.Reset()
		start = 0
	}
	r.eachLine(rd, file, func(n int, line string) {
		t := strings.TrimSpace(line)
		switch {
		case t == "" || t[0] == '#':
		case line[0] == ' ' || line[0] == '\t':
			if start == 0 {
				r.fail(file, n, errors.New("a continuation line (starting with whitespace) without a parameter before it"))
				return
			}
			cur.WriteString(" " + t)
		default:
			flush()
			start = n
			cur.WriteString(t)
		}
	})
	flush()
	return cf
}

// set records one logical line "name = value"; the last setting wins, as
// in Postfix.
func (cf *mainCF) set(r *Result, file string, line int, s string) {
	name, val, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || !isParamName(name) {
		r.fail(file, line, fmt.Errorf("%q: want \"name = value\"", truncate(s, 80)))
		return
	}
	cf.params[name] = strings.TrimSpace(val)
	cf.lines[name] = line
}

func isParamName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// defaults sets myhostname (from the root's /etc/hostname) and mydomain
// (myhostname less its first label) when main.cf does not, as Postfix
// derives them from the system's host name.
func (cf *mainCF) defaults(root string) {
	if _, ok := cf.params["myhostname"]; !ok {
		if h := firstLine(under(root, "/etc/hostname")); strings.Contains(h, ".") {
			cf.params["myhostname"] = h
		}
	}
	if _, ok := cf.params["mydomain"]; !ok {
		if h, err := cf.expand(cf.params["myhostname"], 0); err == nil {
			if _, d, ok := strings.Cut(h, "."); ok && strings.Contains(d, ".") {
				cf.params["mydomain"] = d
			}
		}
	}
}

// expand replaces $name, ${name} and $(name) by their values, and
// ${name?text} / ${name:text} by text when name is (not) set and not
// empty. A parameter main.cf does not set is an error: its built-in
// default is not known here.
func (cf *mainCF) expand(s string, depth int) (string, error) {
	if depth > maxExpand {
		return "", fmt.Errorf("parameters nest more than %d deep, or refer to each other in a loop", maxExpand)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		name, cond, text, end, err := paramRef(s, i+1)
		if err != nil {
			return "", err
		}
		i = end - 1
		val, set := cf.params[name]
		if cond != 0 {
			if (val != "") == (cond == '?') {
				t, err := cf.expand(text, depth+1)
				if err != nil {
					return "", err
				}
				b.WriteString(t)
			}
			continue
		}
		if !set {
			return "", fmt.Errorf("$%s is not set in main.cf (certplan does not know Postfix's built-in default; set it, or give the domains with --domains)", name)
		}
		v, err := cf.param(name, val, depth)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
		if b.Len() > maxExpanded {
			return "", fmt.Errorf("expands to more than %d bytes", maxExpanded)
		}
	}
	return b.String(), nil
}

// param is the expanded value of parameter name, expanded once.
func (cf *mainCF) param(name, val string, depth int) (string, error) {
	if e, ok := cf.expanded[name]; ok {
		return e.val, e.err
	}
	v, err := cf.expand(val, depth+1)
	if cf.expanded == nil {
		cf.expanded = map[string]expansion{}
	}
	cf.expanded[name] = expansion{v, err}
	return v, err
}

// paramRef parses a reference after "$" at s[i:]: the name, the ${name?x}
// or ${name:x} condition and text, and where the reference ends.
func paramRef(s string, i int) (name string, cond byte, text string, end int, err error) {
	if s[i] == '{' || s[i] == '(' {
		closer := byte('}')
		if s[i] == '(' {
			closer = ')'
		}
		j := strings.IndexByte(s[i:], closer)
		if j < 0 {
			return "", 0, "", 0, fmt.Errorf("%q: unclosed %q", truncate(s[i-1:], 40), s[i])
		}
		inner := s[i+1 : i+j]
		if k := strings.IndexAny(inner, "?:"); k >= 0 {
			name, cond, text = inner[:k], inner[k], strings.Trim(inner[k+1:], "{}")
		} else {
			name = inner
		}
		end = i + j + 1
	} else {
		j := i
		for j < len(s) && (s[j] == '_' || s[j] >= '0' && s[j] <= '9' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
			j++
		}
		name, end = s[i:j], j
	}
	if !isParamName(name) {
		return "", 0, "", 0, fmt.Errorf("%q: not a parameter name", truncate(s[i-1:], 40))
	}
	return name, cond, text, end, nil
}

// splitPostfixList splits a list on commas and whitespace, keeping
// "{...}" (an inline: table) together.
func splitPostfixList(s string) []string {
	var out []string
	depth, start := 0, -1
	for i := 0; i <= len(s); i++ {
		sep := i == len(s) || depth == 0 && (s[i] == ',' || s[i] == ' ' || s[i] == '\t')
		if sep {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		switch s[i] {
		case '{':
			depth++
		case '}':
			if depth > 0 {
				depth--
			}
		}
		if start < 0 {
			start = i
		}
	}
	return out
}

// postfixItem adds one list element of param: a domain, a "/file" of
// domains, or a "type:name" table.
func (r *Result) postfixItem(root, item, param, file string, line int) {
	switch {
	case strings.HasPrefix(item, "/"):
		r.postfixWords(root, item)
	case strings.Contains(item, ":"):
		r.postfixTable(root, item, param, file, line)
	default:
		r.postfixDomain(item, "postfix:"+postfixMainCF, file, line)
	}
}

// postfixDomain adds a domain unless it is localhost.
func (r *Result) postfixDomain(s, source, file string, line int) {
	l := strings.ToLower(strings.TrimSuffix(s, "."))
	if l == "localhost" || strings.HasPrefix(l, "localhost.") {
		return
	}
	r.add(s, source, "", file, line)
}

// postfixWords reads a "/file/name" list: its words are list elements,
// "#" starts a comment.
func (r *Result) postfixWords(root, path string) {
	file := under(root, path)
	f := r.openFile(file, false)
	if f == nil {
		return
	}
	defer f.Close()
	r.eachLine(f, file, func(n int, line string) {
		for _, w := range splitPostfixList(cutComment(line, '#')) {
			r.postfixDomain(w, "postfix:"+path, file, n)
		}
	})
}

// postfixTable adds the keys of a table whose source text can be read,
// and reports one that cannot be listed.
func (r *Result) postfixTable(root, item, param, file string, line int) {
	typ, name, _ := strings.Cut(item, ":")
	if typ == "proxy" {
		// proxy:hash:/x is hash:/x read through proxymap(8).
		typ, name, _ = strings.Cut(name, ":")
	}
	switch {
	case postfixSourceText[typ] && strings.HasPrefix(name, "/"):
		r.postfixKeys(root, name)
	case typ == "inline":
		r.postfixInline(name, file, line)
	default:
		r.fail(file, line, fmt.Errorf("%s: %s: a %s: table cannot be listed from its files: export its domains, one a line, to a file and give it with --domains", param, item, typ))
	}
}

// postfixKeys reads the source text of a lookup table (postmap(1)): the
// first word of each line is a key; a line that starts with whitespace
// continues the one before. Keys with "@" are addresses, not domains
// (a virtual alias table named as a domain list): skipped.
func (r *Result) postfixKeys(root, path string) {
	file := under(root, path)
	f := r.openFile(file, false)
	if f == nil {
		return
	}
	defer f.Close()
	r.readPostfixKeys(f, file, path)
}

// readPostfixKeys reads the keys of a table's source text from rd.
func (r *Result) readPostfixKeys(rd io.Reader, file, path string) {
	r.eachLine(rd, file, func(n int, line string) {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' || line[0] == ' ' || line[0] == '\t' {
			return
		}
		key := strings.Fields(t)[0]
		if strings.Contains(key, "@") {
			return
		}
		r.postfixDomain(key, "postfix:"+path, file, n)
	})
}

// postfixInline adds the keys of "inline:{ key=value, ... }".
func (r *Result) postfixInline(s, file string, line int) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		r.fail(file, line, fmt.Errorf("inline:%s: want inline:{ key=value, ... }", truncate(s, 40)))
		return
	}
	for _, e := range splitPostfixList(s[1 : len(s)-1]) {
		k, _, _ := strings.Cut(strings.Trim(e, "{}"), "=")
		if k = strings.TrimSpace(k); k != "" && !strings.Contains(k, "@") {
			r.postfixDomain(k, "postfix:"+postfixMainCF, file, line)
		}
	}
}

// firstLine returns the first line of a file, trimmed; "" when unreadable.
func firstLine(path string) string {
	r := &Result{}
	f := r.openFile(path, true)
	if f == nil {
		return ""
	}
	defer f.Close()
	var first string
	r.eachLine(f, path, func(n int, line string) {
		if n == 1 {
			first = strings.TrimSpace(line)
		}
	})
	return first
}

// truncate shortens s for a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
