package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/miekg/dns"

	"github.com/certplan/certplan/dnscheck"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
	"github.com/certplan/certplan/probe"
	"github.com/certplan/certplan/report"
	"github.com/spf13/cobra"
)

type probeOptions struct {
	inv     inventoryInput
	in      probeInput // --ports, --ca-file
	targets []string
	sni     []string
}

func newProbeCmd(g *globals) *cobra.Command {
	o := &probeOptions{}
	cmd := &cobra.Command{
		Use:   "probe [DOMAIN...]",
		Short: "Show what each client gets on every IP and port, with and without SNI",
		Long: `probe connects to every server IP and port the way mail clients do (SMTP and
submission with STARTTLS, SMTPS, IMAP and POP3 with STARTTLS/STLS, IMAPS, POP3S),
once without SNI and once with SNI for each name that points at that IP, and
judges every (name, IP, port): ok, mismatch (the certificate does not list the
name), expired, untrusted, or error (no certificate at all).

Targets come from an inventory (--inventory, or the domain inputs and
--server-ip of "certplan inventory", which it then runs), or from --target.
A --target host name is resolved through --resolver when given (A and AAAA,
following CNAMEs), else through the system's resolver.

Ports: well-known numbers (25 and 587 SMTP STARTTLS, 465 SMTPS, 143 IMAP
STARTTLS, 993 IMAPS, 110 POP3 STLS, 995 POP3S) or PROTO:PORT for other ports,
PROTO one of smtp, submission, smtps, imap, imaps, pop3, pop3s.

Certificates are verified against the system roots plus --ca-file.

Exit codes:
  0  every name verifies with and without SNI
  1  could not run (bad input, unreadable files)
  2  bad flags or arguments
  3  some names do not verify for some clients, some endpoints failed, or
     a validating sender refuses an MX host (DANE, or MTA-STS "enforce")

MX hosts of an inventory also get, on their SMTP rows (port 25, or smtp:PORT), what
validating senders do: "dane" (the chain served with SNI against the
DNSSEC-validated TLSA records at _25._tcp.NAME: ok, fail, none, unknown) and
"mta-sts" (the policies of the domains they serve: ok, fail under enforce,
warn under testing, none).`,
		Example: `  # What does each client see today? (inventory from "certplan inventory")
  certplan probe --inventory inv.json

  # Also IMAP STARTTLS and SMTP on a non-standard port, as JSON
  certplan probe --inventory inv.json --ports 25,587,465,993,143,smtp:2525 --format json -o probe.json

  # One server, a name to try with SNI, a private CA
  certplan probe --target 192.0.2.10:587 --sni smtp.example.com --ca-file lab-ca.pem

  # A name's own addresses, on its port, as a given DNS server sees them
  certplan probe --target imaps:mail.example.com:10993 --resolver 192.0.2.53:53`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), g, args)
		},
	}
	fs := cmd.Flags()
	o.inv.addFlags(fs, true)
	o.in.addFlags(fs, false)
	fs.StringArrayVar(&o.targets, "target", nil, "probe `[PROTO:]HOST:PORT` instead of the inventory (repeatable); a HOST name is resolved (through --resolver when given) and tried with SNI")
	fs.StringVar(&o.in.Hostname, "hostname", "", "the server's own `name` (Postfix myhostname), by which reports name the certificate that covers it (default: the name in the SMTP greeting)")
	fs.StringArrayVar(&o.sni, "sni", nil, "with --target: also try this server `name` with SNI (repeatable)")
	return cmd
}

func (o *probeOptions) run(ctx context.Context, g *globals, args []string) error {
	if err := g.checkFormat("text", "json"); err != nil {
		return err
	}
	var scope probe.Scope
	switch {
	case len(o.targets) > 0 && o.inv.given(args):
		return usageError("--target and an inventory (--inventory, --domains, --zones, domains) cannot be combined")
	case len(o.targets) > 0:
		// --ports does not apply to --target (it names its port), but a
		// typo in it is still a mistake to report.
		if _, err := probe.ParsePorts(o.in.Ports); err != nil {
			return usageError("--ports: %v", err)
		}
		snis := make([]string, len(o.sni))
		for i, n := range o.sni {
			a, err := names.Normalize(n)
			if err != nil {
				return usageError("--sni %v", err)
			}
			snis[i] = a
		}
		var err error
		if scope, err = targetScope(ctx, g, o.targets, snis); err != nil {
			return err
		}
	case len(o.sni) > 0:
		return usageError("--sni needs --target")
	case !o.inv.given(args):
		return usageError("nothing to probe: give --inventory FILE, domains, --domains, --zones, or --target")
	default:
		ports, err := probe.ParsePorts(o.in.Ports)
		if err != nil {
			return usageError("--ports: %v", err)
		}
		inv, err := o.inv.load(ctx, g, args)
		if err != nil {
			return err
		}
		if len(inv.ServerIPs) == 0 {
			return withHint(fmt.Errorf("the inventory has no server IPs"), "run the inventory with --server-ip for each of this server's addresses")
		}
		scope = probe.InventoryScope(inv, ports)
	}
	if o.in.Hostname != "" {
		h, err := names.Normalize(o.in.Hostname)
		if err != nil {
			return usageError("--hostname %v", err)
		}
		scope.Hostname = h
	}
	r, err := runProbe(ctx, g, scope, o.in.CAFile)
	if err != nil {
		return err
	}
	w, commit := g.output()
	if g.Format == "json" {
		b, err := model.Marshal(r)
		if err != nil {
			return err
		}
		_, _ = w.Write(b)
	} else {
		writeProbeText(w, r)
	}
	if err := commit(); err != nil {
		return err
	}
	if r.Stats.Broken > 0 || r.Stats.EndpointErrors > 0 || r.Stats.Refused > 0 {
		return withCode(ExitPartial, nil)
	}
	return nil
}

