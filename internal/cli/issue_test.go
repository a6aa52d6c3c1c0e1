package cli

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
)

func TestReadWebrootMap(t *testing.T) {
	tests := []struct {
		name, text string
		want       map[string]string
		wantErr    bool
	}{
		{"lines", "# cPanel docroots\nDomain2.test  /home/u2/public_html\nmail.shop.test. /home/u3/shop # the shop\n\n",
			map[string]string{"domain2.test": "/home/u2/public_html", "mail.shop.test": "/home/u3/shop"}, false},
		{"yaml", "domain2.test: /home/u2/public_html\nshop.test: /home/u3/shop\n",
			map[string]string{"domain2.test": "/home/u2/public_html", "shop.test": "/home/u3/shop"}, false},
		{"missing docroot", "domain2.test /x\nshop.test\n", nil, true},
		{"empty", "# nothing\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "map")
			if err := os.WriteFile(p, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readWebrootMap(p)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
