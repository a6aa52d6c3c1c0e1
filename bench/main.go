// Command bench measures certplan's inventory, probe and planner against
// what the machine can do, on loopback.
//
//	go run ./bench            # full: 100,000 domains, 10,000 probes, 1,000,000 names
//	go run ./bench --small    # seconds: 1,000 domains, 200 probes, 10,000 names
//
// It serves a synthetic hosting world (bench/internal/synth) from a
// pre-packed DNS responder and Go mail listeners in a child process,
// measures the ceilings (a minimal DNS client and a bare crypto/tls
// handshake loop doing the same work as certplan minus certplan), then
// certplan's libraries, and prints a table; --out writes the results as
// JSON. Traffic stays on 127.0.0.0/8; every loop is bounded.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	if os.Getenv(cliEnv) != "" {
		os.Exit(cliMain())
	}
	var cfg config
	small := flag.Bool("small", false, "a run of seconds: 1,000 domains, 200 probes, 10,000 names")
	flag.StringVar(&cfg.Out, "out", "", "write the results as JSON to `file`")
	flag.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write CPU profiles of the DNS ceiling client, the inventory, the probe and the plan to `prefix`-{dns-ceiling,inventory,probe,plan,unbound}.pprof, and their allocations to prefix-NAME-allocs{-before,}.pprof (go tool pprof -base)")
	flag.IntVar(&cfg.Domains, "domains", 0, "hosted domains to inventory (default 100,000; 1,000 with --small)")
	flag.IntVar(&cfg.Probes, "probes", 0, "handshakes to probe (default 10,000; 200 with --small)")
	flag.IntVar(&cfg.Concurrency, "concurrency", 64, "queries in flight and handshakes at once, for certplan and the ceilings alike")
	flag.IntVar(&cfg.DNSSockets, "dns-sockets", 4, "UDP sockets of the DNS responder (SO_REUSEPORT)")
	only := flag.String("only", "dns,tls,plan,cli", "stages to run, comma-separated: dns (ceiling, inventory, dropped queries), tls (ceiling, probe, dead hosts), plan, cli (certplan inventory and plan --inventory as commands: peak RSS), unbound")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of the synthetic world")
	cliFormats := flag.String("cli-formats", "", "the cli stage's inventory formats, comma-separated (default json,jsonl)")
	flag.StringVar(&cfg.Keep, "keep", "", "the cli stage writes its domain list, inventories and plans into `dir` and leaves them there (to profile or compare them)")
	flag.BoolVar(&cfg.Transport, "transport", false, "in the dns stage, also measure dnscheck's Resolver alone on the ceiling's questions (no per-domain work), after each ceiling run")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "bench: no arguments expected")
		os.Exit(2)
	}
	if *cliFormats != "" {
		cfg.CLIFormats = strings.Split(*cliFormats, ",")
	}
	cfg.fill(*small)
	cfg.Only = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		cfg.Only[strings.TrimSpace(s)] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	res, err := run(ctx, cfg, os.Stderr)
	if res != nil {
		res.printTable(os.Stdout)
		if cfg.Out != "" {
			if werr := res.writeJSON(cfg.Out); werr != nil && err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: error:", err)
		os.Exit(1)
	}
}

// config sizes a run.
type config struct {
	Mode        string `json:"mode"`
	Domains     int    `json:"domains"`
	Probes      int    `json:"probes"`
	Concurrency int    `json:"concurrency"`
	Seed        uint64 `json:"seed"`
	DNSSockets  int    `json:"dns_sockets"`
	PlanNames   []int  `json:"plan_names"`
	DropDomains int    `json:"drop_domains"` // domains in the dropped-queries case
	CutDomains  int    `json:"cut_domains"`  // domains inventoried with and without the SRV cut
	// UnboundDomains are inventoried through a private unbound.
	UnboundDomains int             `json:"unbound_domains"`
	DeadZones      int             `json:"dead_zones"` // of which under a name server that never answers
	DNSTimeout     time.Duration   `json:"dns_timeout_ns"`
	DeadProbes     int             `json:"dead_probes"` // endpoints in the dead-hosts case
	DeadTimeout    time.Duration   `json:"dead_timeout_ns"`
	Reps           int             `json:"reps"`           // ceiling runs, best kept
	Only           map[string]bool `json:"only,omitempty"` // stages to run; nil runs all
	Deadline       time.Duration   `json:"-"`
	Out            string          `json:"-"`
	CPUProfile     string          `json:"-"`
	Transport      bool            `json:"transport,omitempty"` // measure the Resolver alone too
	Keep           string          `json:"-"`                   // the cli stage's files stay here
	CLIFormats     []string        `json:"cli_formats,omitempty"`
}

func (c *config) fill(small bool) {
	c.Mode = "full"
	def := func(p *int, full, sm int) {
		if *p <= 0 {
			*p = full
			if small {
				*p = sm
			}
		}
	}
	if small {
		c.Mode = "small"
	}
	def(&c.Domains, 100_000, 1_000)
	def(&c.Probes, 10_000, 200)
	def(&c.DropDomains, 1_000, 200)
	def(&c.CutDomains, 10_000, 1_000)
	def(&c.UnboundDomains, 10_000, 1_000)
	def(&c.DeadProbes, 1_000, 100)
	def(&c.Reps, 2, 1)
	def(&c.Concurrency, 64, 64)
	def(&c.DNSSockets, 4, 4)
	if len(c.CLIFormats) == 0 {
		c.CLIFormats = []string{"json", "jsonl"}
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	c.DeadZones = c.DropDomains / 20
	c.PlanNames = []int{100_000, 1_000_000}
	c.DNSTimeout = time.Second
	c.DeadTimeout = 2 * time.Second
	// 30 minutes for 100,000 domains, more for more.
	c.Deadline = 30 * time.Minute * time.Duration(max(1, c.Domains/100_000))
	if small {
		c.PlanNames = []int{1_000, 10_000}
		c.DNSTimeout = 500 * time.Millisecond
		c.DeadTimeout = time.Second
		c.Deadline = 5 * time.Minute
	}
}