// runProbe probes scope with the global timeout and concurrency, trusting
// the system roots plus caFile, logging each result as it comes. It is the
// one path for "certplan probe" and for the commands that probe inline.
func runProbe(ctx context.Context, g *globals, scope probe.Scope, caFile string) (*model.ProbeReport, error) {
	var files []string
	if caFile != "" {
		files = append(files, caFile)
	}
	roots, err := probe.Roots(files...)
	if err != nil {
		return nil, withHint(err, "--ca-file takes a PEM file of CA certificates")
	}
	p := probe.New(probe.Config{Roots: roots, Timeout: g.Timeout, Concurrency: g.Concurrency, Now: g.Now})
	g.Logger.Info("probing", "handshakes", len(scope.Targets()))
	r := p.Run(ctx, scope, func(ep model.Endpoint) {
		if ep.Error != "" {
			g.Logger.Info("probe failed", "ip", ep.IP, "port", ep.Port, "sni", ep.SNI, "error", ep.Error)
			return
		}
		g.Logger.Debug("probed", "ip", ep.IP, "port", ep.Port, "sni", ep.SNI, "cert", probe.CertName(ep.Leaf, scope.Hostname), "ms", ep.DurationMS)
	})
	if err := ctx.Err(); err != nil {
		// Interrupted: the handshakes cut short look like timeouts in the
		// report; it must not be written or planned from.
		return nil, fmt.Errorf("probe: %w", err)
	}
	return r, nil
}

// targetScope turns --target items and --sni names into a scope. A HOST
// that is a name is resolved (see resolveTarget) and becomes a name to try
// with SNI.
func targetScope(ctx context.Context, g *globals, targets, snis []string) (probe.Scope, error) {
	var s probe.Scope
	var r *dnscheck.Resolver // made on first use, with --resolver
	defer func() {
		if r != nil {
			r.Close()
		}
	}()
	for _, t := range targets {
		proto, host, port, err := parseTarget(t)
		if err != nil {
			return s, usageError("--target %q: %v", t, err)
		}
		sni := append([]string(nil), snis...)
		var ips []string
		if a, err := netip.ParseAddr(host); err == nil {
			ips = []string{a.Unmap().String()} // an address needs no lookup
		} else {
			// A host name is also tried with SNI, in its A-label form; one
			// that is no full host name (localhost) is only resolved.
			a, nerr := names.Normalize(host)
			lookup := a
			if nerr != nil {
				lookup = host
			}
			if r == nil && len(g.Resolvers) > 0 {
				if r, err = dnscheck.NewResolver(dnscheck.Config{Servers: g.Resolvers, Timeout: g.Timeout, Logger: g.Logger}); err != nil {
					return s, withHint(err, "give resolvers with --resolver host:port")
				}
			}
			addrs, err := resolveTarget(ctx, r, lookup)
			if err != nil {
				return s, withHint(fmt.Errorf("--target %s: %w", t, err), "give the server's IP address instead, with --sni for the name to try")
			}
			for _, ip := range addrs {
				ips = append(ips, ip.String())
			}
			if nerr == nil {
				sni = append(sni, a)
			}
		}
		for _, ip := range ips {
			sv := probe.Service{IP: ip, Port: port, Protocol: proto}
			s.Services = append(s.Services, sv)
			for _, n := range sni {
				s.Names = append(s.Names, probe.NameAt{Name: n, Service: sv})
			}
		}
	}
	return s, nil
}

