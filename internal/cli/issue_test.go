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
		wantOwners map[string]uint32
		wantErr    bool
	}{
		{"lines", "# cPanel docroots\nDomain2.test  /home/u2/public_html\nmail.shop.test. /home/u3/shop # the shop\n\n",
			map[string]string{"domain2.test": "/home/u2/public_html", "mail.shop.test": "/home/u3/shop"}, map[string]uint32{}, false},
		{"owners", "domain2.test /home/u2/public_html nobody\nshop.test /home/u3/shop 1003\nmail.test /srv/mail\n",
			map[string]string{"domain2.test": "/home/u2/public_html", "shop.test": "/home/u3/shop", "mail.test": "/srv/mail"},
			map[string]uint32{"domain2.test": 65534, "shop.test": 1003}, false},
		{"yaml", "domain2.test: /home/u2/public_html\nshop.test: /home/u3/shop\n",
			map[string]string{"domain2.test": "/home/u2/public_html", "shop.test": "/home/u3/shop"}, nil, false},
		{"missing docroot", "domain2.test /x\nshop.test\n", nil, nil, true},
		{"unknown account", "domain2.test /x no-such-user-here\n", nil, nil, true},
		{"four fields", "domain2.test /x nobody extra\n", nil, nil, true},
		{"empty", "# nothing\n", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "map")
			if err := os.WriteFile(p, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			got, owners, err := readWebrootMap(p)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && (!maps.Equal(got, tt.want) || !maps.Equal(owners, tt.wantOwners)) {
				t.Errorf("got %v %v, want %v %v", got, owners, tt.want, tt.wantOwners)
			}
		})
	}
}
