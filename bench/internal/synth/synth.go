// Package synth generates the benchmark's synthetic hosting world: a shared
// mail host's hosted domains and their DNS, in the proportions a large
// hosting company sees, deterministically from a seed.
//
// Most domains point their MX at a few hundred shared MX hosts (chosen with
// a Zipf distribution, so a handful of hosts serve most domains); some run
// their own mail.D; a few have a null MX, are gone (NXDOMAIN) or send mail to
// a foreign provider. cPanel-style conventional names (mail.D as a CNAME to
// D, autoconfig.D, autodiscover.D), SRV records (RFC 6186/8314, some with
// target "."), CAA on some domains and on some parents, TLSA on some MX
// hosts, _mta-sts TXT on some domains, and a few CAA sets too large for UDP
// (they force the TCP fallback) complete the picture.
//
// Addresses are data, never dialled by the generator: A records name the
// server IPs (127.0.0.2..127.0.0.5) or the "foreign" 127.0.0.77.
package synth

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/miekg/dns"
)

// Foreign is the address of hosts that are not this server's.
const Foreign = "127.0.0.77"

// DefaultServerIPs are the shared host's addresses.
var DefaultServerIPs = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}

// Config sizes a world.
type Config struct {
	// Domains is the number of hosted domains.
	Domains int
	// DeadDomains is the number of extra domains whose name server never
	// answers (every query under them is dropped); they are not in
	// World.Domains but in World.DeadDomains.
	DeadDomains int
	// Seed makes the world; equal configs give equal worlds.
	Seed uint64
	// ServerIPs are the host's addresses; nil means DefaultServerIPs.
	ServerIPs []string
	// SharedHosts is the number of shared MX hosts; 0 means 300.
	SharedHosts int
}

// World is a generated world.
type World struct {
	Config Config
	// Domains are the hosted domains (lowercase, no trailing dot), in
	// generation order.
	Domains []string
	// DeadDomains are domains under a dead name server (see Config).
	DeadDomains []string
	// RRs holds every record by owner (lowercase FQDN).
	RRs map[string][]dns.RR
	// Zones are the zone apexes (lowercase FQDN) and their SOA records.
	Zones map[string]*dns.SOA
	// Dead are the zones whose server never answers.
	Dead map[string]bool
	// MailHosts are the names of MX hosts whose A record is a server IP
	// (shared hosts first, then own mail.D hosts), for the TLS benchmark's
	// SNI names.
	MailHosts []string
	// Counts of what was generated, by category, for the report.
	Counts map[string]int

	exists map[string]bool // built by Exists
}

// Generate builds the world for cfg.
func Generate(cfg Config) *World {
	if cfg.ServerIPs == nil {
		cfg.ServerIPs = DefaultServerIPs
	}
	if cfg.SharedHosts <= 0 {
		cfg.SharedHosts = 300
	}
	g := &gen{
		w: &World{
			Config: cfg,
			RRs:    make(map[string][]dns.RR, cfg.Domains*4),
			Zones:  make(map[string]*dns.SOA, cfg.Domains+64),
			Dead:   map[string]bool{},
			Counts: map[string]int{},
		},
		r: rand.New(rand.NewPCG(cfg.Seed, 0x63657274706c616e)),
	}
	g.world()
	g.w.Exists(".") // build the index now: Lookup is then safe for concurrent use
	return g.w
}

type gen struct {
	w      *World
	r      *rand.Rand
	shared []string // shared MX hosts (FQDN)
	zipf   *rand.Zipf
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) ip() string { return g.w.Config.ServerIPs[g.r.IntN(len(g.w.Config.ServerIPs))] }

func (g *gen) v6() string { return fmt.Sprintf("fd00::%x", 2+g.r.IntN(4)) }

func (g *gen) zone(apex string) {
	apex = dns.Fqdn(apex)
	g.w.Zones[apex] = &dns.SOA{
		Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
		Ns:  "ns1.hosting1.test.", Mbox: "hostmaster." + apex,
		Serial: 2026010101, Refresh: 3600, Retry: 600, Expire: 604800, Minttl: 300,
	}
}