// resolveTarget returns host's addresses, sorted: its A and AAAA records
// asked through r (certplan's own resolver, following CNAMEs, for
// --resolver), or the system's resolver when r is nil. With r, a failed
// lookup of one type is an error only when the other found nothing.
func resolveTarget(ctx context.Context, r *dnscheck.Resolver, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	if r == nil {
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			out = append(out, a.Unmap())
		}
	} else {
		var errs []error
		nx := true
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			ans, err := r.Lookup(ctx, host, qt)
			if err != nil {
				errs = append(errs, err)
				nx = false
				continue
			}
			nx = nx && ans.NXDomain
			for _, rr := range ans.Records {
				switch rr := rr.(type) {
				case *dns.A:
					if a, ok := netip.AddrFromSlice(rr.A.To4()); ok {
						out = append(out, a)
					}
				case *dns.AAAA:
					if a, ok := netip.AddrFromSlice(rr.AAAA.To16()); ok {
						out = append(out, a.Unmap())
					}
				}
			}
		}
		switch {
		case len(out) > 0:
		case len(errs) > 0:
			return nil, errors.Join(errs...)
		case nx:
			return nil, fmt.Errorf("%s: no such name (NXDOMAIN)", host)
		default:
			return nil, fmt.Errorf("%s: no A or AAAA record", host)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}

// parseTarget parses [PROTO:]HOST:PORT; HOST may be [IPv6].
func parseTarget(t string) (proto, host string, port int, err error) {
	rest := t
	if p, r, ok := strings.Cut(t, ":"); ok && probe.IsProtocol(strings.ToLower(p)) {
		proto, rest = strings.ToLower(p), r
	}
	host, ps, err := net.SplitHostPort(rest)
	if err != nil || host == "" {
		return "", "", 0, fmt.Errorf("want [PROTO:]HOST:PORT, such as 192.0.2.10:587 or smtp:[2001:db8::1]:2525")
	}
	port, err = strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return "", "", 0, fmt.Errorf("bad port %q", ps)
	}
	if proto == "" {
		var ok bool
		if proto, ok = probe.ProtocolFor(port); !ok {
			return "", "", 0, fmt.Errorf("port %d is not a well-known mail port; name the protocol, such as smtp:%s", port, rest)
		}
	}
	return proto, host, port, nil
}

// writeProbeText writes what breaks first, in admin words, then the
// coverage matrix, the default certificate of every IP and port, and a
// summary.
func writeProbeText(w io.Writer, r *model.ProbeReport) {
	bad := 0
	// What breaks, one line per name and IP: the ports with the same story
	// share the line ("on 127.0.0.2:25,465,587").
	for _, g := range groupCoverage(r.Coverage) {
		if !g.rows[0].OK() {
			fmt.Fprintln(w, brokenLine(g.rows[0].Name, g.endpoint(), &g.rows[0]))
			bad++
		}
	}
	for i := range r.Coverage {
		for _, l := range senderLines(&r.Coverage[i]) {
			fmt.Fprintln(w, l)
		}
		if r.Coverage[i].Refused() {
			bad++
		}
	}
	for _, e := range r.Endpoints {
		if e.Error != "" && e.SNI == "" {
			fmt.Fprintf(w, "%s %s — no certificate: %s\n", hostPort(e.IP, e.Port), e.Protocol, e.Error)
			bad++
		}
	}
	if bad == 0 {
		fmt.Fprintln(w, "every name verifies for every client, with and without SNI")
	}
	writeCoverageMatrix(w, r.Coverage)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tPROTOCOL\tDEFAULT CERTIFICATE (NO SNI)\tNAMES\tNOT AFTER\tTRUST")
	servers := probe.ServerNames(r.Endpoints, r.Hostname)
	for _, e := range r.Endpoints {
		if e.SNI != "" {
			continue
		}
		if e.Leaf == nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t%s\n", hostPort(e.IP, e.Port), e.Protocol, e.ErrorKind)
			continue
		}
		trust := "trusted"
		if !e.Trusted {
			trust = "not trusted"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", hostPort(e.IP, e.Port), e.Protocol, probe.CertName(e.Leaf, servers[e.IP]), len(e.Leaf.DNSNames), e.Leaf.NotAfter, trust)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%d names, %d handshakes (%d failed): %d of %d name/endpoint pairs do not verify for every client\n",
		r.Stats.Names, r.Stats.Endpoints, r.Stats.EndpointErrors, r.Stats.Broken, len(r.Coverage))
	writeSenderSummary(w, r.Coverage)
}

