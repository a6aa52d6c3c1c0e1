package sources

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certplan/certplan/names"
)

// Fuzz targets for every parser of the server's files, seeded from the
// fixtures (go test runs the seeds; go test -fuzz=FuzzX runs one). Each
// checks what holds for any input: no panic, every domain normalised,
// every error naming the fuzzed file with a line inside it.

func seed(f *testing.F, paths ...string) {
	f.Helper()
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkResult checks the invariants of r read from data as file.
func checkResult(t *testing.T, r *Result, data []byte, file string) {
	t.Helper()
	for _, d := range r.Domains {
		if n, err := names.Normalize(d.Name); err != nil || n != d.Name {
			t.Fatalf("domain %q is not normalised (%q, %v)", d.Name, n, err)
		}
		if d.Source == "" {
			t.Fatalf("domain %q without a source", d.Name)
		}
	}
	lines := bytes.Count(data, []byte("\n")) + 1
	for _, e := range r.Errors {
		if e.File == "" || e.Err == nil {
			t.Fatalf("error without a file or a cause: %#v", e)
		}
		if e.File == file && (e.Line < 0 || e.Line > lines) {
			t.Fatalf("error %v: line outside the %d lines", e, lines)
		}
	}
}

func FuzzCpanelUserdomains(f *testing.F) {
	seed(f, "cpanel/root/etc/userdomains")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &Result{}
		r.readUserdomains(bytes.NewReader(data), "userdomains")
		checkResult(t, r, data, "userdomains")
		for _, d := range r.Domains {
			if d.Owner == "" || strings.ContainsAny(d.Owner, " \t:") {
				t.Fatalf("domain %s: owner %q", d.Name, d.Owner)
			}
		}
	})
}

func FuzzCpanelUserdata(f *testing.F) {
	seed(f, "cpanel/root/var/cpanel/userdata/user2/domain2.test", "cpanel/root/var/cpanel/userdata/user2/addon.domain2.test",
		"cpanel/root/var/cpanel/userdata/user1/remote.test", "cpanel/root/var/cpanel/userdata/user2/main")
	f.Fuzz(func(t *testing.T, data []byte) {
		v, line, err := parseVhost(data)
		if err != nil {
			if line < 0 || line > yamlLines(data)+1 {
				t.Fatalf("error %v at line %d", err, line)
			}
			return
		}
		if !filepath.IsAbs(v.DocumentRoot) {
			t.Fatalf("accepted documentroot %q", v.DocumentRoot)
		}
		for _, n := range vhostNames(v, "x.test") {
			if m, err := names.Normalize(n); err != nil || m != n {
				t.Fatalf("vhost name %q not normalised", n)
			}
		}
	})
}

func FuzzPasswd(f *testing.F) {
	seed(f, "cpanel/root/etc/passwd")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &Result{}
		uids := r.readPasswd(bytes.NewReader(data), "passwd")
		checkResult(t, r, data, "passwd")
		for u := range uids {
			if u == "" || strings.Contains(u, ":") {
				t.Fatalf("user %q", u)
			}
		}
	})
}

func FuzzDomainList(f *testing.F) {
	seed(f, "directadmin/root/etc/virtual/domains", "cpanel/root/etc/localdomains", "exim/root/etc/exim4/hosted-domains")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := DomainList(bytes.NewReader(data), "list")
		checkResult(t, r, data, "list")
		// What it read reads back the same, without errors.
		var out []string
		for _, d := range r.Domains {
			out = append(out, d.Name)
		}
		again := DomainList(strings.NewReader(strings.Join(out, "\n")), "again")
		if len(again.Errors) > 0 || len(again.Domains) != len(r.Domains) {
			t.Fatalf("read back %d domains, %d errors, from %d", len(again.Domains), len(again.Errors), len(r.Domains))
		}
		for i := range again.Domains {
			if again.Domains[i].Name != r.Domains[i].Name {
				t.Fatalf("read back %q for %q", again.Domains[i].Name, r.Domains[i].Name)
			}
		}
	})
}

func FuzzPostfixMainCF(f *testing.F) {
	seed(f, "postfix/root/etc/postfix/main.cf")
	f.Add([]byte("myhostname = a.test\nmydestination = ${x?{$y}} $(z\nx = $x\n"))
	root := fixture("postfix")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &Result{}
		r.postfix(bytes.NewReader(data), "main.cf", root)
		checkResult(t, r, data, "main.cf")
	})
}

func FuzzPostfixTable(f *testing.F) {
	seed(f, "postfix/root/etc/postfix/vmailbox_domains", "postfix/root/etc/postfix/valias_domains")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &Result{}
		r.readPostfixKeys(bytes.NewReader(data), "table", "/etc/postfix/table")
		checkResult(t, r, data, "table")
	})
}

func FuzzEximConf(f *testing.F) {
	seed(f, "exim/root/etc/exim4/update-exim4.conf.conf")
	root := fixture("exim")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &Result{}
		r.exim(bytes.NewReader(data), "exim.conf", root)
		checkResult(t, r, data, "exim.conf")
	})
}

func FuzzZoneOrigin(f *testing.F) {
	f.Add([]byte("$TTL 300\n$ORIGIN example.test.\n@ IN MX 10 mail\n"))
	f.Add([]byte("; comment\n@ IN SOA ns h 1 2 3 4 5\n$ORIGIN late.test.\n"))
	f.Add([]byte("$ORIGIN\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		origin, line, err := readZoneOrigin(bytes.NewReader(data))
		if line < 0 || line > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("line %d", line)
		}
		if err == nil && strings.ContainsAny(origin, " \t\n") {
			t.Fatalf("origin %q", origin)
		}
	})
}

// yamlLines counts data's lines as YAML does (YAML 1.2 §5.4): "\r\n",
// a lone "\r" and "\n" each end one.
func yamlLines(data []byte) int {
	n := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) - bytes.Count(data, []byte("\r\n"))
	return n + 1
}
