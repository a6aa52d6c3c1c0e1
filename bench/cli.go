package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/certplan/certplan/internal/cli"
	"github.com/certplan/certplan/model"
)

// cliEnv makes this program certplan itself (cli.Main with its
// arguments): the cli stage runs the commands as a user would, each in a
// process of its own, so that their peak RSS is the command's alone.
const cliEnv = "CERTPLAN_BENCH_CLI"

// cliMain runs certplan; main and TestMain call it when cliEnv is set.
// cliEnv's value is a file where it writes its peak RSS (VmHWM) at the
// end: the child's getrusage ru_maxrss would not do, as Linux carries
// the forking parent's peak over into it.
func cliMain() int {
	code := cli.Main()
	if err := os.WriteFile(os.Getenv(cliEnv), []byte(strconv.FormatUint(peakRSS(), 10)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return code
}

// CLIResult is the cli stage: `certplan inventory --format json -o FILE`
// of every domain and `certplan plan --inventory FILE`, each in a child
// process, with the child's peak RSS (getrusage's ru_maxrss, which is
// VmHWM) and its time.
type CLIResult struct {
	Domains int `json:"domains"`
	// Format is the inventory's --format: json, or jsonl.
	Format        string        `json:"format"`
	InventoryRSS  uint64        `json:"inventory_peak_rss_bytes"`
	InventoryTime time.Duration `json:"inventory_elapsed_ns"`
	// InventoryCPU is the child's user and system time.
	InventoryCPU   time.Duration `json:"inventory_cpu_ns"`
	InventoryBytes int64         `json:"inventory_file_bytes"`
	// Marshalled is whether the JSON file is byte for byte model.Marshal
	// of the inventory it holds (checked on worlds of 10,000 domains at
	// most).
	Marshalled bool          `json:"marshalled,omitempty"`
	PlanRSS    uint64        `json:"plan_peak_rss_bytes"`
	PlanTime   time.Duration `json:"plan_elapsed_ns"`
}

// cliStages runs the inventory and the plan as commands, JSON first.
func (st *stages) cliStages(ctx context.Context) error {
	dir := st.cfg.Keep
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "certplan-bench-cli-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	list := filepath.Join(dir, "domains.txt")
	if err := os.WriteFile(list, []byte(strings.Join(st.domains, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	for _, format := range st.cfg.CLIFormats {
		r, err := st.cliRun(ctx, dir, list, format)
		if err != nil {
			return err
		}
		st.log.logf("certplan inventory --format %s -o FILE: %d domains in %s (cpu %s), peak rss %s, %s; plan --inventory FILE: %s, peak rss %s",
			format, r.Domains, dur(r.InventoryTime), dur(r.InventoryCPU), mib(r.InventoryRSS), mib(uint64(r.InventoryBytes)), dur(r.PlanTime), mib(r.PlanRSS))
		st.res.CLI = append(st.res.CLI, r)
	}
	return nil
}

// cliRun runs the two commands once with the inventory in format.
func (st *stages) cliRun(ctx context.Context, dir, list, format string) (CLIResult, error) {
	r := CLIResult{Domains: len(st.domains), Format: format}
	inv := filepath.Join(dir, "inventory."+format)
	args := []string{"inventory", "--domains", list, "--resolver", st.ch.Ready.DNS,
		"--concurrency", fmt.Sprint(st.cfg.Concurrency), "--format", format, "-o", inv}
	for _, ip := range mailIPs {
		args = append(args, "--server-ip", ip)
	}
	var err error
	// Exit code 3: the world's NXDOMAIN domains fail, as they should.
	if r.InventoryRSS, r.InventoryTime, r.InventoryCPU, err = runCLI(ctx, args, 3); err != nil {
		return r, err
	}
	fi, err := os.Stat(inv)
	if err != nil {
		return r, err
	}
	r.InventoryBytes = fi.Size()
	if format == "json" && r.Domains <= 10_000 {
		if r.Marshalled, err = marshalled(inv); err != nil {
			return r, err
		}
	}
	args = []string{"plan", "--inventory", inv, "--no-probe", "--hostname", "server.hosting1.test", "--format", "json", "-o", filepath.Join(dir, "plan-"+format+".json")}
	// Exit code 3 again: the failed domains are reported in the plan.
	r.PlanRSS, r.PlanTime, _, err = runCLI(ctx, args, 3)
	return r, err
}

// runCLI runs certplan with args in a child process and returns its peak
// RSS, its time and its CPU time; an exit code other than 0 or okCode is
// an error.
func runCLI(ctx context.Context, args []string, okCode int) (rss uint64, el, cpu time.Duration, err error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, 0, err
	}
	cmd := exec.CommandContext(ctx, self, args...)
	hwm := filepath.Join(os.TempDir(), fmt.Sprintf("certplan-bench-hwm-%d", os.Getpid()))
	defer os.Remove(hwm)
	cmd.Env = append(os.Environ(), cliEnv+"="+hwm)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	el = time.Since(start)
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == okCode {
		err = nil
	}
	if err != nil {
		return 0, el, 0, fmt.Errorf("certplan %s: %w: %s", args[0], err, lastLines(stderr.String(), 5))
	}
	cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	b, err := os.ReadFile(hwm)
	if err != nil {
		return 0, el, cpu, fmt.Errorf("certplan %s: peak RSS: %w", args[0], err)
	}
	rss, err = strconv.ParseUint(string(b), 10, 64)
	return rss, el, cpu, err
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// marshalled reports whether the inventory document at path is what
// model.Marshal writes for the inventory it holds: the streamed writer's
// output is the in-memory one's.
func marshalled(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var inv model.Inventory
	if err := model.ReadFile(path, model.KindInventory, &inv); err != nil {
		return false, err
	}
	m, err := model.Marshal(&inv)
	return bytes.Equal(m, b), err
}
