package report

import (
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/apply"
)

func TestHookLabel(t *testing.T) {
	tests := []struct {
		hook, want string
	}{
		{"/etc/certplan/hooks/postfix.sh", "/etc/certplan/hooks/postfix.sh"},
		{"  sh $WORK/deploy.sh  ", "sh $WORK/deploy.sh"},
		{"PATH=/usr/sbin:/usr/bin POSTFIX_CONFIG_DIR='/tmp/r p/etc' '/src/examples/hooks/postfix.sh'", "...p/etc' '/src/examples/hooks/postfix.sh'"},
		{"EXIM_CERT_DIR=/tmp/x/mail EXIM_GROUP=root bash /work/src/examples/hooks/exim.sh", "...bash /work/src/examples/hooks/exim.sh"},
		{"DEPLOY_DIR=/tmp/x\nset -e\ncp a b", "DEPLOY_DIR=/tmp/x ..."},
		{"true", "true"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := hookLabel(tt.hook); got != tt.want {
				t.Errorf("hookLabel(%q) = %q, want %q", tt.hook, got, tt.want)
			}
		})
	}
}

func TestHookLine(t *testing.T) {
	hooks := []apply.HookOutcome{
		{Hook: "X=1 /a/postfix.sh", OK: true},
		{Hook: "sh one.sh", OK: true},
		{Hook: "sh one.sh", OK: false, Error: "deploy hook for default-127.0.0.2: exit status 1: one hook: error: no"},
	}
	for i, want := range []string{
		"X=1 /a/postfix.sh: ok",
		"sh one.sh (#2): ok",
		"sh one.sh (#3): failed: exit status 1: one hook: error: no",
	} {
		if got := hookLine(hooks, i); got != want {
			t.Errorf("hook %d: got %q, want %q", i, got, want)
		}
	}
}

func TestUnverifiedLine(t *testing.T) {
	c := apply.CertOutcome{ID: "d", Status: apply.StatusRedeployed, VerifyFailures: 2, RedeployAfter: time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)}
	if got, want := unverifiedLine(&c), "not verified d: not served after 2 deploys (its hooks succeeded); deployed again after 2027-01-02T03:04:05Z"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	c.VerifyFailures, c.RedeployAfter = 4, time.Time{}
	if got := unverifiedLine(&c); !strings.Contains(got, "no more redeploys") {
		t.Errorf("got %q", got)
	}
	c.Status = apply.StatusUnchanged
	if got := unverifiedLine(&c); got != "" {
		t.Errorf("unchanged: got %q", got)
	}
}

// TestRegressedLines: a name the run broke gets a line in both reports
// (ports that share a story on one line) and a count in issue's summary.
func TestRegressedLines(t *testing.T) {
	g := func(port int, sni bool) apply.Regression {
		return apply.Regression{Name: "mail.domain3.test", IP: "127.0.0.2", Port: port, Protocol: "smtp", SNI: sni,
			Before: "ok", After: "mismatch", Detail: "mail.client01.test"}
	}
	rep := &apply.Report{Regressed: []apply.Regression{g(25, true), g(587, true), g(25, false)}}
	want := "BROKEN BY THIS RUN: mail.domain3.test on 127.0.0.2:25,587 with SNI: verified before the deploy (ok), now mismatch (mail.client01.test)\n" +
		"BROKEN BY THIS RUN: mail.domain3.test on 127.0.0.2:25 without SNI: verified before the deploy (ok), now mismatch (mail.client01.test)\n"
	var b strings.Builder
	ApplyChanges(&b, rep)
	if b.String() != want {
		t.Errorf("renew:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	ApplyText(&b, rep)
	if !strings.HasPrefix(b.String(), want) || !strings.Contains(b.String(), "; 1 name broken by this run") {
		t.Errorf("issue:\n%s", b.String())
	}
}
