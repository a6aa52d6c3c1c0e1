package dnscheck

import (
	"context"
	"sync"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// Names looks up names that no hosted domain brought into the inventory
// (an operator's --include, a saved plan's names) as the inventory looks
// up its own: A and AAAA with CNAMEs followed, whether the addresses are
// opts.ServerIPs, and CAA for opts.CAIdentifier; so that they are checked
// before an order as inventory names are. The names carry no roles,
// domains or sources; failures are in each Name's Error and CAA.Error. The
// result is in list's order.
func (r *Resolver) Names(ctx context.Context, list []string, opts Options) []model.Name {
	out := make([]model.Name, len(list))
	var wg sync.WaitGroup
	for i, n := range list {
		wg.Go(func() { out[i] = r.checkName(ctx, n, opts) })
	}
	wg.Wait()
	return out
}

// checkName is one name of Names.
func (r *Resolver) checkName(ctx context.Context, name string, opts Options) model.Name {
	info := resolveName(name, true, func(n string, qtype uint16) (Answer, error) { return r.Lookup(ctx, n, qtype) })
	caa := r.CAA(ctx, name, opts.CAIdentifier)
	nm := model.Name{
		Name:       name,
		Unicode:    names.Unicode(name),
		Roles:      []string{},
		Domains:    []string{},
		CNAMEChain: trimDots(info.chain),
		Addresses:  make([]string, 0, len(info.addrs)),
		Here:       here(info.addrs, opts.ServerIPs),
		CAAOK:      caa.Allowed,
		CAA:        caa.Verdict(),
	}
	wildVerdict(&nm, caa, opts.CAIdentifier, func(w string) CAAResult { return r.CAA(ctx, w, opts.CAIdentifier) })
	for _, a := range info.addrs {
		nm.Addresses = append(nm.Addresses, a.String())
	}
	if info.err != nil {
		nm.Error = info.err.Error()
	} else if info.nx {
		nm.Error = model.NameErrNXDOMAIN
	}
	return nm
}
