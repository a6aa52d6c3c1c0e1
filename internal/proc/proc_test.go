package proc

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestTailBuffer(t *testing.T) {
	var tb TailBuffer
	for i := 0; i < 3; i++ {
		tb.Write([]byte(strings.Repeat("x", MaxOutput/2)))
	}
	tb.Write([]byte("END"))
	b := tb.Bytes()
	if len(b) != MaxOutput || !strings.HasSuffix(string(b), "END") {
		t.Errorf("len %d, suffix %q; want %d ending in END", len(b), b[len(b)-3:], MaxOutput)
	}
}

// A script whose child keeps the output open is killed with its child
// when the context ends.
func TestRunKillsGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	out, err := Run(exec.CommandContext(ctx, "/bin/sh", "-c", "echo started; sleep 30 & wait"), 5*time.Second)
	if err == nil || string(out) != "started\n" {
		t.Errorf("out %q, err %v", out, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s: the group was not killed", d)
	}
}
