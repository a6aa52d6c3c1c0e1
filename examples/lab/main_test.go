package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestLab runs the README's first command's pipeline and checks that each
// stage shows what it is there to show.
func TestLab(t *testing.T) {
	if testing.Short() {
		t.Skip("the lab runs every stage: skipped in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errw bytes.Buffer
	err := run(ctx, labOptions{dir: t.TempDir(), randomPorts: true}, &out, &errw)
	if err != nil {
		t.Fatalf("lab: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errw.String())
	}
	got := out.String()
	for _, want := range []string{
		"== 1. inventory",
		"mail.domain2.test",
		"broken-dns.test: MX broken-dns.test: SERVFAIL",
		"== 2. probe",
		"smtp.domain2.test on 127.0.0.2:",
		" — clients without SNI get server.main-domain.test: name mismatch (with SNI: ok)",
		"== 3. plan",
		"default-127.0.0.2  default  new  on 127.0.0.2",
		"mail.domain3.test",
		"== 4. issue",
		"default-127.0.0.2: issued",
		"default-127.0.0.3: issued",
		"/hooks/exim.sh: ok",
		"/mail/reload: ok",
		"2 certificates: 2 issued; verified 428 of 428 name/endpoint pairs",
		"== 5. renew",
		"reissued default-127.0.0.2 (names changed: 2 added, 0 removed)",
		"== 6. init",
		"Found: directadmin.",
		"== 7. renew again, as cron does, with init's config and no flags",
		"$ certplan --config ",
		"== 8. check",
		"CERTPLAN OK - 2 certificates",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lab output lacks %q", want)
		}
	}
	// The new client's names are served to clients without SNI, and the
	// second renew printed nothing.
	if i := strings.Index(got, "== 7. renew again"); i < 0 || !strings.Contains(got[i:], "(no output)\n[exit 0]") {
		t.Errorf("the second renew was not quiet")
	}
	// inventory, probe and plan exit 3 (broken-dns.test fails, names do not
	// verify today); issue, both renews, init and check exit 0.
	if n := strings.Count(got, "[exit 3]"); n != 3 {
		t.Errorf("%d stages exited 3, want 3", n)
	}
	if n := strings.Count(got, "[exit 0]"); n != 5 {
		t.Errorf("%d stages exited 0, want 5", n)
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", got, errw.String())
	}
}
