package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/certplan/certplan/bench/internal/fastdns"
	"github.com/certplan/certplan/bench/internal/mailbench"
	"github.com/certplan/certplan/bench/internal/synth"
)

// Server IPs of the synthetic host, and where the dead hosts live.
var (
	mailIPs  = synth.DefaultServerIPs
	tarpitIP = "127.0.0.6"
)

// Results is everything a run measured; it is the JSON file's content.
type Results struct {
	Date       string         `json:"date"`
	GoVersion  string         `json:"go_version"`
	Cores      int            `json:"cores"`
	GOMAXPROCS int            `json:"gomaxprocs"`
	OS         string         `json:"os"`
	Config     config         `json:"config"`
	World      map[string]int `json:"world"`
	DNS        DNSResults     `json:"dns"`
	TLS        TLSResults     `json:"tls"`
	Plan       []PlanResult   `json:"plan,omitempty"`
	CLI        []CLIResult    `json:"cli,omitempty"`
	Targets    []Target       `json:"targets"`
	Notes      []string       `json:"notes,omitempty"`
}

// DNSResults are the DNS side.
type DNSResults struct {
	Questions int `json:"questions"` // the ceiling's query list: the inventory's mix
	// Responder is the responder's capacity, measured with a batching
	// client cheaper than the minimal one.
	Responder fastdns.BlastResult `json:"responder"`
	Ceiling   fastdns.BlastResult `json:"ceiling"`
	// CPU per answered query during the ceiling, in microseconds.
	CeilingClientCPUus    float64 `json:"ceiling_client_cpu_us"`
	CeilingResponderCPUus float64 `json:"ceiling_responder_cpu_us"`
	// The user-space part of the client's CPU a query (the rest is the
	// kernel's), in microseconds.
	CeilingClientUserus float64          `json:"ceiling_client_user_us"`
	CeilingByType       map[string]int64 `json:"ceiling_by_type"`
	// Transport is measured with --transport only.
	Transport *TransportResult `json:"transport,omitempty"`
	Inventory *InventoryResult `json:"inventory,omitempty"`
	Drop      *DropResult      `json:"drop,omitempty"`
	QPSCap    *QPSResult       `json:"qps_cap,omitempty"`
	Cut       *CutResult       `json:"cut,omitempty"`
	Unbound   *UnboundResult   `json:"unbound,omitempty"`
}

// CutResult compares inventories with and without the SRV cut (RFC 8020,
// dnscheck.Options.NoNXDomainCut) on the same domains: same finds, fewer
// questions.
type CutResult struct {
	Domains      int            `json:"domains"`
	Queries      int            `json:"queries"`
	QueriesNoCut int            `json:"queries_no_cut"`
	ByType       map[string]int `json:"by_type"`
	ByTypeNoCut  map[string]int `json:"by_type_no_cut"`
	Same         bool           `json:"same"`
	Diff         string         `json:"diff,omitempty"` // the first difference
}

