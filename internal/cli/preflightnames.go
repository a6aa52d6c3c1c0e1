package cli

// This file lets the ACME preflight check the names an inventory does not
// cover (--include names, a --plan's names) as it checks inventory names:
// they are looked up through --resolver by package dnscheck when an order
// is about to be placed, never before (a renewal run with nothing due asks
// nothing).

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/dnscheck"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// wildcardGuard refuses a plan with wildcard names when no DNS provider is
// configured, before anything goes to the CA: a CA validates a wildcard
// through dns-01 only (RFC 8555 section 7.1.3), so its order would fail
// after the other names' challenges were answered. (acme.Client.Obtain
// refuses it too, but only once the CA's directory has been read.)
func wildcardGuard(plan *model.Plan, cc acme.ChallengeConfig) error {
	if cc.Type == acme.DNS01 || cc.DNSProvider != "" {
		return nil
	}
	var wild []string
	for _, c := range plan.Certificates {
		for _, n := range c.Names {
			if names.IsWildcard(n) && !slices.Contains(wild, n) {
				wild = append(wild, n)
			}
		}
	}
	if len(wild) == 0 {
		return nil
	}
	return withCode(ExitUsage, fmt.Errorf("the plan has wildcard names (%s), which a CA validates through dns-01 only, and no DNS provider is configured", strings.Join(wild, ", ")),
		fmt.Sprintf("give --dns-provider (%s) with its environment variables: wildcards then go through DNS-01 and the other names through --challenge %s; or plan without wildcards", strings.Join(acme.DNSProviderNames(), ", "), cc.Type))
}

// preflightLookup sets cfg's LookupNames and ServerIPs for a run of plan
// with inv (nil: --plan without an inventory).
func (o *applyOptions) preflightLookup(g *globals, cfg *acme.Config, plan *model.Plan, inv *model.Inventory) {
	cfg.ServerIPs = serverIPs(o, plan, inv)
	ips := make([]netip.Addr, 0, len(cfg.ServerIPs))
	for _, s := range cfg.ServerIPs {
		if ip, err := netip.ParseAddr(s); err == nil {
			ips = append(ips, ip.Unmap())
		}
	}
	// The CAA issuer the preflight judges by: the CA's, else the
	// inventory's (see acme's preflight), else --ca-identifier.
	caID := cfg.CAAIdentifier
	if inv != nil {
		caID = cmp.Or(caID, inv.CAIdentifier)
	}
	caID = cmp.Or(caID, o.inv.CAIdentifier)
	cfg.LookupNames = func(ctx context.Context, names []string) []model.Name {
		r, err := dnscheck.NewResolver(dnscheck.Config{
			Servers: g.Resolvers, Timeout: g.Timeout, MaxInFlight: g.Concurrency, QPS: o.inv.QPS, Logger: g.Logger,
		})
		if err != nil {
			return failedNames(names, "no resolver: "+err.Error())
		}
		defer r.Close()
		return r.Names(ctx, names, dnscheck.Options{ServerIPs: ips, CAIdentifier: caID})
	}
}

// serverIPs are the addresses that count as this server's: the
// inventory's, else --server-ip, else the plan's.
func serverIPs(o *applyOptions, plan *model.Plan, inv *model.Inventory) []string {
	switch {
	case inv != nil && len(inv.ServerIPs) > 0:
		return inv.ServerIPs
	case len(o.inv.ServerIPs) > 0:
		return o.inv.ServerIPs
	case len(plan.Policy.ServerIPs) > 0:
		return plan.Policy.ServerIPs
	}
	var ips []string
	for _, pc := range plan.Certificates {
		ips = append(ips, pc.IPs...)
	}
	slices.Sort(ips)
	return slices.Compact(ips)
}

// failedNames are names whose lookup could not be made: the preflight
// drops them as it drops an inventory name whose lookup failed.
func failedNames(names []string, why string) []model.Name {
	out := make([]model.Name, len(names))
	for i, n := range names {
		out[i] = model.Name{Name: n, Here: model.HereNone, Error: why, CAA: model.CAAVerdict{Error: why}}
	}
	return out
}
