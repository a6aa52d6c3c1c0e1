package cli

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
	"github.com/certplan/certplan/sources"
)

// maxInputWarnings bounds the input errors printed to stderr; the
// inventory's input_errors has them all.
const maxInputWarnings = 10

// inputs gathers and checks the domains (arguments, --domains, --zones,
// --source) and the server IPs. A bad line or file of a domain input is
// not an error here: it is kept in in.found.Errors (the inventory's
// input_errors) and warned about, and the other domains go on.
func (in *inventoryInput) inputs(g *globals, args []string) ([]string, []netip.Addr, error) {
	if in.QPS < 0 {
		return nil, nil, usageError("--qps %v: must not be negative", in.QPS)
	}
	if math.IsNaN(in.QPS) || math.IsInf(in.QPS, 0) {
		return nil, nil, usageError("--qps %v: want a number of queries per second, or 0 for no cap", in.QPS)
	}
	if _, err := names.Normalize(in.CAIdentifier); err != nil {
		return nil, nil, usageError("--ca-identifier: %v", err)
	}
	var ips []netip.Addr
	for _, s := range in.ServerIPs {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, nil, usageError("--server-ip %q: not an IP address", s)
		}
		ips = append(ips, ip.Unmap())
	}
	found, err := in.readSources(g, args)
	if err != nil {
		return nil, nil, err
	}
	warnInputErrors(g, found)
	if len(found.Domains) == 0 {
		return nil, nil, in.noDomains(found)
	}
	return found.Names(), ips, nil
}

