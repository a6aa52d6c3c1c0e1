package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// judge fills Targets from the measurements: issue 7's targets, as ratios
// measured in the same run.
func (r *Results) judge() {
	r.Targets = nil
	add := func(name string, v float64, want string, met bool) {
		r.Targets = append(r.Targets, Target{Name: name, Value: v, Want: want, Met: met})
	}
	if inv := r.DNS.Inventory; inv != nil {
		add("inventory q/s ÷ dns ceiling q/s", inv.Ratio, ">= 0.70", inv.Ratio >= 0.70)
		if inv.ClientCPUus > 0 {
			x := r.DNS.CeilingClientCPUus / inv.ClientCPUus
			add("dns ceiling client cpu ÷ inventory cpu (per query)", x, ">= 0.70", x >= 0.70)
		}
		gib := float64(inv.PeakRSS) / (1 << 30)
		add(fmt.Sprintf("inventory peak RSS, GiB (%d domains)", inv.Domains), gib, "< 1", gib < 1)
	}
	if p := r.TLS.Probe; p != nil {
		add("probe/s ÷ tls ceiling/s", p.Ratio, ">= 0.80", p.Ratio >= 0.80)
		if p.ClientCPUus > 0 {
			x := r.TLS.CeilingClientCPUus / p.ClientCPUus
			add("tls ceiling client cpu ÷ probe client cpu (per handshake)", x, ">= 0.80", x >= 0.80)
		}
	}
	if len(r.Plan) == 2 && r.Plan[0].Elapsed > 0 {
		x := r.Plan[1].Elapsed.Seconds() / r.Plan[0].Elapsed.Seconds()
		add(fmt.Sprintf("plan %d names ÷ plan %d names (time)", r.Plan[1].Names, r.Plan[0].Names), x, "<= 15", x <= 15)
	}
	for _, c := range r.CLI {
		// Issue 14's memory target, for 100,000 domains (2.5 GiB for 1,000,000).
		limit, want := float64(300), "<= 300"
		if c.Domains > 100_000 {
			limit, want = 2560, "<= 2560"
		}
		x, y := float64(c.InventoryRSS)/(1<<20), float64(c.PlanRSS)/(1<<20)
		add(fmt.Sprintf("certplan inventory --format %s peak RSS, MiB (%d domains; issue 14)", c.Format, c.Domains), x, want, x <= limit)
		add(fmt.Sprintf("certplan plan --inventory FILE (%s) peak RSS, MiB (issue 14)", c.Format), y, want, y <= limit)
	}
	for _, d := range r.TLS.Dead {
		add(fmt.Sprintf("dead hosts, %d at once: time ÷ bound", d.Concurrency), d.Elapsed.Seconds()/d.Bound.Seconds(), "<= 1", d.WithinBound)
	}
	if d := r.DNS.Drop; d != nil {
		add("dropped queries: time ÷ bound", d.Elapsed.Seconds()/d.Bound.Seconds(), "<= 1", d.WithinBound)
		// A slow domain must not hold back the others' results.
		add("dropped queries: live results out ÷ live alone", d.LiveEmittedBy.Seconds()/max(d.CleanTime.Seconds(), 0.001), "<= 1.2 (+250 ms)", d.LiveEmittedBy <= d.CleanTime*12/10+250*time.Millisecond)
	}
	if q := r.DNS.QPSCap; q != nil {
		add("--qps: rate sent ÷ cap", q.QPS/q.Cap, "<= 1.05 (bucket burst)", q.WithinCap)
	}
	// Issue 20's targets.
	if inv := r.DNS.Inventory; inv != nil && inv.Domains > 0 {
		// Without the questions DANE added since (issue 18), so that the
		// figure stays comparable; the table shows them apart.
		x := float64(inv.Queries-inv.DANEQueries) / float64(inv.Domains)
		add("inventory questions a domain, DANE's apart (issue 20)", x, "<= 15", x <= 15)
	}
	if u := r.DNS.Unbound; u != nil && u.Domains == 10_000 {
		add("10,000 domains through unbound, seconds (issue 20)", u.Elapsed.Seconds(), "<= 5", u.Elapsed <= 5*time.Second)
	}
	if u := r.DNS.Unbound; u != nil && u.Ceiling != nil && u.Ceiling.Elapsed > 0 {
		// Proposed in issue 20's notes in place of the 5 s, which is below
		// what the resolver gives any client on this machine: certplan
		// against the minimal client asking the same questions through
		// the same resolver.
		x := u.ceilingRatio()
		add("through unbound ÷ its ceiling, same questions (issue 20, proposed)", x, "<= 1.10", x <= 1.10)
	}
	if c := r.DNS.Cut; c != nil {
		add("SRV cut: same finds as without it (1 = yes)", b2f(c.Same), "= 1", c.Same)
	}
}

