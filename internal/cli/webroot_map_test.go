package cli

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadWebrootMap: names are normalised as the planner writes them, and
// entries that could never be used or would write relative to cron's
// working directory are errors naming the file.
func TestLoadWebrootMap(t *testing.T) {
	tests := []struct {
		name, text string
		want       map[string]string
		err        string
	}{
		{"IDN", "Bücher.test /home/b/www\n", map[string]string{"xn--bcher-kva.test": "/home/b/www"}, ""},
		{"relative docroot", "domain2.test public_html\n", nil, `document root "public_html" is not an absolute path`},
		{"YAML without a docroot", "domain2.test:\nshop.test: /home/u3/shop\n", nil, "not an absolute path"},
		{"not a name", "0 /srv/www\n", nil, "single label"},
		{"wildcard", "\"*.shop.test\": /srv/www\n", nil, "wildcard"},
		{"twice", "bücher.test /a\nxn--bcher-kva.test /b\n", nil, "xn--bcher-kva.test is given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "map")
			if err := os.WriteFile(p, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			got, _, err := loadWebrootMap(p)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), p) {
					t.Fatalf("got %v, %v; want an error naming %s with %q", got, err, p, tt.err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