func (g *gen) add(text string) {
	rr, err := dns.NewRR(text)
	if err != nil {
		panic(fmt.Sprintf("synth: %q: %v", text, err))
	}
	owner := strings.ToLower(rr.Header().Name)
	g.w.RRs[owner] = append(g.w.RRs[owner], rr)
	g.w.Counts["rr_"+strings.ToLower(dns.TypeToString[rr.Header().Rrtype])]++
}

func hash32(r *rand.Rand) string {
	const hexd = "0123456789abcdef"
	var b [64]byte
	for i := range b {
		b[i] = hexd[r.IntN(16)]
	}
	return string(b[:])
}

func (g *gen) world() {
	w := g.w
	g.zone("test.")
	g.zone("foreign.test.")
	g.add("mx.foreign.test. 3600 IN A " + Foreign)
	g.add("autodiscover.foreign.test. 3600 IN A " + Foreign)
	g.add("foreign.test. 3600 IN CAA 0 issue \"letsencrypt.org\"")

	// Shared MX hosts: provider 1 is this hosting company (its hosts are on
	// the server IPs); providers 2..20 are others sharing the same DNS view.
	for i := 0; i < w.Config.SharedHosts; i++ {
		prov := 1 + i%20
		apex := fmt.Sprintf("hosting%d.test.", prov)
		if _, ok := w.Zones[apex]; !ok {
			g.zone(apex)
			if g.chance(0.5) {
				g.add(apex + " 3600 IN CAA 0 issue \"letsencrypt.org\"")
				w.Counts["caa_parent"]++
			}
		}
		h := fmt.Sprintf("mx%d.%s", i+1, apex)
		g.shared = append(g.shared, h)
		if prov <= 14 {
			g.add(h + " 3600 IN A " + g.ip())
			w.MailHosts = append(w.MailHosts, strings.TrimSuffix(h, "."))
		} else {
			g.add(h + " 3600 IN A " + Foreign)
		}
		if g.chance(0.4) {
			g.add(h + " 3600 IN AAAA " + g.v6())
		}
		if g.chance(0.2) {
			g.add("_25._tcp." + h + " 3600 IN TLSA 3 1 1 " + hash32(g.r))
			if g.chance(0.5) {
				g.add("_25._tcp." + h + " 3600 IN TLSA 2 1 1 " + hash32(g.r))
			}
			w.Counts["tlsa_host"]++
		}
	}
	g.zipf = rand.NewZipf(g.r, 1.1, 4, uint64(len(g.shared)-1))

	parents := max(1, w.Config.Domains/100)
	for i := 0; i < w.Config.Domains; i++ {
		d := fmt.Sprintf("d%06d.test", i+1)
		if g.chance(0.04) {
			// A hosted subdomain of a customer's registered domain, whose
			// CAA (if any) sits on the parent.
			p := fmt.Sprintf("p%05d.test", 1+g.r.IntN(parents))
			d = fmt.Sprintf("shop%d.%s", i+1, p)
			if _, ok := w.Zones[p+"."]; !ok {
				g.zone(p)
				switch {
				case g.chance(0.6):
					g.add(p + ". 3600 IN CAA 0 issue \"letsencrypt.org\"")
				case g.chance(0.5):
					g.add(p + ". 3600 IN CAA 0 issue \"sectigo.com\"")
				}
				w.Counts["caa_parent"]++
			}
			w.Counts["subdomain"]++
		}
		w.Domains = append(w.Domains, d)
		g.domain(d)
	}
	for i := 0; i < w.Config.DeadDomains; i++ {
		d := fmt.Sprintf("dead%05d.test", i+1)
		g.zone(d)
		w.Dead[d+"."] = true
		w.DeadDomains = append(w.DeadDomains, d)
	}
	w.Counts["domains"] = len(w.Domains)
	w.Counts["dead_domains"] = len(w.DeadDomains)
	w.Counts["zones"] = len(w.Zones)
}

