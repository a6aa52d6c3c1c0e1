package acme

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// preflight checks each name before ordering, from the inventory's facts
// (it does not query DNS again for them; names the inventory does not
// cover are looked up, see facts) and, for HTTP-01, by fetching a token
// through the configured listener or webroot at each of the name's
// addresses that are this server's.
func (c *Client) preflight(ctx context.Context, req Request, names []string) (kept []string, dropped []Dropped, warnings []string) {
	if c.cfg.SkipPreflight {
		return names, nil, nil
	}
	p := c.newPreflightRun(c.facts(ctx, req.Inventory, names))
	for _, name := range names {
		p.check(name)
	}
	if p.typ == HTTP01 && !c.cfg.SkipHTTPSelfCheck && len(p.checkAddrs) > 0 {
		c.selfCheckAll(ctx, p)
	}
	return p.kept, p.dropped, p.warnings
}

// preflightRun is one preflight: the facts it judges by, and its verdicts
// so far.
type preflightRun struct {
	typ        string // the challenge type
	inv        *model.Inventory
	idx        map[string]int  // inv's names
	caaID      string          // the CA's CAA identifier
	recompute  bool            // the inventory judged CAA for another CA
	here       map[string]bool // this server's IPs
	accountURI string          // "" without an account yet

	kept       []string
	dropped    []Dropped
	warnings   []string
	checkAddrs map[string][]string // kept names' addresses here, for the HTTP-01 self-check
}

func (c *Client) newPreflightRun(inv *model.Inventory) *preflightRun {
	p := &preflightRun{typ: c.solver.typ(), inv: inv, caaID: c.cfg.CAAIdentifier, here: map[string]bool{},
		checkAddrs: map[string][]string{},
		// Without an account yet (a dry run before the first order),
		// accounturi cannot be checked: caaParamsForbid skips it for "".
		accountURI: c.AccountURI()}
	if inv != nil {
		p.idx = inv.NameIndex()
		if p.caaID == "" {
			p.caaID = inv.CAIdentifier
		}
		p.recompute = p.caaID != inv.CAIdentifier
		for _, ip := range inv.ServerIPs {
			p.here[ip] = true
		}
	}
	return p
}

func (p *preflightRun) drop(name, code, reason string) {
	p.dropped = append(p.dropped, Dropped{Name: name, Stage: StagePreflight, Code: code, Reason: reason})
}

// check judges one name from the inventory's facts: the CA must reach it
// (except for DNS-01) and its CAA must allow the CA.
func (p *preflightRun) check(name string) {
	if names.IsWildcard(name) {
		p.checkWild(name)
		return
	}
	i, ok := p.idx[name]
	if !ok {
		if p.inv != nil {
			p.warnings = append(p.warnings, name+": not in the inventory, not checked before ordering")
		}
		p.kept = append(p.kept, name)
		return
	}
	n := &p.inv.Names[i]
	if p.typ != DNS01 && !p.reachable(n) {
		return
	}
	if !p.caaAllowed(n) {
		return
	}
	p.kept = append(p.kept, name)
	if p.typ == HTTP01 {
		for _, a := range n.Addresses {
			if p.here[a] {
				p.checkAddrs[name] = append(p.checkAddrs[name], a)
			}
		}
	}
}

// reachable reports whether the CA can reach n at this server for an
// HTTP-01 or TLS-ALPN-01 validation; otherwise n is dropped, saying why.
func (p *preflightRun) reachable(n *model.Name) bool {
	if n.Error != "" {
		p.drop(n.Name, DropLookupFailed, "looking up the name failed: "+n.Error)
		return false
	}
	switch n.Here {
	case model.HereNone:
		if len(n.Addresses) == 0 {
			p.drop(n.Name, DropNoAddress, "the name has no address record, so the CA cannot reach it for "+p.typ)
		} else {
			p.drop(n.Name, DropPointsElsewhere, fmt.Sprintf("the name points to %s, not to this server, so the CA cannot reach it for %s", strings.Join(n.Addresses, ", "), p.typ))
		}
		return false
	case model.HereSome:
		var foreign []string
		for _, a := range n.Addresses {
			if !p.here[a] {
				foreign = append(foreign, a)
			}
		}
		p.warnings = append(p.warnings, fmt.Sprintf("%s: also points to %s, not this server's; the CA's validation may reach it there", n.Name, strings.Join(foreign, ", ")))
	}
	return true
}

