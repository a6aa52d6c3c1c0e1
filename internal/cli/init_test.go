package cli

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/certplan/certplan/detect"
	"github.com/certplan/certplan/internal/dnstest"
)

// init's server IPs on the host itself (--root /), with the interfaces
// injected: public ones kept, private ones only when asked, and behind NAT
// (private addresses only) the A/AAAA records of the host's name through
// --resolver. --dry-run: nothing is written.
func TestInitServerIPs(t *testing.T) {
	dns := dnstest.New()
	if err := dns.AddZone("nat.test", "mail IN A 203.0.113.50\nmail IN A 10.9.9.9\nmail IN AAAA 2001:db8::50\n"); err != nil {
		t.Fatal(err)
	}
	if err := dns.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	saved := detect.InterfaceAddrs
	defer func() { detect.InterfaceAddrs = saved }()
	tests := []struct {
		name  string
		addrs []string
		flags []string
		want  []string // lines of stdout
	}{
		{"public", []string{"127.0.0.1", "::1", "10.0.0.5", "203.0.113.7", "fe80::1"}, nil,
			[]string{"server-ip: [203.0.113.7]", "Server IPs: 203.0.113.7 (the interfaces' public addresses)."}},
		{"include private", []string{"127.0.0.1", "10.0.0.5", "203.0.113.7"}, []string{"--include-private"},
			[]string{"server-ip: [10.0.0.5, 203.0.113.7]"}},
		{"nat", []string{"127.0.0.1", "10.0.0.5", "fd00::5"}, []string{"--hostname", "mail.nat.test"},
			[]string{"server-ip: [203.0.113.50, 2001:db8::50]",
				"Server IPs: 203.0.113.50, 2001:db8::50 (the interfaces hold private addresses only (NAT): the A/AAAA records of mail.nat.test)."}},
		{"nat, name unknown", []string{"10.0.0.5"}, []string{"--hostname", "gone.nat.test"},
			[]string{"#server-ip: []"}},
		{"--server-ip wins", []string{"203.0.113.7"}, []string{"--server-ip", "198.51.100.1"},
			[]string{"server-ip: [198.51.100.1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			detect.InterfaceAddrs = func() ([]netip.Addr, error) {
				var out []netip.Addr
				for _, s := range tt.addrs {
					out = append(out, netip.MustParseAddr(s))
				}
				return out, nil
			}
			args := append([]string{"init", "--root", "/", "--dry-run", "--force", "--email", "pm@nat.test", "--resolver", dns.Addr()}, tt.flags...)
			var out, errw bytes.Buffer
			if code := Run(context.Background(), args, strings.NewReader(""), &out, &errw, func(string) string { return "" }); code != 0 {
				t.Fatalf("exit %d: %s", code, errw.String())
			}
			lines := strings.Split(out.String(), "\n")
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					found = found || l == w
				}
				if !found {
					t.Errorf("no line %q in:\n%s", w, out.String())
				}
			}
		})
	}
}
