package sources

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// summary is a Result as compared in tests: "name source owner" lines,
// errors as "file:line: text" relative to the root, skipped domains.
type summary struct {
	Domains []string
	Errors  []string
	Skipped []string
}

func summarize(r *Result, root string) summary {
	var s summary
	for _, d := range r.Domains {
		s.Domains = append(s.Domains, strings.TrimSpace(d.Name+" "+d.Source+" "+d.Owner))
	}
	for _, e := range r.Errors {
		s.Errors = append(s.Errors, strings.TrimPrefix(e.Error(), root))
	}
	for _, k := range r.Skipped {
		s.Skipped = append(s.Skipped, k.Domain+" "+k.Source)
	}
	return s
}

func fixture(kind string) string { return filepath.Join("testdata", kind, "root") }

func TestSourcesFixtures(t *testing.T) {
	tests := []struct {
		kind string
		want summary
	}{
		{"cpanel", summary{
			Domains: []string{
				"domain2.test cpanel:/etc/userdomains user2", "addon.test cpanel:/etc/userdomains user2",
				"addon.domain2.test cpanel:/etc/userdomains user2", "parked.test cpanel:/etc/userdomains user2",
				"client1.test cpanel:/etc/userdomains user1",
				"domain2.test cpanel:/etc/localdomains", "addon.test cpanel:/etc/localdomains",
				"addon.domain2.test cpanel:/etc/localdomains", "parked.test cpanel:/etc/localdomains",
				"client1.test cpanel:/etc/localdomains", "backup.test cpanel:/etc/secondarymx",
			},
			Errors: []string{
				`/etc/userdomains:7: "bad domain.test": character ' ' is not allowed in a host name`,
				`/etc/userdomains:8: "no-colon-here.test": want "domain: user"`,
				`/var/cpanel/userdata/user1/remote.test:6: not cPanel userdata YAML: line 6: mapping values are not allowed in this context`,
			},
			Skipped: []string{"remote.test cpanel:/etc/remotedomains"},
		}},
		{"directadmin", summary{
			Domains: []string{"da1.test directadmin:/etc/virtual/domains", "da2.test directadmin:/etc/virtual/domains", "xn--bcher-kva.test directadmin:/etc/virtual/domains"},
			Errors: []string{
				`/etc/virtual/domains:5: "bad_name.test": underscore is not allowed in a host name`,
				`/etc/virtual/domains:6: "da3.test extra": want one domain a line`,
			},
		}},
		{"postfix", summary{
			Domains: []string{
				"server.host.test postfix:/etc/postfix/main.cf", "local1.test postfix:/etc/postfix/main.cf",
				"local2.test postfix:/etc/postfix/local-domains", "local3.test postfix:/etc/postfix/local-domains",
				"local4.test postfix:/etc/postfix/local-domains",
				"vbox1.test postfix:/etc/postfix/vmailbox_domains", "vbox2.test postfix:/etc/postfix/vmailbox_domains",
				"alias1.test postfix:/etc/postfix/valias_domains", "relay1.test postfix:/etc/postfix/relay_domains",
			},
			Errors: []string{
				`/etc/postfix/main.cf:16: "this line is not a parameter": want "name = value"`,
				`/etc/postfix/local-domains:3: "bad..name.test": empty label (two dots in a row, or a leading dot)`,
				`/etc/postfix/vmailbox_domains:6: "bad_key.test": underscore is not allowed in a host name`,
				`/etc/postfix/main.cf:13: virtual_alias_domains: proxy:mysql:/etc/postfix/mysql-domains.cf: a mysql: table cannot be listed from its files: export its domains, one a line, to a file and give it with --domains`,
			},
		}},
		{"exim", summary{
			Domains: []string{
				"exim1.test exim:/etc/exim4/update-exim4.conf.conf", "exim2.test exim:/etc/exim4/update-exim4.conf.conf",
				"hosted1.test exim:/etc/exim4/hosted-domains", "hosted2.test exim:/etc/exim4/hosted-domains",
				"relay.test exim:/etc/exim4/update-exim4.conf.conf",
				"relay2.test exim:/etc/exim4/relay-domains", "relay3.test exim:/etc/exim4/relay-domains",
			},
			Errors: []string{
				`/etc/exim4/hosted-domains:4: "not a domain": want one domain a line`,
				`/etc/exim4/update-exim4.conf.conf:6: dc_other_hostnames: "*.wild.test" is a pattern, negation or named list, which cannot be listed: give its domains with --domains`,
				`/etc/exim4/update-exim4.conf.conf:18: "broken line without equals": want name='value'`,
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			root := fixture(tt.kind)
			r, err := Read(tt.kind, root)
			if err != nil {
				t.Fatal(err)
			}
			got := summarize(r, root)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestCpanelWebroots(t *testing.T) {
	r := Cpanel(fixture("cpanel"))
	want := map[string]string{
		"domain2.test": "/home/user2/public_html", "www.domain2.test": "/home/user2/public_html",
		"mail.domain2.test": "/home/user2/public_html", "parked.test": "/home/user2/public_html",
		"www.parked.test": "/home/user2/public_html", "mail.parked.test": "/home/user2/public_html",
		"addon.domain2.test": "/home/user2/addon.test", "addon.test": "/home/user2/addon.test",
		"www.addon.test": "/home/user2/addon.test", "mail.addon.test": "/home/user2/addon.test",
		"client1.test": "/home/user1/public_html", "www.client1.test": "/home/user1/public_html",
		"mail.client1.test": "/home/user1/public_html",
	}
	if !reflect.DeepEqual(r.Webroots, want) {
		t.Errorf("webroots: got %v, want %v", r.Webroots, want)
	}
	// The uids are the fixture's /etc/passwd's, not the host's.
	for name, uid := range map[string]uint32{"domain2.test": 1002, "addon.test": 1002, "client1.test": 1001} {
		if got, ok := r.Owners[name]; !ok || got != uid {
			t.Errorf("owner of %s: got %d (%v), want %d", name, got, ok, uid)
		}
	}
	if _, ok := r.Webroots["remote.test"]; ok {
		t.Error("remote.test: its malformed userdata gave a webroot")
	}
}

func TestCpanelUnknownUser(t *testing.T) {
	root := t.TempDir()
	write(t, root, "etc/userdomains", "a.test: ghost\n")
	write(t, root, "etc/localdomains", "")
	write(t, root, "etc/passwd", "root:x:0:0::/root:/bin/sh\n")
	write(t, root, "var/cpanel/userdata/ghost/a.test", "documentroot: /home/ghost/public_html\nuser: ghost\n")
	r := Cpanel(root)
	if r.Webroots["a.test"] != "/home/ghost/public_html" {
		t.Errorf("webroot: got %q", r.Webroots["a.test"])
	}
	if _, ok := r.Owners["a.test"]; ok {
		t.Error("an owner for a user not in passwd")
	}
	if len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Error(), `user "ghost" is not in /etc/passwd`) {
		t.Errorf("errors: got %v", r.Errors)
	}
}

func TestMissingFiles(t *testing.T) {
	root := t.TempDir()
	for _, kind := range Kinds {
		r, err := Read(kind, root)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Domains) != 0 || len(r.Errors) == 0 {
			t.Errorf("%s: got %d domains, errors %v; want none, and the missing file", kind, len(r.Domains), r.Errors)
		}
		for _, e := range r.Errors {
			if e.Line != 0 || !strings.Contains(e.Error(), "no such file") || !strings.HasPrefix(e.File, root) {
				t.Errorf("%s: %v: want the missing file under the root", kind, e)
			}
		}
	}
	if _, err := Read("plesk", root); err == nil || !strings.Contains(err.Error(), "cpanel, directadmin, exim, postfix") {
		t.Errorf("unknown kind: got %v", err)
	}
}

func TestPostfixExpansion(t *testing.T) {
	tests := []struct {
		name, maincf string
		hostname     string
		want         []string
		wantErr      string
	}{
		{"default mydestination from /etc/hostname", "", "mx.example.test\n", []string{"mx.example.test"}, ""},
		{"braces and parens", "myhostname = h.example.test\nmydestination = ${myhostname}, $(mydomain), example.net\n", "", []string{"h.example.test", "example.test", "example.net"}, ""},
		{"conditional", "myhostname = h.example.test\nx = y\nmydestination = ${x?a.test} ${unset:b.test} ${x:c.test}\n", "", []string{"a.test", "b.test"}, ""},
		{"unknown parameter", "myhostname = h.example.test\nmydestination = $nope\n", "", nil, "$nope is not set in main.cf"},
		{"loop", "myhostname = h.example.test\na = $b\nb = $a\nmydestination = $a\n", "", nil, "loop"},
		{"later setting wins", "myhostname = h.example.test\nrelay_domains = a.test\nrelay_domains = b.test\nmydestination =\n", "", []string{"b.test"}, ""},
		{"regexp table", "myhostname = h.example.test\nmydestination =\nrelay_domains = pcre:/etc/postfix/relay.pcre\n", "", nil, "a pcre: table cannot be listed"},
		{"inline table", "myhostname = h.example.test\nmydestination =\nrelay_domains = inline:{ a.test=OK, { b.test = OK } }\n", "", []string{"a.test", "b.test"}, ""},
		{"doubling", doubling(18), "", nil, "expands to more than 1048576 bytes"},
		{"continuation without parameter", "  x.test\nmyhostname = h.example.test\nmydestination =\n", "", nil, "continuation line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			write(t, root, "etc/postfix/main.cf", tt.maincf)
			if tt.hostname != "" {
				write(t, root, "etc/hostname", tt.hostname)
			}
			r := Postfix(root)
			if got := r.Names(); !reflect.DeepEqual(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("domains: got %v, want %v", got, tt.want)
			}
			checkErrs(t, r, tt.wantErr)
		})
	}
}

// doubling is a main.cf whose mydestination doubles n times: 7 << n bytes.
func doubling(n int) string {
	var b strings.Builder
	b.WriteString("myhostname = h.example.test\np0 = x.test\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "p%d = $p%d $p%d\n", i, i-1, i-1)
	}
	fmt.Fprintf(&b, "mydestination = $p%d\n", n)
	return b.String()
}

func TestEximLists(t *testing.T) {
	tests := []struct {
		name, conf string
		want       []string
		wantErr    string
	}{
		{"double quotes", `dc_other_hostnames="a.test:b.test"`, []string{"a.test", "b.test"}, ""},
		{"changed separator", `dc_relay_domains='<; a.test; b.test'`, []string{"a.test", "b.test"}, ""},
		{"empty", `dc_other_hostnames=''`, nil, ""},
		{"unbalanced", `dc_other_hostnames='a.test`, nil, "unbalanced quotes"},
		{"negation", `dc_other_hostnames='!a.test:b.test'`, []string{"b.test"}, "cannot be listed"},
		{"database lookup", `dc_relay_domains='mysql;select 1'`, nil, "a mysql lookup cannot be listed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			write(t, root, "etc/exim4/update-exim4.conf.conf", tt.conf+"\n")
			r := Exim(root)
			if got := r.Names(); !reflect.DeepEqual(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("domains: got %v, want %v", got, tt.want)
			}
			checkErrs(t, r, tt.wantErr)
		})
	}
}

// checkErrs wants no error when want is "", else exactly one containing it.
func checkErrs(t *testing.T, r *Result, want string) {
	t.Helper()
	var errs []string
	for _, e := range r.Errors {
		errs = append(errs, e.Error())
	}
	if want == "" && len(errs) > 0 || want != "" && (len(errs) != 1 || !strings.Contains(errs[0], want)) {
		t.Errorf("errors: got %q, want one containing %q", errs, want)
	}
}

func TestDomainListLines(t *testing.T) {
	long := strings.Repeat("a", maxLine+10)
	in := "\ufeffa.test\r\n" + long + "\nb.test # comment\n\nc d\nC.TEST.\n"
	r := DomainList(strings.NewReader(in), "list.txt")
	if got, want := r.Names(), []string{"a.test", "b.test", "c.test"}; !reflect.DeepEqual(got, want) {
		t.Errorf("domains: got %v, want %v", got, want)
	}
	var errs []string
	for _, e := range r.Errors {
		errs = append(errs, e.Error())
	}
	want := []string{"list.txt:2: line longer than 65536 bytes", `list.txt:5: "c d": want one domain a line`}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("errors: got %q, want %q", errs, want)
	}
}