func (g *gen) domain(d string) {
	w := g.w
	roll := g.r.Float64()
	if roll < 0.02 {
		// Expired or never registered: NXDOMAIN for everything.
		w.Counts["nxdomain"]++
		return
	}
	g.zone(d)
	D := d + "."
	g.add(D + " 3600 IN A " + g.ip())
	if g.chance(0.3) {
		g.add(D + " 3600 IN AAAA " + g.v6())
	}
	own := false
	switch {
	case roll < 0.05:
		g.add(D + " 3600 IN MX 0 .")
		w.Counts["null_mx"]++
	case roll < 0.06:
		g.add(D + " 3600 IN MX 10 mx.foreign.test.")
		w.Counts["mx_foreign"]++
	case roll < 0.26:
		own = true
		g.add(D + " 3600 IN MX 10 mail." + D)
		g.add("mail." + D + " 3600 IN A " + g.ip())
		w.MailHosts = append(w.MailHosts, "mail."+d)
		if g.chance(0.05) {
			g.add("_25._tcp.mail." + D + " 3600 IN TLSA 3 1 1 " + hash32(g.r))
			w.Counts["tlsa_own"]++
		}
		w.Counts["mx_own"]++
	default:
		h := g.shared[g.zipf.Uint64()]
		g.add(D + " 3600 IN MX 10 " + h)
		if g.chance(0.1) {
			h2 := g.shared[g.r.IntN(len(g.shared))]
			if h2 != h {
				g.add(D + " 3600 IN MX 20 " + h2)
			}
		}
		w.Counts["mx_shared"]++
	}
	if !own && g.chance(0.6) {
		// cPanel style.
		g.add("mail." + D + " 3600 IN CNAME " + D)
		w.Counts["mail_cname"]++
	}
	if g.chance(0.15) {
		g.add("smtp." + D + " 3600 IN A " + g.ip())
	}
	if g.chance(0.08) {
		g.add("imap." + D + " 3600 IN A " + g.ip())
	}
	if g.chance(0.06) {
		g.add("pop." + D + " 3600 IN A " + g.ip())
	}
	if g.chance(0.35) {
		g.add("autoconfig." + D + " 3600 IN A " + g.ip())
	}
	switch {
	case g.chance(0.05):
		g.add("autodiscover." + D + " 3600 IN CNAME autodiscover.foreign.test.")
	case g.chance(0.35):
		g.add("autodiscover." + D + " 3600 IN A " + g.ip())
	}
	if g.chance(0.12) {
		t := "mail." + D
		g.add("_submission._tcp." + D + " 3600 IN SRV 0 1 587 " + t)
		g.add("_submissions._tcp." + D + " 3600 IN SRV 0 1 465 " + t)
		g.add("_imaps._tcp." + D + " 3600 IN SRV 0 1 993 " + t)
		if g.chance(0.5) {
			g.add("_autodiscover._tcp." + D + " 3600 IN SRV 0 1 443 autodiscover." + D)
		}
		w.Counts["srv"]++
	}
	if g.chance(0.015) {
		g.add("_pop3._tcp." + D + " 3600 IN SRV 0 0 0 .")
		w.Counts["srv_no_service"]++
	}
	switch {
	case g.chance(0.003):
		// A large policy: too big for UDP, the client must retry over TCP.
		g.add(D + " 3600 IN CAA 0 issue \"letsencrypt.org\"")
		for i := 0; i < 40; i++ {
			g.add(fmt.Sprintf("%s 3600 IN CAA 0 iodef \"mailto:security-team-%02d@%s\"", D, i, d))
		}
		w.Counts["caa_large"]++
	case g.chance(0.065):
		g.add(D + " 3600 IN CAA 0 issue \"letsencrypt.org\"")
		w.Counts["caa_domain"]++
	case g.chance(0.015):
		g.add(D + " 3600 IN CAA 0 issue \"sectigo.com\"")
		w.Counts["caa_forbids"]++
	}
	if g.chance(0.05) {
		g.add("_mta-sts." + D + " 3600 IN TXT \"v=STSv1; id=20260101T000000\"")
		g.add("mta-sts." + D + " 3600 IN A " + g.ip())
		w.Counts["mta_sts"]++
	}
}
