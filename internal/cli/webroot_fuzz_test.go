package cli

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certplan/certplan/names"
	"gopkg.in/yaml.v3"
)

//	go test -run XXX -fuzz FuzzWebrootMap -fuzztime 150s -parallel 1 ./internal/cli/

// FuzzWebrootMap reads any file as a --webroot-map (loadWebrootMap). A map
// it accepts has entries whose names are normalised (the solver looks names
// up as the planner writes them, so any other key would never match) and
// whose document roots are absolute paths (cron runs certplan in "/"), and
// it reads back the same written as YAML. A map it refuses gets an error
// naming the file.
func FuzzWebrootMap(f *testing.F) {
	for _, s := range []string{
		"# cPanel docroots\nDomain2.test  /home/u2/public_html\nmail.shop.test. /home/u3/shop # the shop\n\n",
		"domain2.test: /home/u2/public_html\nshop.test: /home/u3/shop\n",
		"client31.test /srv/www/client31\nmail.client31.test\n",
		"domain2.test /x\nshop.test\n",
		"# nothing\n",
		"xn--bcher-kva.test: /home/buecher/www\n",
		"\"mail.domain3.test\": '/home/u3/public html'\n",
	} {
		f.Add([]byte(s))
	}
	dir := fuzzTempDir(f)
	path := filepath.Join(dir, "map")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, _, err := loadWebrootMap(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if len(m) == 0 {
			t.Fatal("no entries and no error")
		}
		for k, v := range m {
			if n, err := names.Normalize(k); err != nil || n != k {
				t.Fatalf("entry %q: the name normalises to %q, %v; no name would match it", k, n, err)
			}
			if !filepath.IsAbs(v) {
				t.Fatalf("entry %q: document root %q is not an absolute path", k, v)
			}
		}
		y, err := yaml.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, y, 0o644); err != nil {
			t.Fatal(err)
		}
		if again, _, err := loadWebrootMap(path); err != nil || !maps.Equal(again, m) {
			t.Fatalf("%v written as YAML reads back as %v, %v", m, again, err)
		}
	})
}