// QPSResult is an inventory with a query rate cap (--qps): the rate sent
// must stay under the cap.
type QPSResult struct {
	Cap       float64       `json:"cap"`
	Domains   int           `json:"domains"`
	Queries   int64         `json:"queries"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	QPS       float64       `json:"qps"`
	WithinCap bool          `json:"within_cap"`
}

// InventoryResult is certplan's inventory of every domain.
type InventoryResult struct {
	Domains       int   `json:"domains"`
	DomainsFailed int   `json:"domains_failed"`
	FailedWant    int   `json:"domains_failed_expected"` // the world's NXDOMAIN domains
	Names         int   `json:"names"`
	Queries       int64 `json:"queries"` // counted by the responder
	LibQueries    int   `json:"library_queries"`
	// DANEQueries are the questions the DANE checks add (issue 18: the
	// resolver's validation probe, TLSA at the submission ports), in
	// Queries; issue 20's questions per domain leave them out.
	DANEQueries   int64         `json:"dane_queries"`
	Elapsed       time.Duration `json:"elapsed_ns"`
	QPS           float64       `json:"qps"`
	DomainsPerSec float64       `json:"domains_per_sec"`
	Ratio         float64       `json:"ratio_to_ceiling"`
	PeakHeap      uint64        `json:"peak_heap_bytes"`
	PeakRSS       uint64        `json:"peak_rss_bytes"`
	ClientCPUus   float64       `json:"client_cpu_us_per_query"`
	// ClientUserus is the user-space part of ClientCPUus.
	ClientUserus float64 `json:"client_user_us_per_query"`
	// ResponderCPUus is the responder's CPU a query while it answered the
	// inventory (compare the ceiling's ceiling_responder_cpu_us).
	ResponderCPUus float64          `json:"responder_cpu_us_per_query"`
	ByType         map[string]int64 `json:"by_type"`
	Truncated      int64            `json:"truncated"`
	TCP            int64            `json:"tcp"`
}

// DropResult is the dropped-queries case: some domains' name server never
// answers; they must cost about one query timeout (times the tries) in
// parallel, not one each in series.
type DropResult struct {
	Domains     int           `json:"domains"`
	Dead        int           `json:"dead"`
	Failed      int           `json:"failed"`
	Timeout     time.Duration `json:"timeout_ns"`
	Tries       int           `json:"tries"`
	CleanTime   time.Duration `json:"clean_elapsed_ns"` // the same domains without the dead ones
	Elapsed     time.Duration `json:"elapsed_ns"`
	Bound       time.Duration `json:"bound_ns"` // clean + tries × timeout, plus slack
	InSeries    time.Duration `json:"in_series_ns"`
	WithinBound bool          `json:"within_bound"`
	// Results stream: the live domains' results were all out by
	// LiveEmittedBy, while the first silent domain's came at
	// FirstDeadEmitted.
	LiveEmittedBy    time.Duration `json:"live_emitted_by_ns"`
	FirstDeadEmitted time.Duration `json:"first_dead_emitted_ns"`
}

// TLSResults are the handshake side.
type TLSResults struct {
	Targets int                     `json:"targets"`
	Ceiling mailbench.CeilingResult `json:"ceiling"`
	// Every run's rate, and the least client CPU per handshake: CPU time
	// is far less disturbed than rates by load from elsewhere.
	CeilingRuns        []float64    `json:"ceiling_runs"`
	CeilingClientCPUus float64      `json:"ceiling_client_cpu_us"`
	Probe              *ProbeResult `json:"probe,omitempty"`
	ProbeRuns          []float64    `json:"probe_runs,omitempty"`
	Dead               []DeadResult `json:"dead,omitempty"`
}

// ProbeResult is certplan's probe of every target.
type ProbeResult struct {
	Endpoints   int           `json:"endpoints"`
	Errors      int           `json:"errors"`
	FirstError  string        `json:"first_error,omitempty"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	PerSecond   float64       `json:"per_second"`
	Ratio       float64       `json:"ratio_to_ceiling"`
	ClientCPUus float64       `json:"client_cpu_us"`
	CoverageOK  int           `json:"coverage_ok_with_sni"`
	CoverageAll int           `json:"coverage_rows"`
}

// DeadResult is the dead-hosts case: endpoints of which some accept and
// never answer.
type DeadResult struct {
	Concurrency int           `json:"concurrency"`
	Endpoints   int           `json:"endpoints"`
	Dead        int           `json:"dead"`
	Timeout     time.Duration `json:"timeout_ns"`
	LiveTime    time.Duration `json:"live_elapsed_ns"` // the live endpoints alone
	Elapsed     time.Duration `json:"elapsed_ns"`
	Waves       int           `json:"waves"`    // ceil(dead / concurrency): timeouts that cannot overlap
	Bound       time.Duration `json:"bound_ns"` // waves × timeout + live time, plus slack
	InSeries    time.Duration `json:"in_series_ns"`
	WithinBound bool          `json:"within_bound"`
	TimedOut    int           `json:"timed_out"`
	LiveErrors  int           `json:"live_errors"`
}

// PlanResult is one planning run.
type PlanResult struct {
	Names        int           `json:"names"`
	Certificates int           `json:"certificates"`
	Elapsed      time.Duration `json:"elapsed_ns"`
	PeakHeap     uint64        `json:"peak_heap_bytes"`
}

// Target is one of issue 7's targets, judged in this run.
type Target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Want  string  `json:"want"`
	Met   bool    `json:"met"`
}

// logf reports progress on stderr.
type logger struct {
	w     io.Writer
	start time.Time
}

func (l *logger) logf(format string, args ...any) {
	fmt.Fprintf(l.w, "[%6.1fs] %s\n", time.Since(l.start).Seconds(), fmt.Sprintf(format, args...))
}

