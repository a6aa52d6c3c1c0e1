package probe

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/certplan/certplan/model"
)

// Port is a port and the protocol spoken on it.
type Port struct {
	Protocol string // a model.Proto* value
	Port     int
}

func (p Port) String() string { return p.Protocol + ":" + strconv.Itoa(p.Port) }

// DefaultPorts are what `certplan probe` checks without --ports: SMTP,
// submission, SMTPS and IMAPS.
var DefaultPorts = []string{"25", "587", "465", "993"}

// wellKnown maps the standard mail ports to their protocols.
var wellKnown = map[int]string{
	25:  model.ProtoSMTP,
	587: model.ProtoSubmission,
	465: model.ProtoSMTPS,
	143: model.ProtoIMAP,
	993: model.ProtoIMAPS,
	110: model.ProtoPOP3,
	995: model.ProtoPOP3S,
}

// ProtocolFor returns the protocol of a well-known mail port.
func ProtocolFor(port int) (string, bool) {
	p, ok := wellKnown[port]
	return p, ok
}

// IsProtocol reports whether s is a protocol the prober speaks.
func IsProtocol(s string) bool {
	_, ok := protocols[s]
	return ok
}

// Protocols lists the protocol names, in a fixed order.
func Protocols() []string {
	return []string{model.ProtoSMTP, model.ProtoSubmission, model.ProtoSMTPS,
		model.ProtoIMAP, model.ProtoIMAPS, model.ProtoPOP3, model.ProtoPOP3S}
}

// ParsePort parses a well-known port number ("587") or PROTO:PORT
// ("smtp:2525").
func ParsePort(item string) (Port, error) {
	item = strings.TrimSpace(item)
	proto, num, hasProto := strings.Cut(item, ":")
	if !hasProto {
		num, proto = item, ""
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 {
		return Port{}, fmt.Errorf("port %q: want a port number or PROTO:PORT such as smtp:2525", item)
	}
	if !hasProto {
		p, ok := wellKnown[n]
		if !ok {
			return Port{}, fmt.Errorf("port %d: not a well-known mail port (25, 587, 465, 143, 993, 110, 995); name the protocol, such as smtp:%d", n, n)
		}
		return Port{Protocol: p, Port: n}, nil
	}
	proto = strings.ToLower(proto)
	if !IsProtocol(proto) {
		return Port{}, fmt.Errorf("port %q: unknown protocol %q; want one of %s", item, proto, strings.Join(Protocols(), ", "))
	}
	return Port{Protocol: proto, Port: n}, nil
}

// ParsePorts parses each item with [ParsePort], accepting comma-separated
// lists inside items too. Duplicates are dropped; a port named twice with
// different protocols is an error.
func ParsePorts(items []string) ([]Port, error) {
	var out []Port
	seen := map[int]string{}
	for _, it := range items {
		for _, s := range strings.Split(it, ",") {
			if strings.TrimSpace(s) == "" {
				continue
			}
			p, err := ParsePort(s)
			if err != nil {
				return nil, err
			}
			if prev, ok := seen[p.Port]; ok {
				if prev != p.Protocol {
					return nil, fmt.Errorf("port %d named twice, as %s and %s", p.Port, prev, p.Protocol)
				}
				continue
			}
			seen[p.Port] = p.Protocol
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no ports to probe")
	}
	return out, nil
}