// readSources reads every domain input once, in the order arguments,
// --domains, --zones, --source (which decides each domain's Source).
func (in *inventoryInput) readSources(g *globals, args []string) (*sources.Result, error) {
	if in.found != nil {
		return in.found, nil
	}
	for _, k := range in.Sources {
		if !slices.Contains(sources.Kinds, strings.ToLower(k)) {
			return nil, usageError("--source %q: want one of %s", k, strings.Join(sources.Kinds, ", "))
		}
	}
	var rs []*sources.Result
	argsRes, err := domainArgs(args)
	if err != nil {
		return nil, err
	}
	rs = append(rs, argsRes)
	if in.DomainsFile != "" {
		r, err := in.domainsFile(g)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	if in.ZonesDir != "" {
		rs = append(rs, sources.Zones(in.ZonesDir))
	}
	root := in.Root
	if root == "" {
		root = "/"
	}
	for _, k := range in.Sources {
		r, err := sources.Read(k, root)
		if err != nil {
			return nil, usageError("--source: %v", err)
		}
		rs = append(rs, r)
	}
	in.found = sources.Merge(rs...)
	return in.found, nil
}

// domainArgs are the domains given as arguments: a bad one is a usage
// error, as it was typed now.
func domainArgs(args []string) (*sources.Result, error) {
	r := &sources.Result{}
	for _, a := range args {
		d, err := names.Normalize(a)
		if err != nil {
			reason := err.Error()
			var ne *names.Error
			if errors.As(err, &ne) {
				reason = ne.Reason
			}
			return nil, withCode(ExitUsage, fmt.Errorf("domain argument %q: %s", a, reason),
				"give each hosted domain as a plain name, such as example.com (an IDN as bücher.example or xn--bcher-kva.example)")
		}
		r.Domains = append(r.Domains, sources.Domain{Name: d, Source: "argument"})
	}
	return r, nil
}

// domainsFile reads --domains. A file that cannot be opened is an error:
// it is the input the command was given; its bad lines are input errors.
func (in *inventoryInput) domainsFile(g *globals) (*sources.Result, error) {
	var rd io.Reader = g.Stdin
	if in.DomainsFile != "-" {
		f, err := os.Open(in.DomainsFile)
		if err != nil {
			return nil, fmt.Errorf("--domains: %w", err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.IsDir() {
			return nil, withHint(fmt.Errorf("--domains %s: is a directory; want a file with one domain a line", in.DomainsFile),
				"for a directory of BIND zone files, use --zones "+in.DomainsFile)
		}
		rd = f
	}
	return sources.DomainList(rd, in.DomainsFile), nil
}

// noDomains is the error when the inputs gave no domain at all.
func (in *inventoryInput) noDomains(found *sources.Result) error {
	if n := len(found.Errors); n > 0 {
		return withHint(fmt.Errorf("no domains: every domain input failed (%s)", plural(n, "input error")),
			"each is listed above as a warning; fix them, or give the domains with --domains FILE")
	}
	switch {
	case len(in.Sources) > 0:
		return withHint(fmt.Errorf("--source %s: no domains found under %s", strings.Join(in.Sources, ","), in.Root),
			"--root names the directory the server's /etc is under (default /)")
	case in.DomainsFile == "-" && in.ZonesDir == "":
		return withHint(errors.New("--domains -: no domains on standard input"), "pipe the list in, one domain a line, such as: cut -d: -f1 /etc/userdomains | certplan ... --domains -")
	case in.DomainsFile != "" && in.ZonesDir == "":
		return withHint(fmt.Errorf("--domains %s: no domains in the file", in.DomainsFile), "the file takes one domain a line; blank lines and # comments are skipped")
	case in.DomainsFile == "" && in.ZonesDir != "":
		return withHint(fmt.Errorf("--zones %s: no zone files", in.ZonesDir), "--zones reads the *.db and *.zone files of a directory such as /var/named")
	case in.DomainsFile != "" || in.ZonesDir != "":
		return errors.New("no domains found in --domains or --zones")
	}
	return usageError("no domains: give domains as arguments, --domains FILE, --zones DIR or --source KIND")
}

// warnInputErrors prints the first input errors to stderr.
func warnInputErrors(g *globals, found *sources.Result) {
	for i, e := range found.Errors {
		if i == maxInputWarnings {
			fmt.Fprintf(g.Stderr, "certplan: warning: %d more input errors (the inventory's input_errors lists them all)\n", len(found.Errors)-i)
			break
		}
		fmt.Fprintf(g.Stderr, "certplan: warning: input: %v\n", e)
	}
}

// recordSources writes what the domain sources found into inv: each
// domain's source and owner, the input errors and the skipped domains.
func recordSources(inv *model.Inventory, found *sources.Result) {
	if found == nil {
		return
	}
	byName := map[string]sources.Domain{}
	for _, d := range found.Domains {
		byName[d.Name] = d
	}
	for i := range inv.Domains {
		d := &inv.Domains[i]
		if s, ok := byName[d.Domain]; ok {
			d.Source, d.AlsoIn, d.Owner = s.Source, s.AlsoIn, s.Owner
		}
	}
	for _, e := range found.Errors {
		inv.InputErrors = append(inv.InputErrors, model.InputError{File: e.File, Line: e.Line, Message: e.Err.Error()})
	}
	for _, s := range found.Skipped {
		inv.SkippedDomains = append(inv.SkippedDomains, model.SkippedDomain{Domain: s.Domain, Source: s.Source, Reason: s.Reason})
	}
}

// inputErrorsExit is ExitPartial when the inventory has input errors:
// the command ran on every other domain, and says so.
func inputErrorsExit(g *globals, inv *model.Inventory) error {
	n := len(inv.InputErrors)
	if n == 0 {
		return nil
	}
	where := `they are listed under "input errors"`
	if g.Format == "json" {
		where = `they are in the inventory's "input_errors"`
	}
	return withCode(ExitPartial, fmt.Errorf("%s: the other domains were read (first: %s)", plural(n, "input error"), inv.InputErrors[0]),
		where+"; fix each file and line, then run again")
}

// inputWarnings turns the inventory's input errors into plan warnings, so
// that the applied plan keeps them for check.
func inputWarnings(plan *model.Plan, inv *model.Inventory) {
	if plan == nil || inv == nil || len(inv.InputErrors) == 0 {
		return
	}
	for _, e := range inv.InputErrors {
		plan.Warnings = append(plan.Warnings, model.Warning{Code: model.WarnInputError, Name: e.File, Message: e.String()})
	}
	slices.SortStableFunc(plan.Warnings, func(a, b model.Warning) int {
		return cmpWarning(a, b)
	})
}

// cmpWarning orders warnings by code then name, as the planner does.
func cmpWarning(a, b model.Warning) int {
	if c := strings.Compare(a.Code, b.Code); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// joinExit joins the non-nil errors; one alone is returned as it is, so
// that its exit code and hints survive.
func joinExit(errs ...error) error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return errors.Join(out...)
}

// sourceWebroots sets the HTTP-01 webroots from --source cpanel when no
// --webroot or --webroot-map is given: cPanel's Apache owns port 80, and
// its userdata says each domain's document root and account, so the
// challenge files go into the docroot its account owns (or root) and
// nowhere else (see the acme package's "Webroots").
func (o *applyOptions) sourceWebroots(g *globals, cc *acme.ChallengeConfig) error {
	if cc.Webroot != "" || !slices.ContainsFunc(o.inv.Sources, func(k string) bool { return strings.EqualFold(k, "cpanel") }) {
		return nil
	}
	root := o.inv.Root
	if root == "" {
		root = "/"
	}
	r := sources.Cpanel(root)
	if len(r.Webroots) == 0 {
		fmt.Fprintf(g.Stderr, "certplan: warning: --source cpanel: no document roots in %s: HTTP-01 uses the built-in listener on --http-listen\n",
			filepath.Join(root, "var/cpanel/userdata"))
		return nil
	}
	cc.WebrootMap, cc.WebrootOwners = r.Webroots, r.Owners
	return nil
}
