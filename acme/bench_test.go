package acme

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// batch numbers the fresh name sets of a test binary, so that no order
// reuses an authorization an earlier one made valid (Pebble reuses about 1%
// of them even when told not to): every measured order validates every name.
var batch atomic.Int64

// freshNames adds n names that resolve to 127.0.0.2, unknown to Pebble so
// far, and returns them sorted.
func (e *env) freshNames(n int) []string {
	e.t.Helper()
	b := batch.Add(1)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("b%d-%03d.d.test", b, i)
		if err := e.dns.Add(names[i] + ". 60 IN A 127.0.0.2"); err != nil {
			e.t.Fatal(err)
		}
	}
	return names
}

// obtainFresh issues one certificate for n fresh names, with the preflight
// (inventory checks and the HTTP-01 self-check of every name) as a run
// does, and returns how long Obtain took. verify also checks the
// certificate against Pebble's chain for every name.
func (e *env) obtainFresh(c *Client, n int, verify bool) time.Duration {
	e.t.Helper()
	names := e.freshNames(n)
	id := "o" + strconv.Itoa(n)
	start := time.Now()
	res, err := e.obtain(c, Request{CertID: id, Names: names, Inventory: inventory(names...)})
	d := time.Since(start)
	if err != nil {
		e.t.Fatalf("%d names: %v", n, err)
	}
	if len(res.Issued) != n || len(res.Dropped) != 0 || res.Orders != 1 {
		e.t.Fatalf("%d names: issued %d, dropped %+v, %d orders; want all issued in one order", n, len(res.Issued), res.Dropped, res.Orders)
	}
	if verify {
		e.verify(res.Cert, names...)
	}
	return d
}

// TestOrderTiming runs BenchmarkOrderRatio's code path with 1 and 10 names
// and checks the certificates; it asserts nothing about time (CI machines
// vary), only logs it.
func TestOrderTiming(t *testing.T) {
	e := newEnv(t)
	c := e.client(nil)
	d1 := e.obtainFresh(c, 1, true)
	d10 := e.obtainFresh(c, 10, true)
	t.Logf("1 name: %v, 10 names: %v, ratio %.2f", d1.Round(time.Millisecond), d10.Round(time.Millisecond), float64(d10)/float64(d1))
}

// BenchmarkOrderRatio measures, in one run against in-process Pebble with
// real HTTP-01 validation on 127.0.0.2, an order of 1 name and an order of
// 100 names (Let's Encrypt's classic limit, which pebbletest enforces) per
// iteration, and reports both times and their ratio. Issue 7's target is a
// ratio of at most 3.
//
//	go test -run XXX -bench OrderRatio -benchtime 10x ./acme/
func BenchmarkOrderRatio(b *testing.B) {
	const big = 100
	e := newEnvTB(b)
	c := e.client(nil)
	e.obtainFresh(c, 1, false) // binds the listener, warms connections
	var d1, dBig, cpu1, cpuBig time.Duration
	n := 0
	for b.Loop() {
		c0 := cpuTime()
		d1 += e.obtainFresh(c, 1, false)
		c1 := cpuTime()
		dBig += e.obtainFresh(c, big, false)
		cpu1, cpuBig = cpu1+c1-c0, cpuBig+cpuTime()-c1
		n++
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(n) / float64(time.Millisecond) }
	b.ReportMetric(ms(d1), "ms/1name")
	b.ReportMetric(ms(dBig), "ms/100names")
	b.ReportMetric(float64(dBig)/float64(d1), "ratio")
	// The process's CPU time (client, Pebble, its validations, the test
	// DNS server and challenge listener, all in-process): on a machine
	// shared with other work, the wall times above depend on how much of
	// it the process gets.
	b.ReportMetric(ms(cpu1), "cpu-ms/1name")
	b.ReportMetric(ms(cpuBig), "cpu-ms/100names")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkObtain issues a certificate of 1, 10 and 100 fresh names per
// iteration.
func BenchmarkObtain(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(strconv.Itoa(n)+"names", func(b *testing.B) {
			e := newEnvTB(b)
			c := e.client(nil)
			e.obtainFresh(c, 1, false)
			for b.Loop() {
				e.obtainFresh(c, n, false)
			}
		})
	}
}