// printUnbound prints the resolver stage's rows: the best run, its CPU by
// process, and the ceiling through the same resolver.
func printUnbound(tw io.Writer, u *UnboundResult, cores int) {
	fmt.Fprintf(tw, "%s domains through unbound\t%s\t%.2f questions a domain (%d, DANE's %d apart), %d forwarded to the responder, unbound cpu %s, %d failed; %s, cold cache each run; runs %s\n",
		thousands(u.Domains), dur(u.Elapsed), float64(u.Questions-u.DANE)/float64(u.Domains), u.Questions-u.DANE, u.DANE, u.Forwarded, dur(u.UnboundCPU), u.Failed, u.Version, seconds(u.Runs))
	fmt.Fprintf(tw, "  cpu of the best run\t%s\tunbound %s, certplan %s, the responder %s (%d cores)\n",
		dur(u.UnboundCPU+u.CertplanCPU+u.ResponderCPU), dur(u.UnboundCPU), dur(u.CertplanCPU), dur(u.ResponderCPU), cores)
	if c := u.Ceiling; c != nil {
		fmt.Fprintf(tw, "  ceiling through unbound\t%s\tthe minimal client asking the same %d questions through a cold unbound: %d lost, %d forwarded; cpu: unbound %s, client %s, responder %s; certplan ÷ ceiling %.2f\n",
			dur(c.Elapsed), c.Queries, c.Lost, c.Forwarded, dur(c.UnboundCPU), dur(c.ClientCPU), dur(c.ResponderCPU), u.ceilingRatio())
	}
}

// thousands is n with a comma between thousands: 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// seconds is "7.81, 8.02 s".
func seconds(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, ", ") + " s"
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// byType is "A 6113, AAAA 1870, ...", the counts in the order of the
// types' names.
func byType[T int | int64](m map[string]T) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(keys, ", ")
}

func rate(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2f M", x/1e6)
	case x >= 1e4:
		return fmt.Sprintf("%.1f K", x/1e3)
	default:
		return fmt.Sprintf("%.0f", x)
	}
}

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
}

