package rollover

// This file publishes and removes TLSA records through RFC 2136 UPDATE,
// for `certplan rollover begin|finish --dane-publish`.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// Publisher sends RFC 2136 UPDATE messages to a zone's primary server,
// signed with TSIG (RFC 8945) when a key is given.
type Publisher struct {
	// Server is the primary's "host:port" (port 53 when none).
	Server string
	// TSIGKey, TSIGSecret (base64) and TSIGAlgorithm (default
	// hmac-sha1., as lego's dnsupdate provider) sign the updates.
	TSIGKey, TSIGSecret, TSIGAlgorithm string
	Timeout                            time.Duration
}

// PublisherFromEnv is the Publisher that lego's dnsupdate provider would
// use: DNSUPDATE_NAMESERVER, DNSUPDATE_TSIG_KEY, DNSUPDATE_TSIG_SECRET,
// DNSUPDATE_TSIG_ALGORITHM (DNSUPDATE_TSIG_FILE and GSS-TSIG are not read).
func PublisherFromEnv(getenv func(string) string) (*Publisher, error) {
	p := &Publisher{Server: getenv("DNSUPDATE_NAMESERVER"), TSIGKey: getenv("DNSUPDATE_TSIG_KEY"),
		TSIGSecret: getenv("DNSUPDATE_TSIG_SECRET"), TSIGAlgorithm: getenv("DNSUPDATE_TSIG_ALGORITHM")}
	if p.Server == "" {
		return nil, errors.New("DNSUPDATE_NAMESERVER is not set")
	}
	if _, _, err := net.SplitHostPort(p.Server); err != nil {
		p.Server = net.JoinHostPort(p.Server, "53")
	}
	if (p.TSIGKey == "") != (p.TSIGSecret == "") {
		return nil, errors.New("DNSUPDATE_TSIG_KEY and DNSUPDATE_TSIG_SECRET go together")
	}
	if getenv("DNSUPDATE_TSIG_FILE") != "" {
		return nil, errors.New("DNSUPDATE_TSIG_FILE is not read by --dane-publish: give DNSUPDATE_TSIG_KEY and DNSUPDATE_TSIG_SECRET")
	}
	return p, nil
}

// Add adds rs (all in zone) beside the records already there.
func (p *Publisher) Add(ctx context.Context, zone string, rs []Record) error {
	return p.update(ctx, zone, rs, false)
}

// Remove removes exactly rs (all in zone), leaving other records.
func (p *Publisher) Remove(ctx context.Context, zone string, rs []Record) error {
	return p.update(ctx, zone, rs, true)
}

func (p *Publisher) update(ctx context.Context, zone string, rs []Record, remove bool) error {
	m := new(dns.Msg).SetUpdate(dns.Fqdn(zone))
	var rrs []dns.RR
	for _, r := range rs {
		rr, err := dns.NewRR(r.String())
		if err != nil {
			return fmt.Errorf("update %s: %w", zone, err)
		}
		rrs = append(rrs, rr)
	}
	if remove {
		m.Remove(rrs)
	} else {
		m.Insert(rrs)
	}
	c := &dns.Client{Net: "tcp", Timeout: cmp.Or(p.Timeout, 10*time.Second)}
	if p.TSIGKey != "" {
		key := dns.Fqdn(p.TSIGKey)
		m.SetTsig(key, dns.Fqdn(cmp.Or(p.TSIGAlgorithm, dns.HmacSHA1)), 300, time.Now().Unix())
		c.TsigSecret = map[string]string{key: p.TSIGSecret}
	}
	r, _, err := c.ExchangeContext(ctx, m, p.Server)
	if err != nil {
		return fmt.Errorf("update %s at %s: %w", zone, p.Server, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("update %s at %s: the server answered %s", zone, p.Server, dns.RcodeToString[r.Rcode])
	}
	return nil
}
