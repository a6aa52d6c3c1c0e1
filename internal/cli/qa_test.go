package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/dnstest"
)

// An interrupt (the root context canceled by SIGINT) is reported as such,
// not as Go's "context canceled", and leaves no --output file behind.
func TestInterruptedSaysSo(t *testing.T) {
	dns := dnstest.New()
	if err := dns.AddZone("slow.test", "@ IN MX 10 mail.slow.test.\n"); err != nil {
		t.Fatal(err)
	}
	dns.SetDelay("slow.test", 1500*time.Millisecond)
	if err := dns.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	out := filepath.Join(t.TempDir(), "inv.json")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := Run(ctx, []string{"inventory", "--resolver", dns.Addr(), "-o", out, "slow.test"},
		strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v to stop after the interrupt", d)
	}
	if code != ExitFailure {
		t.Errorf("exit %d, want %d", code, ExitFailure)
	}
	if got := stderr.String(); !strings.Contains(got, "certplan: error: interrupted\n") || strings.Contains(got, "context canceled") {
		t.Errorf("stderr %q, want \"certplan: error: interrupted\" and no \"context canceled\"", got)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s exists after the interrupt (err %v)", out, err)
	}
}