func TestErrorsPerFileBounded(t *testing.T) {
	r := DomainList(strings.NewReader(strings.Repeat("a b\n", 100)+"ok.test\n"), "junk")
	if len(r.Errors) != maxErrorsPerFile+1 || !strings.Contains(r.Errors[maxErrorsPerFile].Error(), "more than 20 bad lines") {
		t.Errorf("got %d errors, last %v", len(r.Errors), r.Errors[len(r.Errors)-1])
	}
	if got := r.Names(); len(got) != 1 || got[0] != "ok.test" {
		t.Errorf("domains: got %v", got)
	}
}

func TestZonesBadFileCostsOnlyItself(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "good.test.db", "$TTL 300\n@ IN SOA ns h 1 2 3 4 5\n")
	write(t, dir, "origin.db", "$ORIGIN other.test.\n@ IN A 127.0.0.2\n")
	write(t, dir, "long.test.db", strings.Repeat("x", maxLine+1)+"\n")
	write(t, dir, "bad_name.db", "@ IN A 127.0.0.2\n")
	write(t, dir, "noorigin.test.db", "$ORIGIN\n")
	write(t, dir, "localhost.zone", "")
	write(t, dir, "named.ca", "")
	r := Zones(dir)
	if got, want := r.Names(), []string{"good.test", "other.test"}; !reflect.DeepEqual(got, want) {
		t.Errorf("domains: got %v, want %v", got, want)
	}
	var errs []string
	for _, e := range r.Errors {
		errs = append(errs, strings.TrimPrefix(e.Error(), dir+"/"))
	}
	want := []string{
		`bad_name.db: origin from the file name: "bad_name": underscore is not allowed in a host name`,
		"long.test.db:1: line longer than 65536 bytes: not a BIND zone file (move it out of the zones directory)",
		"noorigin.test.db:1: $ORIGIN without a name",
	}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("errors: got %q, want %q", errs, want)
	}
	if r := Zones(filepath.Join(dir, "missing")); len(r.Errors) != 1 || r.Errors[0].Line != 0 {
		t.Errorf("missing dir: got %v", r.Errors)
	}
}

func TestMerge(t *testing.T) {
	a := &Result{Domains: []Domain{{Name: "b.test", Source: "argument"}, {Name: "a.test", Source: "argument"}}}
	b := &Result{Domains: []Domain{{Name: "a.test", Source: "cpanel:/etc/userdomains", Owner: "u"}, {Name: "a.test", Source: "cpanel:/etc/localdomains"}},
		Webroots: map[string]string{"a.test": "/home/u"}}
	m := Merge(a, nil, b)
	want := []Domain{
		{Name: "a.test", Source: "argument", Owner: "u", AlsoIn: []string{"cpanel:/etc/localdomains", "cpanel:/etc/userdomains"}},
		{Name: "b.test", Source: "argument"},
	}
	if !reflect.DeepEqual(m.Domains, want) {
		t.Errorf("got %+v, want %+v", m.Domains, want)
	}
	if m.Webroots["a.test"] != "/home/u" {
		t.Errorf("webroots: got %v", m.Webroots)
	}
}

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