// senderLines says what validating senders do wrong with c's MX host, a
// line per problem: "mx.d.test on 127.0.0.2:25 — DANE senders refuse
// delivery: ...".
func senderLines(c *model.Coverage) []string {
	head := c.Name + " on " + hostPort(c.IP, c.Port) + " — "
	var ls []string
	switch c.DANE {
	case model.SenderFail:
		ls = append(ls, head+"DANE senders refuse delivery: "+c.DANEDetail)
	case model.SenderUnknown:
		ls = append(ls, head+"DANE state unknown: "+c.DANEDetail)
	}
	switch c.MTASTS {
	case model.SenderFail:
		ls = append(ls, head+"MTA-STS senders refuse delivery: "+c.MTASTSDetail)
	case model.SenderWarn:
		ls = append(ls, head+"MTA-STS senders report a failure (\"enforce\" would refuse delivery): "+c.MTASTSDetail)
	}
	return ls
}

// writeSenderSummary counts the sender verdicts of the MX endpoints, when
// there are any: "2 MX endpoints: DANE 1 ok, 1 fail; MTA-STS 2 none".
func writeSenderSummary(w io.Writer, cov []model.Coverage) {
	n := 0
	dane, sts := map[string]int{}, map[string]int{}
	for _, c := range cov {
		if c.DANE == "" && c.MTASTS == "" {
			continue
		}
		n++
		dane[c.DANE]++
		sts[c.MTASTS]++
	}
	if n == 0 {
		return
	}
	count := func(m map[string]int) string {
		var parts []string
		for _, v := range []string{model.SenderOK, model.SenderFail, model.SenderWarn, model.SenderUnknown, model.SenderNone} {
			if m[v] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", m[v], v))
			}
		}
		return strings.Join(parts, ", ")
	}
	fmt.Fprintf(w, "%s: DANE %s; MTA-STS %s\n", plural(n, "MX endpoint"), count(dane), count(sts))
}

// coverageGroup is the coverage rows of one name on one IP whose verdicts
// and details are the same on every port.
type coverageGroup struct {
	rows []model.Coverage
}

func (g coverageGroup) endpoint() string {
	ports := make([]string, len(g.rows))
	for i, c := range g.rows {
		ports[i] = strconv.Itoa(c.Port)
	}
	host := g.rows[0].IP
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strings.Join(ports, ",")
}

// groupCoverage groups rows (sorted by name, IP, port) whose name, IP and
// story (the broken line as printed, or ok) are the same.
func groupCoverage(rows []model.Coverage) []coverageGroup {
	var out []coverageGroup
	story := func(c *model.Coverage) string {
		if c.OK() {
			return c.Name + " " + c.IP + " ok"
		}
		return c.IP + " " + brokenLine(c.Name, "", c)
	}
	last := ""
	for i := range rows {
		st := story(&rows[i])
		if n := len(out); n > 0 && st == last {
			out[n-1].rows = append(out[n-1].rows, rows[i])
			continue
		}
		out = append(out, coverageGroup{rows: []model.Coverage{rows[i]}})
		last = st
	}
	return out
}

// verdictMark is a verdict in one character, for the matrix.
var verdictMark = map[string]string{
	model.VerdictOK: "+", model.VerdictMismatch: "M", model.VerdictExpired: "E",
	model.VerdictUntrusted: "U", model.VerdictError: "X",
}

// writeCoverageMatrix prints one row per name and IP and one column per
// port; a cell is two marks, with SNI then without ("+M": with SNI ok,
// without SNI a name mismatch).
func writeCoverageMatrix(w io.Writer, rows []model.Coverage) {
	cells := make([]report.MatrixCell, len(rows))
	for i, c := range rows {
		cells[i] = report.MatrixCell{Name: c.Name, IP: c.IP, Port: c.Port, Mark: verdictMark[c.WithSNI] + verdictMark[c.WithoutSNI]}
	}
	report.WriteMatrix(w, "", cells, "(each cell: with SNI, then without; + ok, M name mismatch, E expired, U untrusted, X no certificate, . not probed)")
}

// brokenLine says what goes wrong for one name, as in
// "smtp.domain2.test on 127.0.0.2:587 — clients without SNI get
// server.main-domain.test: name mismatch (with SNI: ok)".
func brokenLine(name, endpoint string, c *model.Coverage) string {
	head := name + " on " + endpoint + " — "
	get := func(verdict, detail string) string {
		if verdict == model.VerdictError {
			return "fail: " + detail
		}
		return "get " + detail
	}
	switch {
	case c.WithSNI == model.VerdictOK:
		return head + "clients without SNI " + get(c.WithoutSNI, c.WithoutSNIDetail) + " (with SNI: ok)"
	case c.WithoutSNI == model.VerdictOK:
		return head + "clients with SNI " + get(c.WithSNI, c.WithSNIDetail) + " (without SNI: ok)"
	case c.WithSNIDetail == c.WithoutSNIDetail:
		return head + "all clients " + get(c.WithSNI, c.WithSNIDetail)
	}
	return head + "clients without SNI " + get(c.WithoutSNI, c.WithoutSNIDetail) + "; with SNI they " + get(c.WithSNI, c.WithSNIDetail)
}

func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