// caaAllowed reports whether n's CAA records (RFC 8659, RFC 8657) let the
// CA issue for it with this challenge and account; otherwise n is dropped,
// saying why.
func (p *preflightRun) caaAllowed(n *model.Name) bool {
	if n.CAA.Error != "" {
		p.drop(n.Name, DropCAAForbids, "CAA lookup failed (a CA refuses to issue then): "+n.CAA.Error)
		return false
	}
	allowed := n.CAAOK
	if p.recompute {
		allowed = caaAllows(n.CAA.Records, p.caaID)
	}
	if !allowed {
		reason := n.CAA.Reason
		if reason == "" || p.recompute {
			reason = fmt.Sprintf("CAA at %s does not allow %q", n.CAA.At, p.caaID)
		}
		p.drop(n.Name, DropCAAForbids, reason)
		return false
	}
	if why := caaParamsForbid(n.CAA.Records, "issue", p.caaID, p.typ, p.accountURI); why != "" {
		p.drop(n.Name, DropCAAMethod, fmt.Sprintf("CAA at %s: %s", n.CAA.At, why))
		return false
	}
	if p.accountURI == "" && caaNamesAccount(n.CAA.Records, "issue", p.caaID) {
		p.warnings = append(p.warnings, fmt.Sprintf("%s: CAA at %s allows only a given account (accounturi): not checked, no ACME account for this CA in the state directory yet", n.Name, n.CAA.At))
	}
	return true
}

// checkWild judges a wildcard "*.parent", which the CA validates through
// dns-01 only (RFC 8555 section 7.1.3), by its parent's facts: "*" itself
// is never looked up. The challenge's TXT record goes to
// _acme-challenge.parent, so the parent's lookup must have answered (an
// NXDOMAIN is an answer); the CA reads the parent's CAA with issuewild,
// which when present alone decides for wildcards (RFC 8659 sections 3 and
// 4.3).
func (p *preflightRun) checkWild(name string) {
	parent := strings.TrimPrefix(name, "*.")
	i, ok := p.idx[parent]
	if !ok {
		if p.inv != nil {
			p.warnings = append(p.warnings, name+": its parent "+parent+" is not in the inventory, CAA not checked before ordering")
		}
		p.kept = append(p.kept, name)
		return
	}
	n := &p.inv.Names[i]
	at := cmp.Or(n.CAA.At, parent)
	tag := caaWildTag(n.CAA.Records)
	switch {
	case n.Error != "" && !strings.Contains(n.Error, model.NameErrNXDOMAIN):
		p.drop(name, DropLookupFailed, "looking up its parent "+parent+" failed: "+n.Error)
	case n.CAA.Error != "":
		p.drop(name, DropCAAForbids, "CAA lookup for "+parent+" failed (a CA refuses to issue then): "+n.CAA.Error)
	case !caaTagAllows(n.CAA.Records, tag, p.caaID):
		p.drop(name, DropCAAForbids, fmt.Sprintf("CAA at %s does not allow %q to issue wildcards (%s)", at, p.caaID, tag))
	default:
		if why := caaParamsForbid(n.CAA.Records, tag, p.caaID, DNS01, p.accountURI); why != "" {
			p.drop(name, DropCAAMethod, fmt.Sprintf("CAA at %s (%s): %s", at, tag, why))
			return
		}
		if p.accountURI == "" && caaNamesAccount(n.CAA.Records, tag, p.caaID) {
			p.warnings = append(p.warnings, fmt.Sprintf("%s: CAA at %s allows only a given account (accounturi): not checked, no ACME account for this CA in the state directory yet", name, at))
		}
		p.kept = append(p.kept, name)
	}
}

// selfCheckAll fetches a token through the HTTP-01 path of every kept
// name at its addresses here, and drops the names that fail.
func (c *Client) selfCheckAll(ctx context.Context, p *preflightRun) {
	var mu sync.Mutex
	failed := map[string]string{}
	c.parallel(len(p.kept), func(i int) {
		name := p.kept[i]
		addrs := p.checkAddrs[name]
		if len(addrs) == 0 {
			return
		}
		if err := c.selfCheck(ctx, name, addrs); err != nil {
			mu.Lock()
			failed[name] = err.Error()
			mu.Unlock()
		}
	})
	var still []string
	for _, name := range p.kept {
		if why, bad := failed[name]; bad {
			code := DropSelfCheck
			if strings.Contains(why, "no webroot") {
				code = DropNoWebroot
			}
			p.drop(name, code, why)
			continue
		}
		still = append(still, name)
	}
	p.kept = still
}