// run runs every stage. It returns what it measured even on error.
func run(ctx context.Context, cfg config, progress io.Writer) (*Results, error) {
	log := &logger{w: progress, start: time.Now()}
	res := &Results{
		Date:       time.Now().UTC().Format(time.RFC3339),
		GoVersion:  runtime.Version(),
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		Config:     cfg,
	}
	log.logf("starting the servers (%d domains) and building the query list", cfg.Domains)
	ch, err := startChild(childConfig{
		Domains: cfg.Domains, DeadDomains: cfg.DeadZones, Seed: cfg.Seed,
		DNSSockets: cfg.DNSSockets, MailIPs: mailIPs, TarpitIP: tarpitIP, SNINames: sniNamesFor(cfg.Probes, len(mailIPs)*len(mailProtos)),
	})
	if err != nil {
		return nil, err
	}
	defer ch.Close()

	w := synth.Generate(synth.Config{Domains: cfg.Domains, DeadDomains: cfg.DeadZones, Seed: cfg.Seed})
	res.World = w.Counts
	// The ceiling's query list, for the dns stage alone (at 1,000,000
	// domains it is 14 million questions).
	var packed *fastdns.Queries
	if cfg.Only == nil || cfg.Only["dns"] {
		qs := w.Questions(w.Domains)
		res.DNS.Questions = len(qs)
		packed = fastdns.PackQueries(qs, true)
		log.logf("%d questions (%.1f a domain)", packed.Len(), float64(packed.Len())/float64(cfg.Domains))
	}
	// Only the domain lists stay: the world's records would weigh on the
	// garbage collector of the measured process.
	st := &stages{cfg: cfg, res: res, log: log, ch: ch, domains: w.Domains, deadDomains: w.DeadDomains, nxdomains: w.Counts["nxdomain"]}
	if cfg.Only == nil || cfg.Only["unbound"] {
		st.unboundQs = fastdns.PackQueries(w.Questions(w.Domains[:min(cfg.UnboundDomains, len(w.Domains))]), true)
	}
	w = nil
	runtime.GC()
	log.logf("responder at %s", ch.Ready.DNS)

	for _, stage := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"dns", func(ctx context.Context) error { return st.inventoryStages(ctx, packed) }},
		{"tls", st.probeStages},
		{"plan", st.planStages},
		{"unbound", st.unboundStages},
		{"cli", st.cliStages},
	} {
		if cfg.Only != nil && !cfg.Only[stage.name] {
			continue
		}
		if err := stage.run(ctx); err != nil {
			return res, err
		}
	}
	res.judge()
	return res, nil
}

type stages struct {
	cfg config
	res *Results
	log *logger
	ch  *child

	domains     []string // the hosted domains
	deadDomains []string // domains under a silent name server
	nxdomains   int      // hosted domains that do not exist
	// unboundQs are the questions certplan asks for the unbound stage's
	// domains, for its ceiling.
	unboundQs *fastdns.Queries
}

// sniNamesFor returns how many SNI names make probes handshakes over
// services services: each service once without SNI, the rest with.
func sniNamesFor(probes, services int) int {
	return (probes - services + services - 1) / services
}

// dnsCeiling measures the minimal client (with its CPU profile when asked
// and prof is set) and, the first time, the responder's capacity.
func (st *stages) dnsCeiling(ctx context.Context, qs *fastdns.Queries, prof bool) error {
	cfg, res, log := st.cfg, st.res, st.log
	addr := st.ch.Ready.DNS
	if res.DNS.Responder.QPS == 0 {
		r, err := fastdns.Blast(ctx, addr, qs, fastdns.BlastOptions{InFlight: 256, Batch: true})
		if err != nil {
			return fmt.Errorf("responder capacity: %w", err)
		}
		res.DNS.Responder = r
		log.logf("responder capacity (batching client, 256 in flight): %.0f q/s", r.QPS)
	}
	before, err := st.ch.Stats()
	if err != nil {
		return err
	}
	stop := func() {}
	if prof {
		stop = profile(cfg.CPUProfile, "dns-ceiling")
	}
	u0, user0, csw0 := selfTimes()
	r, err := fastdns.Blast(ctx, addr, qs, fastdns.BlastOptions{InFlight: cfg.Concurrency})
	stop()
	if err != nil {
		return fmt.Errorf("dns ceiling: %w", err)
	}
	u1, user1, csw1 := selfTimes()
	csw := csw1 - csw0
	cpu, user := u1-u0, user1-user0
	after, err := st.ch.Stats()
	if err != nil {
		return err
	}
	n := float64(r.Answered)
	cpuUs, userUs := float64(cpu.Microseconds())/n, float64(user.Microseconds())/n
	respUs := float64(after.cpuSince(before).Microseconds()) / n
	log.logf("dns ceiling (%d in flight): %.0f q/s, %d lost, %d over tcp, cpu/query: client %.1f µs (user %.1f), responder %.1f µs (%.1f queries a recvmmsg); context switches a query: client %.2f, responder %.2f", cfg.Concurrency, r.QPS, r.Lost, r.Truncated,
		cpuUs, userUs, respUs, readBatch(before.DNS, after.DNS), float64(csw)/n, float64(after.CSW-before.CSW)/n)
	if r.QPS > res.DNS.Ceiling.QPS {
		res.DNS.Ceiling = r
		res.DNS.CeilingClientCPUus, res.DNS.CeilingClientUserus, res.DNS.CeilingResponderCPUus = cpuUs, userUs, respUs
		res.DNS.CeilingByType = diffTypes(after.DNS.ByType, before.DNS.ByType)
	}
	return nil
}

