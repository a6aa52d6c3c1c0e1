package detect

import (
	"net"
	"net/netip"
	"slices"
)

// InterfaceAddrs are the host's interface addresses (net.InterfaceAddrs);
// a variable so that tests do not depend on the host's interfaces.
var InterfaceAddrs = func() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

// Public keeps the addresses mail clients on the Internet can reach:
// without loopback, link-local, unspecified and multicast addresses, and
// without private ranges (RFC 1918, RFC 6598 shared space, RFC 4193 ULA)
// unless includePrivate. The result is sorted, each address once.
func Public(addrs []netip.Addr, includePrivate bool) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if !a.IsValid() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalMulticast() {
			continue
		}
		if !includePrivate && isPrivate(a) {
			continue
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598

func isPrivate(a netip.Addr) bool {
	return a.IsPrivate() || cgnat.Contains(a)
}