// facts is the inventory the preflight checks names against: inv, plus
// the names it does not cover looked up through Config.LookupNames (nil
// inv: an inventory of those alone, "here" being Config.ServerIPs). inv is
// not modified. Without LookupNames it is inv.
func (c *Client) facts(ctx context.Context, inv *model.Inventory, names []string) *model.Inventory {
	if c.cfg.LookupNames == nil {
		return inv
	}
	out := &model.Inventory{CAIdentifier: c.cfg.CAAIdentifier, ServerIPs: c.cfg.ServerIPs}
	if inv != nil {
		cp := *inv
		out = &cp
	}
	idx := out.NameIndex()
	var missing []string
	for _, n := range names {
		// A wildcard is judged by its parent's facts (checkWild).
		n = strings.TrimPrefix(n, "*.")
		if _, ok := idx[n]; !ok && !slices.Contains(missing, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return inv
	}
	found := c.cfg.LookupNames(ctx, missing)
	out.Names = append(slices.Clip(out.Names), found...)
	return out
}

// selfCheck publishes a random token the way the CA's would be, and
// fetches it over HTTP from each address.
func (c *Client) selfCheck(ctx context.Context, name string, addrs []string) error {
	b := make([]byte, 24)
	rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	value := token + ".certplan-self-check"
	if err := c.solver.present(ctx, name, token, value); err != nil {
		return fmt.Errorf("http-01 self-check: %w", err)
	}
	defer c.solver.cleanup(context.WithoutCancel(ctx), name, token, value)
	port := c.cfg.Challenge.SelfCheckPort
	if port == 0 {
		port = 80
	}
	for _, a := range addrs {
		if err := fetchToken(ctx, name, net.JoinHostPort(a, strconv.Itoa(port)), token, value); err != nil {
			return fmt.Errorf("http-01 self-check via %s: %w", a, err)
		}
	}
	return nil
}

// fetchToken GETs the token from http://name/ at addr, following
// redirects as the CA would (redirectPolicy).
func fetchToken(ctx context.Context, name, addr, token, want string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dialer := &net.Dialer{}
	hc := &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, dialAddr(a, name, addr))
			},
			// CAs do not check the certificate of a redirect target.
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			DisableKeepAlives: true,
		},
		CheckRedirect: redirectPolicy,
	}
	u := "http://" + name + challengePrefix + token
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if re := (*redirectError)(nil); errors.As(err, &re) {
		return fmt.Errorf("GET %s: %w", u, re)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if !bytes.Equal(bytes.TrimSpace(body), []byte(want)) {
		return fmt.Errorf("GET %s: the response is not the token (another web server or docroot answers)", u)
	}
	return nil
}

// dialAddr is where the self-check connects to reach a ("host:port"): the
// name under test at the address under test (port 80 at addr, which
// carries the self-check port; another port at addr's IP), as the CA
// reaches it there; another host as it resolves.
func dialAddr(a, name, addr string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil || !strings.EqualFold(strings.TrimSuffix(host, "."), name) {
		return a
	}
	if port == "80" {
		return addr
	}
	ip, _, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(ip, port)
}

// maxRedirects is the number of redirects Let's Encrypt follows.
const maxRedirects = 10

// redirectError is a redirect the self-check did not follow, and why.
type redirectError struct{ location, why string }

func (e *redirectError) Error() string {
	return "redirect to " + e.location + " not followed: " + e.why
}