// printTable writes the results for people.
func (r *Results) printTable(w io.Writer) {
	fmt.Fprintf(w, "certplan bench (%s): %s, %d cores (GOMAXPROCS %d), %s, %s\n\n", r.Config.Mode, r.GoVersion, r.Cores, r.GOMAXPROCS, r.OS, r.Date)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tvalue\tdetail")
	d := r.DNS
	if d.Ceiling.Answered > 0 {
		fmt.Fprintf(tw, "dns responder capacity\t%s q/s\tbatching client, 256 in flight\n", rate(d.Responder.QPS))
		fmt.Fprintf(tw, "dns ceiling\t%s q/s\t%d queries, %d in flight, %s; cpu/query: client %.1f µs, responder %.1f µs\n",
			rate(d.Ceiling.QPS), d.Ceiling.Answered, r.Config.Concurrency, dur(d.Ceiling.Elapsed), d.CeilingClientCPUus, d.CeilingResponderCPUus)
	}
	if t := d.Transport; t != nil {
		fmt.Fprintf(tw, "dns transport alone\t%s q/s\t%d queries in %s, ratio %.2f; cpu/query: client %.1f µs (user %.1f)\n",
			rate(t.QPS), t.Queries, dur(t.Elapsed), t.Ratio, t.ClientCPUus, t.ClientUserus)
	}
	if inv := d.Inventory; inv != nil {
		fmt.Fprintf(tw, "certplan inventory\t%s q/s\t%d domains in %s, %s domains/s, %d queries (%d over tcp), ratio %.2f\n",
			rate(inv.QPS), inv.Domains, dur(inv.Elapsed), rate(inv.DomainsPerSec), inv.Queries, inv.TCP, inv.Ratio)
		fmt.Fprintf(tw, "  inventory memory\t%s\tpeak RSS; peak heap %s; %d names; %d domains failed (%d expected: NXDOMAIN)\n",
			mib(inv.PeakRSS), mib(inv.PeakHeap), inv.Names, inv.DomainsFailed, inv.FailedWant)
	}
	if inv := d.Inventory; inv != nil && inv.Domains > 0 {
		fmt.Fprintf(tw, "  questions a domain\t%.2f\t%s; DANE's apart: %d more (%.2f a domain: the validation probe, TLSA at the submission ports)\n",
			float64(inv.Queries-inv.DANEQueries)/float64(inv.Domains), byType(inv.ByType), inv.DANEQueries, float64(inv.DANEQueries)/float64(inv.Domains))
	}
	if c := d.Cut; c != nil {
		same := "the same finds"
		if !c.Same {
			same = "DIFFERENT finds: " + c.Diff
		}
		fmt.Fprintf(tw, "  without the SRV cut\t%.2f\tquestions a domain with --no-nxdomain-cut (%.2f with the cut), %d domains: %s\n",
			float64(c.QueriesNoCut)/float64(c.Domains), float64(c.Queries)/float64(c.Domains), c.Domains, same)
	}
	if dr := d.Drop; dr != nil {
		fmt.Fprintf(tw, "dns with dropped queries\t%s\t%d domains, %d under a silent server; clean %s; bound %s (clean + %d × %s + slack); in series %s\n",
			dur(dr.Elapsed), dr.Domains, dr.Dead, dur(dr.CleanTime), dur(dr.Bound), dr.Tries, dur(dr.Timeout), dur(dr.InSeries))
		fmt.Fprintf(tw, "  results stream\t%s\tevery live domain's result out by then; the first silent domain's at %s\n", dur(dr.LiveEmittedBy), dur(dr.FirstDeadEmitted))
	}
	if q := d.QPSCap; q != nil {
		fmt.Fprintf(tw, "dns with --qps %.0f\t%s q/s\t%d domains, %d queries in %s\n", q.Cap, rate(q.QPS), q.Domains, q.Queries, dur(q.Elapsed))
	}
	if u := d.Unbound; u != nil {
		printUnbound(tw, u, r.Cores)
	}
	t := r.TLS
	if t.Ceiling.Handshakes > 0 {
		fmt.Fprintf(tw, "tls ceiling\t%s /s\t%d handshakes, %d at once, %s; client cpu %.0f µs a handshake\n", rate(t.Ceiling.PerSecond), t.Ceiling.Handshakes, r.Config.Concurrency, dur(t.Ceiling.Elapsed), t.CeilingClientCPUus)
	}
	if p := t.Probe; p != nil {
		fmt.Fprintf(tw, "certplan probe\t%s /s\t%d endpoints in %s, %d errors, ratio %.2f; client cpu %.0f µs a handshake\n", rate(p.PerSecond), p.Endpoints, dur(p.Elapsed), p.Errors, p.Ratio, p.ClientCPUus)
	}
	for _, dd := range t.Dead {
		fmt.Fprintf(tw, "probe with dead hosts\t%s\t%d endpoints, %d never answer, %d at once; live alone %s; bound %s (%d × %s + live + slack); in series %s\n",
			dur(dd.Elapsed), dd.Endpoints, dd.Dead, dd.Concurrency, dur(dd.LiveTime), dur(dd.Bound), dd.Waves, dur(dd.Timeout), dur(dd.InSeries))
	}
	for _, p := range r.Plan {
		fmt.Fprintf(tw, "certplan plan\t%s\t%d names over %d IPs, %d certificates, peak heap %s\n", dur(p.Elapsed), p.Names, len(mailIPs), p.Certificates, mib(p.PeakHeap))
	}
	for _, c := range r.CLI {
		fmt.Fprintf(tw, "inventory command memory\t%s\tpeak RSS of `certplan inventory --format %s -o FILE`, %d domains, %s (cpu %s), file %s\n", mib(c.InventoryRSS), c.Format, c.Domains, dur(c.InventoryTime), dur(c.InventoryCPU), mib(uint64(c.InventoryBytes)))
		fmt.Fprintf(tw, "  plan --inventory memory\t%s\tpeak RSS of `certplan plan --inventory FILE` (%s), %s\n", mib(c.PlanRSS), c.Format, dur(c.PlanTime))
	}
	tw.Flush()
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets (issues 7 and 20)")
		if r.Config.Mode == "small" {
			fmt.Fprintln(w, "  (small mode: runs too short for the ratios to mean much; run the full mode)")
		}
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, x := range r.Targets {
			ok := "MET"
			if !x.Met {
				ok = "not met"
			}
			fmt.Fprintf(tw, "  %s\t%.2f\t%s\t%s\n", x.Name, x.Value, x.Want, ok)
		}
		tw.Flush()
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// writeJSON writes the results to path.
func (r *Results) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
