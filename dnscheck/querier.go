package dnscheck

import "context"

// Querier asks the DNS questions of an inventory ([Inventory], [Stream]):
// [Resolver] is one. The inventory follows CNAME chains, climbs for CAA
// and decides what to ask; a Querier only asks.
type Querier interface {
	// Ask asks for fqdn (a lowercase FQDN) and qtype once and returns the
	// reply; a reply with an error rcode (SERVFAIL, NXDOMAIN, ...) is a
	// Response, not an error. shared says whether other callers may ask
	// the same question (a name that many domains use, the CNAME target of
	// another name): a Querier may then answer it from a cache or merge it
	// with the same question under way. A question that is not shared (a
	// name under one domain) is asked afresh. Errors are *QueryError, or
	// ctx's error.
	Ask(ctx context.Context, fqdn string, qtype uint16, shared bool) (Response, error)
}

// QueryCounter is a Querier that counts the queries it sends; the
// inventory's summary then holds how many it sent, by type.
type QueryCounter interface {
	Queries() int64
	QueriesByType() map[string]int
}

// Ask is the Resolver's Querier method: [Resolver.Query] for a shared
// question, one query without the cache for the others.
func (r *Resolver) Ask(ctx context.Context, fqdn string, qtype uint16, shared bool) (Response, error) {
	if !shared {
		return r.queryOnce(ctx, fqdn, qtype)
	}
	rp, err := r.Query(ctx, fqdn, qtype)
	if err != nil {
		return Response{}, err
	}
	return *rp, nil
}

var (
	_ Querier      = (*Resolver)(nil)
	_ QueryCounter = (*Resolver)(nil)
)
