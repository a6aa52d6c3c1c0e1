package apply

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/certplan/certplan/acme"
	"github.com/certplan/certplan/internal/pebbletest"
	"github.com/certplan/certplan/model"
)

// countingCA is the real ACME client, counting the orders in flight.
type countingCA struct {
	*acme.Client
	mu            sync.Mutex
	inFlight, max int
	calls         int
}

func (c *countingCA) Obtain(ctx context.Context, req acme.Request) (*acme.Result, error) {
	if !req.DryRun {
		c.mu.Lock()
		c.inFlight++
		c.calls++
		c.max = max(c.max, c.inFlight)
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.inFlight--
			c.mu.Unlock()
		}()
	}
	return c.Client.Obtain(ctx, req)
}

func (c *countingCA) RenewalInfo(ctx context.Context, leaf *x509.Certificate) (*acme.RenewalInfo, error) {
	return c.Client.RenewalInfo(ctx, leaf)
}

var _ io.Closer = (*countingCA)(nil)

// overlapHook fails when another run of it is under way (mkdir is atomic),
// and logs the certificate ids in the order the hooks ran.
const overlapHook = `if ! mkdir "$HOOK_DIR/running" 2>/dev/null; then echo "$CERTPLAN_CERT_ID" >> "$HOOK_DIR/overlaps"; exit 1; fi
echo "$CERTPLAN_CERT_ID" >> "$HOOK_DIR/order"
sleep 0.05
rmdir "$HOOK_DIR/running"`

// sixCerts adds five SNI names to the DNS and plans the default
// certificate and five SNI certificates.
func (e *env) sixCerts(id string) *model.Plan {
	e.t.Helper()
	certs := []model.PlannedCert{defCert("mail.d.test", "smtp.d.test")}
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("c%d.d.test", i)
		if err := e.dns.Add(name + ". 60 IN A 127.0.0.2"); err != nil {
			e.t.Fatal(err)
		}
		certs = append(certs, sniCert("sni-"+name, name))
	}
	// Out of order on purpose: the report and the hooks follow the ids.
	slices.Reverse(certs)
	return plan(id, certs...)
}

func TestConcurrentOrders(t *testing.T) {
	e := newEnv(t)
	p := e.sixCerts("p1")
	hookDir := t.TempDir()
	var ca *countingCA
	rep := e.run(p, ModeIssue, func(o *Options) {
		o.MaxConcurrentOrders = 3
		connect := o.Connect
		o.Connect = func(ctx context.Context) (CA, error) {
			c, err := connect(ctx)
			if err != nil {
				return nil, err
			}
			ca = &countingCA{Client: c.(*acme.Client)}
			return ca, nil
		}
		o.Hooks = append(o.Hooks, "HOOK_DIR="+hookDir+"\n"+overlapHook)
	})

	var ids []string
	for _, c := range rep.Certificates {
		ids = append(ids, c.ID)
		if c.Status != StatusIssued || len(c.Hooks) != 2 || !c.Hooks[0].OK || !c.Hooks[1].OK {
			t.Errorf("%s: status %s, hooks %+v", c.ID, c.Status, c.Hooks)
		}
	}
	want := []string{"default-127.0.0.2", "sni-c1.d.test", "sni-c2.d.test", "sni-c3.d.test", "sni-c4.d.test", "sni-c5.d.test"}
	if !slices.Equal(ids, want) {
		t.Errorf("report lists %v, want %v", ids, want)
	}
	if rep.Result() != ResultOK {
		t.Errorf("result %v: %s", rep.Result(), statuses(rep))
	}
	checkVerified(t, rep, 7)

	if ca.calls != 6 || ca.max < 2 || ca.max > 3 {
		t.Errorf("%d orders, at most %d at once; want 6, 2 or 3 at once", ca.calls, ca.max)
	}
	if b, err := os.ReadFile(filepath.Join(hookDir, "overlaps")); err == nil {
		t.Errorf("hooks overlapped, for %q", b)
	}
	b, err := os.ReadFile(filepath.Join(hookDir, "order"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(b)); !slices.Equal(got, want) {
		t.Errorf("hooks ran for %v, want %v", got, want)
	}

	// Each certificate's state is its own: a second run has nothing due,
	// and every certificate is recorded as deployed.
	rep = e.run(p, ModeRenew)
	for _, c := range rep.Certificates {
		if c.Status != StatusUnchanged || c.Failures != 0 {
			t.Errorf("second run: %s %s (failures %d)", c.ID, c.Status, c.Failures)
		}
		st, _ := e.options(p, ModeRenew).Store.LoadRenewal(c.ID)
		if st.LastSuccess.IsZero() || st.Failures != 0 {
			t.Errorf("%s: renewal state %+v", c.ID, st)
		}
	}
}

// TestConcurrentOrdersFailureIsolated: one certificate failing at the CA
// gets its own backoff; the others are issued and deployed.
func TestConcurrentOrdersFailureIsolated(t *testing.T) {
	e := newEnv(t)
	p := e.sixCerts("p1")
	// The CA cannot reach c3 (no inventory, so no preflight drops it).
	if err := pebbletest.PointElsewhere(e.dns, "c3.d.test"); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), e.options(p, ModeIssue, func(o *Options) { o.MaxConcurrentOrders = 6; o.Verify = nil }))
	if err != nil {
		t.Fatal(err)
	}
	want := "default-127.0.0.2=issued sni-c1.d.test=issued sni-c2.d.test=issued sni-c3.d.test=failed sni-c4.d.test=issued sni-c5.d.test=issued"
	if got := statuses(rep); got != want {
		t.Errorf("statuses %s, want %s", got, want)
	}
	if rep.Result() != ResultPartial {
		t.Errorf("result %v, want partial", rep.Result())
	}
	for _, c := range rep.Certificates {
		if (c.Status == StatusFailed) != (c.Failures == 1) || (c.Status == StatusFailed) == c.NextCheck.IsZero() {
			t.Errorf("%s: %s, failures %d, next check %v", c.ID, c.Status, c.Failures, c.NextCheck)
		}
		if (c.Status == StatusIssued) != (len(c.Hooks) == 1) {
			t.Errorf("%s: %s with %d hook runs", c.ID, c.Status, len(c.Hooks))
		}
	}
}