func diffTypes(a, b map[string]int64) map[string]int64 {
	d := map[string]int64{}
	for k, v := range a {
		if x := v - b[k]; x != 0 {
			d[k] = x
		}
	}
	return d
}

// tlsCeiling runs the bare handshake loop over ts once.
func (st *stages) tlsCeiling(ctx context.Context, ts []mailbench.Target) error {
	cfg, res, log := st.cfg, st.res, st.log
	cpu0 := selfCPU()
	r := mailbench.Ceiling(ctx, ts, cfg.Concurrency, 10*time.Second)
	cpu := float64((selfCPU() - cpu0).Microseconds()) / float64(max(r.Handshakes, 1))
	log.logf("tls ceiling (%d at once): %d handshakes, %.0f/s, client cpu %.0f µs each, %d failed %s", cfg.Concurrency, r.Handshakes, r.PerSecond, cpu, r.Failed, r.FirstError)
	if r.Failed > 0 {
		return fmt.Errorf("tls ceiling: %d handshakes failed: %s", r.Failed, r.FirstError)
	}
	res.TLS.CeilingRuns = append(res.TLS.CeilingRuns, r.PerSecond)
	if r.PerSecond > res.TLS.Ceiling.PerSecond {
		res.TLS.Ceiling = r
	}
	if res.TLS.CeilingClientCPUus == 0 || cpu < res.TLS.CeilingClientCPUus {
		res.TLS.CeilingClientCPUus = cpu
	}
	return nil
}

// probeTargets returns n handshakes over the child's services: each
// service without SNI, then (name, service) pairs with SNI.
func probeTargets(ready childReady, n int) []mailbench.Target {
	var ts []mailbench.Target
	ts = append(ts, ready.Services...)
	for p := 0; len(ts) < n && len(ready.SNINames) > 0; p++ {
		svc := ready.Services[p%len(ready.Services)]
		name := p / len(ready.Services)
		if name >= len(ready.SNINames) {
			break
		}
		svc.SNI = ready.SNINames[name]
		ts = append(ts, svc)
	}
	return ts[:min(n, len(ts))]
}

// selfCPU is this process's user and system CPU time.
func selfCPU() time.Duration {
	cpu, _, _ := selfTimes()
	return cpu
}

// selfTimes is this process's CPU time, user and system, its user time
// alone, and how many times its threads have been switched out,
// voluntarily (to sleep) or not.
func selfTimes() (cpu, user time.Duration, csw int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), time.Duration(ru.Utime.Nano()), ru.Nvcsw + ru.Nivcsw
}

// readBatch is the responder's mean number of queries a recvmmsg between
// two readings of its stats.
func readBatch(before, after fastdns.Stats) float64 {
	return float64(after.UDP-before.UDP) / float64(max(after.UDPReads-before.UDPReads, 1))
}

// memWatch samples the heap while a stage runs, and resets and reads the
// process's peak RSS (Linux: /proc/self/clear_refs "5" resets VmHWM).
type memWatch struct {
	stop     chan struct{}
	done     sync.WaitGroup
	peakHeap uint64
}

func watchMemory() *memWatch {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	m := &memWatch{stop: make(chan struct{})}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	m.done.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			m.peakHeap = max(m.peakHeap, s[0].Value.Uint64())
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	})
	return m
}

// Stop returns the peak heap and peak RSS since watchMemory.
func (m *memWatch) Stop() (heap, rss uint64) {
	close(m.stop)
	m.done.Wait()
	return m.peakHeap, peakRSS()
}

// peakRSS reads VmHWM.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.ParseUint(f[1], 10, 64)
			return n * 1024
		}
	}
	return 0
}

// profile starts a CPU profile to prefix-name.pprof when prefix is set.
func profile(prefix, name string) func() {
	if prefix == "" {
		return func() {}
	}
	f, err := os.Create(prefix + "-" + name + ".pprof")
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: cpu profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "bench: cpu profile: %v\n", err)
		f.Close()
		return func() {}
	}
	// The allocations too: cumulative since the start of the process, so a
	// snapshot before and one after (compare with go tool pprof -base).
	writeAllocs(prefix + "-" + name + "-allocs-before.pprof")
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		writeAllocs(prefix + "-" + name + "-allocs.pprof")
	}
}

func writeAllocs(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.Lookup("allocs").WriteTo(f, 0)
}
