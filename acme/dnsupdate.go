package acme

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	legoupdate "github.com/go-acme/lego/v5/providers/dns/dnsupdate"
	"github.com/miekg/dns"
)

// dnsUpdate is the "dnsupdate" DNS provider (RFC 2136 dynamic updates),
// configured by lego's environment variables (DNSUPDATE_NAMESERVER,
// DNSUPDATE_TSIG_KEY, _SECRET, _ALGORITHM, DNSUPDATE_TSIG_FILE,
// DNSUPDATE_ZONES, DNSUPDATE_TTL, DNSUPDATE_DNS_TIMEOUT, or their older
// RFC2136_ names), with one difference: Present adds its value to the TXT
// record set and CleanUp deletes only that value (RFC 2136 section 2.5.1
// and 2.5.4), where lego's Present replaces the whole set. An order for
// "*.d" and "d" has two challenges at _acme-challenge.d (RFC 8555 section
// 8.4), and certplan presents every challenge of an order at once, so a
// replace would delete the other challenge's value before the CA looks.
//
// GSS-TSIG (DNSUPDATE_TSIG_ALGORITHM=gss-tsig., for Active Directory DNS)
// keeps lego's provider, which replaces: see dnsUpdateProvider.
type dnsUpdate struct {
	nameserver string
	zones      []string // fqdn; empty: found by SOA queries to nameserver
	ttl        uint32
	timeout    time.Duration
	tsigName   string // canonical; "" for no TSIG
	tsigAlg    string
	tsigSecret string
}

// dnsUpdateProvider builds the dnsupdate provider. lego's constructor
// checks the settings first, so that a wrong one reads as lego documents
// it.
func dnsUpdateProvider() (challenge.Provider, error) {
	lp, err := legoupdate.NewDNSProvider()
	if err != nil {
		return nil, err
	}
	def := legoupdate.NewDefaultConfig()
	if dns.Fqdn(def.TSIGAlgorithm) == "gss-tsig." {
		return lp, nil
	}
	p := &dnsUpdate{nameserver: updateEnv("NAMESERVER"), ttl: uint32(def.TTL), timeout: def.DNSTimeout,
		tsigName: updateEnv("TSIG_KEY"), tsigSecret: updateEnv("TSIG_SECRET"), tsigAlg: def.TSIGAlgorithm}
	if _, _, err := net.SplitHostPort(p.nameserver); err != nil {
		p.nameserver = net.JoinHostPort(p.nameserver, "53")
	}
	for _, z := range strings.Split(updateEnv("ZONES"), ",") {
		if z = strings.TrimSpace(z); z != "" {
			p.zones = append(p.zones, dns.CanonicalName(z))
		}
	}
	if f := updateEnv("TSIG_FILE"); f != "" {
		if p.tsigName, p.tsigAlg, p.tsigSecret, err = readTSIGFile(f); err != nil {
			return nil, fmt.Errorf("dnsupdate: TSIG file %s: %w", f, err)
		}
	}
	if p.tsigName == "" || p.tsigSecret == "" {
		p.tsigName, p.tsigSecret = "", ""
	}
	p.tsigName, p.tsigAlg = dns.CanonicalName(p.tsigName), dns.Fqdn(strings.ToLower(p.tsigAlg))
	return p, nil
}

// updateEnv reads DNSUPDATE_<key>, else RFC2136_<key>, as lego does.
func updateEnv(key string) string {
	if v := os.Getenv("DNSUPDATE_" + key); v != "" {
		return v
	}
	return os.Getenv("RFC2136_" + key)
}

// readTSIGFile reads the key file `tsig-keygen` writes:
// key "name" { algorithm hmac-sha256; secret "base64"; };
func readTSIGFile(path string) (name, alg, secret string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.NewReplacer(";", " ", "{", " ", "}", " ").Replace(sc.Text()))
		for i := 0; i+1 < len(fields); i++ {
			v := strings.Trim(fields[i+1], `"`)
			switch fields[i] {
			case "key":
				name = v
			case "algorithm":
				alg = v
			case "secret":
				secret = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", "", err
	}
	if name == "" || secret == "" {
		return "", "", "", fmt.Errorf("no key name and secret in it (want the format tsig-keygen writes)")
	}
	return name, alg, secret, nil
}

func (p *dnsUpdate) Present(ctx context.Context, domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
	if err := p.update(ctx, true, info.EffectiveFQDN, info.Value); err != nil {
		return fmt.Errorf("dnsupdate: add TXT %s: %w", info.EffectiveFQDN, err)
	}
	return nil
}

func (p *dnsUpdate) CleanUp(ctx context.Context, domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
	if err := p.update(ctx, false, info.EffectiveFQDN, info.Value); err != nil {
		return fmt.Errorf("dnsupdate: remove TXT %s: %w", info.EffectiveFQDN, err)
	}
	return nil
}

// update adds (or deletes) the one record fqdn TXT value.
func (p *dnsUpdate) update(ctx context.Context, add bool, fqdn, value string) error {
	zone, err := p.zone(ctx, fqdn)
	if err != nil {
		return err
	}
	rr := []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: fqdn, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: p.ttl}, Txt: []string{value}}}
	m := new(dns.Msg).SetUpdate(zone)
	if add {
		m.Insert(rr)
	} else {
		m.Remove(rr)
	}
	c := &dns.Client{Timeout: p.timeout}
	if p.tsigName != "" {
		m.SetTsig(p.tsigName, p.tsigAlg, 300, time.Now().Unix())
		c.TsigSecret = map[string]string{p.tsigName: p.tsigSecret}
	}
	reply, _, err := c.ExchangeContext(ctx, m, p.nameserver)
	if err != nil {
		return fmt.Errorf("update of zone %s at %s: %w", zone, p.nameserver, err)
	}
	switch reply.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNotAuth, dns.RcodeRefused:
		return fmt.Errorf("update of zone %s: %s answered %s: it does not take this TSIG key (DNSUPDATE_TSIG_KEY, _SECRET, _ALGORITHM or _FILE) for the zone, or its update policy refuses the name", zone, p.nameserver, rcodeName(reply.Rcode))
	default:
		return fmt.Errorf("update of zone %s: %s answered %s", zone, p.nameserver, rcodeName(reply.Rcode))
	}
	return nil
}

// zone is the zone to update for fqdn: the longest of DNSUPDATE_ZONES it
// is in, else the one the name server's SOA answers name.
func (p *dnsUpdate) zone(ctx context.Context, fqdn string) (string, error) {
	if len(p.zones) == 0 {
		return dns01.DefaultClient().FindZoneByFqdnCustom(ctx, fqdn, []string{p.nameserver})
	}
	best := ""
	for _, z := range p.zones {
		if dns.IsSubDomain(z, dns.CanonicalName(fqdn)) && len(z) > len(best) {
			best = z
		}
	}
	if best == "" {
		return "", fmt.Errorf("%s is in none of DNSUPDATE_ZONES (%s)", fqdn, strings.Join(p.zones, ", "))
	}
	return best, nil
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return strconv.Itoa(rc)
}
