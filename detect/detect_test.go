package detect

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		root        string
		software    []string
		sources     []string
		ports       []string
		listen      map[string][]string
		hooks       []string
		defaultCert string
	}{
		{
			root: "testdata/cpanel/root", software: []string{CPanel}, sources: []string{"cpanel"},
			ports: []string{"25", "587", "465", "993", "143", "110", "995"}, listen: map[string][]string{},
			hooks: []string{"cpanel.sh"}, defaultCert: "shared",
		},
		{
			root: "testdata/postfix-dovecot/root", software: []string{Postfix, Dovecot}, sources: []string{"postfix"},
			ports: []string{"25", "587", "465", "993", "143", "110", "995", "smtp:2525"},
			listen: map[string][]string{
				Postfix: {"203.0.113.10", "[::1]"},
				Dovecot: {"*", "::"},
			},
			hooks: []string{"postfix.sh", "dovecot.sh"},
		},
		{
			root: "testdata/exim/root", software: []string{Exim}, sources: []string{"exim"},
			ports: []string{"25", "587", "465"}, listen: map[string][]string{Exim: {"127.0.0.1", "::1"}},
			hooks: []string{"exim.sh"},
		},
		{
			root: "testdata/directadmin/root", software: []string{DirectAdmin, Exim, Dovecot}, sources: []string{"directadmin"},
			ports:  []string{"25", "587", "465", "993", "143", "110", "995", "smtp:2525"},
			listen: map[string][]string{Exim: {"127.0.0.2", "::1"}, Dovecot: {"*", "::"}},
			hooks:  []string{"exim.sh", "dovecot.sh"},
		},
		{root: "testdata/nothing", listen: map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.root, func(t *testing.T) {
			s := Detect(tt.root)
			for _, c := range []struct {
				what      string
				got, want any
			}{
				{"software", s.Software, tt.software}, {"sources", s.Sources, tt.sources},
				{"ports", s.Ports, tt.ports}, {"listen", s.Listen, tt.listen},
				{"hooks", s.Hooks, tt.hooks}, {"default cert", s.DefaultCert, tt.defaultCert},
			} {
				if !reflect.DeepEqual(c.got, c.want) {
					t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestPublic(t *testing.T) {
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	all := addrs("127.0.0.1", "::1", "10.0.0.5", "192.168.1.2", "172.16.0.1", "100.64.1.1", "fd00::1",
		"fe80::1", "203.0.113.10", "2001:db8::10", "203.0.113.10", "::ffff:198.51.100.7")
	tests := []struct {
		name    string
		private bool
		want    []netip.Addr
	}{
		{"public only", false, addrs("198.51.100.7", "203.0.113.10", "2001:db8::10")},
		{"with private", true, addrs("10.0.0.5", "100.64.1.1", "172.16.0.1", "192.168.1.2", "198.51.100.7", "203.0.113.10", "2001:db8::10", "fd00::1")},
	}
	for _, tt := range tests {
		if got := Public(all, tt.private); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Public = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := Public(addrs("10.1.2.3", "127.0.0.1"), false); len(got) != 0 {
		t.Errorf("NAT'd host: Public = %v, want none", got)
	}
}