// TestOrderCap: a run orders at most MaxOrders certificates, in plan
// order; the rest are deferred to the next run.
func TestOrderCap(t *testing.T) {
	e := newEnv(t)
	p := e.sixCerts("p1")
	capped := func(o *Options) { o.MaxOrders = 4; o.MaxConcurrentOrders = 4; o.Verify = nil }
	rep := e.run(p, ModeIssue, capped)
	want := "default-127.0.0.2=issued sni-c1.d.test=issued sni-c2.d.test=issued sni-c3.d.test=issued sni-c4.d.test=deferred sni-c5.d.test=deferred"
	if got := statuses(rep); got != want {
		t.Errorf("first run: %s, want %s", got, want)
	}
	if rep.Result() != ResultPartial || rep.Quiet() {
		t.Errorf("first run: result %v, quiet %v; want partial, not quiet", rep.Result(), rep.Quiet())
	}
	if c := rep.Certificates[5]; !strings.Contains(c.Message, "cap of 4 orders") || len(c.Hooks) != 0 || c.Failures != 0 {
		t.Errorf("deferred: %+v", c)
	}
	if n := len(e.ca.Orders()); n != 4 {
		t.Errorf("%d orders at the CA, want 4", n)
	}
	rep = e.run(p, ModeRenew, capped)
	want = "default-127.0.0.2=unchanged sni-c1.d.test=unchanged sni-c2.d.test=unchanged sni-c3.d.test=unchanged sni-c4.d.test=issued sni-c5.d.test=issued"
	if got := statuses(rep); got != want {
		t.Errorf("second run: %s, want %s", got, want)
	}
}

// BenchmarkIssue is a whole issue run of a plan with 4 certificates of 10
// names each (a default and 3 SNI certificates on 127.0.0.2) against
// in-process Pebble with HTTP-01: preflight, orders, the deploy hook,
// verification by probing every name with and without SNI. Each iteration
// starts from an empty state directory with fresh names, so every order
// validates every name. orders=1 is one certificate after another.
//
//	go test -run XXX -bench Issue -benchtime 5x ./apply/
func BenchmarkIssue(b *testing.B) {
	for _, conc := range []int{1, 4} {
		b.Run(fmt.Sprintf("orders=%d", conc), func(b *testing.B) {
			e := newEnvTB(b)
			iter := 0
			for b.Loop() {
				iter++
				b.StopTimer()
				e.dir = b.TempDir()
				var certs []model.PlannedCert
				for c := 0; c < 4; c++ {
					var names []string
					for n := 0; n < 10; n++ {
						name := fmt.Sprintf("i%d-c%d-n%d.d.test", iter, c, n)
						if err := e.dns.Add(name + ". 60 IN A 127.0.0.2"); err != nil {
							b.Fatal(err)
						}
						names = append(names, name)
					}
					pc := sniCert(fmt.Sprintf("sni-%d", c), names...)
					if c == 0 {
						pc = defCert(names...)
					}
					certs = append(certs, pc)
				}
				p := plan(fmt.Sprint("p", iter), certs...)
				b.StartTimer()
				rep := e.run(p, ModeIssue, func(o *Options) { o.MaxConcurrentOrders = conc })
				if rep.Result() != ResultOK || len(rep.Changed()) != 4 || len(rep.Verification) != 40 {
					for _, c := range rep.Certificates {
						if c.Error != "" || len(c.Dropped) > 0 {
							b.Logf("%s: %s %+v", c.ID, c.Error, c.Dropped)
						}
					}
					for _, v := range rep.Verification {
						if !v.OK() {
							b.Logf("not served: %+v", v)
						}
					}
					b.Fatalf("result %v: %s, %d verification rows", rep.Result(), statuses(rep), len(rep.Verification))
				}
			}
		})
	}
}