// redirectPolicy follows a redirect only where Let's Encrypt's VA would:
// "up to 10 redirects deep", "only to http: or https:, and only to ports 80
// or 443", "not to IP addresses" (letsencrypt.org/docs/challenge-types/,
// HTTP-01), with status 301, 302, 307 or 308 (the Baseline Requirements'
// list: Go also follows 303, Boulder does not). Boulder implements it in
// va/http.go (maxRedirect, extractRequestTarget, processRedirect); like
// Boulder it takes either port with either scheme. A redirect the CA would
// refuse fails the self-check with its Location, unfollowed. via holds the
// first request and each redirect followed so far.
func redirectPolicy(req *http.Request, via []*http.Request) error {
	refuse := func(why string) error { return &redirectError{req.URL.String(), why} }
	host := strings.ToLower(req.URL.Hostname())
	switch port := req.URL.Port(); {
	case len(via) > maxRedirects:
		return refuse(fmt.Sprintf("more than %d redirects", maxRedirects))
	case req.Response != nil && !slices.Contains([]int{301, 302, 307, 308}, req.Response.StatusCode):
		return refuse(fmt.Sprintf("Let's Encrypt follows status 301, 302, 307 and 308 only, not %d", req.Response.StatusCode))
	case req.URL.Scheme != "http" && req.URL.Scheme != "https":
		return refuse("Let's Encrypt follows redirects to http and https only")
	case port != "" && port != "80" && port != "443":
		return refuse("Let's Encrypt follows redirects to ports 80 and 443 only")
	case host == "":
		return refuse("no host")
	case isIPLiteral(host):
		return refuse("Let's Encrypt follows redirects to domain names only, not to IP addresses")
	case strings.HasSuffix(host, ".well-known"):
		return refuse("the host ends in .well-known: the web server's redirect misses a '/' after the host")
	}
	return nil
}

func isIPLiteral(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// caaRecord is a parsed "issue" property (RFC 8659 section 4.2).
type caaRecord struct {
	tag    string
	issuer string
	params map[string]string
}

// parseCAA reads "0 issue \"ca.example; k=v\"" or a whole record in
// presentation format.
func parseCAA(s string) (caaRecord, bool) {
	f := strings.Fields(s)
	for i, x := range f {
		x = strings.ToLower(x)
		if x != "issue" && x != "issuewild" && x != "iodef" {
			continue
		}
		val := strings.Trim(strings.Join(f[i+1:], " "), `"`)
		r := caaRecord{tag: x, params: map[string]string{}}
		parts := strings.Split(val, ";")
		r.issuer = strings.ToLower(strings.TrimSpace(parts[0]))
		for _, p := range parts[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if k != "" {
				r.params[strings.ToLower(k)] = strings.TrimSpace(v)
			}
		}
		return r, true
	}
	return caaRecord{}, false
}

// caaAllows reports whether a relevant CAA record set lets caID issue
// (non-wildcard names).
func caaAllows(records []string, caID string) bool { return caaTagAllows(records, "issue", caID) }

// caaTagAllows reports whether the records of tag ("issue" or
// "issuewild") let caID issue: one names it, or there are none.
func caaTagAllows(records []string, tag, caID string) bool {
	has := false
	for _, s := range records {
		r, ok := parseCAA(s)
		if !ok || r.tag != tag {
			continue
		}
		has = true
		if r.issuer == strings.ToLower(caID) {
			return true
		}
	}
	return !has
}

// caaWildTag is the tag that decides for a wildcard: "issuewild" when the
// set has such a record, else "issue" (RFC 8659 section 4.3).
func caaWildTag(records []string) string {
	for _, s := range records {
		if r, ok := parseCAA(s); ok && r.tag == "issuewild" {
			return "issuewild"
		}
	}
	return "issue"
}

// caaParamsForbid checks RFC 8657's validationmethods and accounturi on the
// records of tag that name caID: one record must allow both. An empty
// accountURI (no account yet) skips the accounturi check.
func caaParamsForbid(records []string, tag, caID, method, accountURI string) string {
	var matching []caaRecord
	for _, s := range records {
		if r, ok := parseCAA(s); ok && r.tag == tag && r.issuer == strings.ToLower(caID) {
			matching = append(matching, r)
		}
	}
	if len(matching) == 0 {
		return ""
	}
	var why []string
	for _, r := range matching {
		vm, hasVM := r.params["validationmethods"]
		au, hasAU := r.params["accounturi"]
		okVM := !hasVM || slices.Contains(strings.Split(vm, ","), method)
		okAU := !hasAU || accountURI == "" || au == accountURI
		if okVM && okAU {
			return ""
		}
		if !okVM {
			why = append(why, fmt.Sprintf("validationmethods=%s excludes %s", vm, method))
		}
		if !okAU {
			why = append(why, fmt.Sprintf("accounturi=%s is not this account", au))
		}
	}
	return strings.Join(why, "; ")
}

// caaNamesAccount reports whether a record of tag naming caID carries
// accounturi.
func caaNamesAccount(records []string, tag, caID string) bool {
	for _, s := range records {
		if r, ok := parseCAA(s); ok && r.tag == tag && r.issuer == strings.ToLower(caID) {
			if _, has := r.params["accounturi"]; has {
				return true
			}
		}
	}
	return false
}
