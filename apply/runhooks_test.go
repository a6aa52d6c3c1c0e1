package apply

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certplan/certplan/store"
)

// hookLog makes the run's pre, post and deploy hooks append to a log.
func hookLog(t *testing.T, pre, post string) (string, func(*Options)) {
	log := filepath.Join(t.TempDir(), "log")
	return log, func(o *Options) {
		o.PreHook = strings.ReplaceAll(pre, "LOG", log)
		o.PostHook = strings.ReplaceAll(post, "LOG", log)
		o.Hooks = append(o.Hooks, "echo deploy $CERTPLAN_CERT_ID >> "+log)
		o.MaxConcurrentOrders = 3
	}
}

func readLog(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// Three certificates ordered at once run the pre-hook once, before any
// deploy hook, and the post-hook once, after the last; a renewal with
// nothing due runs neither.
func TestPrePostHooksOncePerRun(t *testing.T) {
	e := newEnv(t)
	p := plan("p1", defCert("mail.d.test"), sniCert("sni-a", "smtp.d.test"), sniCert("sni-b", "imap.d.test"))
	log, mod := hookLog(t, "echo pre >> LOG", "echo post >> LOG")
	r := e.run(p, ModeIssue, mod)
	if r.Result() != ResultOK || r.PreHook == nil || !r.PreHook.OK || r.PostHook == nil || !r.PostHook.OK {
		t.Fatalf("run: %s, pre %+v, post %+v", statuses(r), r.PreHook, r.PostHook)
	}
	want := "pre\ndeploy default-127.0.0.2\ndeploy sni-a\ndeploy sni-b\npost\n"
	if got := readLog(t, log); got != want {
		t.Fatalf("hooks ran as\n%s\nwant\n%s", got, want)
	}
	os.Remove(log)
	r = e.run(p, ModeRenew, mod)
	if got := readLog(t, log); got != "" || r.PreHook != nil || r.PostHook != nil {
		t.Fatalf("nothing due, yet hooks ran: %q", got)
	}
}

// A failing pre-hook stops the run before any order; the post-hook runs.
func TestPreHookFailureStopsRun(t *testing.T) {
	e := newEnv(t)
	p := plan("p1", defCert("mail.d.test"), sniCert("sni-a", "smtp.d.test"))
	log, mod := hookLog(t, "echo port 80 busy; exit 2", "echo post >> LOG")
	rep, err := Run(context.Background(), e.options(p, ModeIssue, mod))
	var pe *PreHookError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "port 80 busy") {
		t.Fatalf("err %v, want a *PreHookError with the hook's output", err)
	}
	if n := len(e.ca.Orders()); n != 0 {
		t.Fatalf("%d orders placed after the pre-hook failed", n)
	}
	if got := readLog(t, log); got != "post\n" || rep.PostHook == nil {
		t.Fatalf("log %q, want the post-hook alone", got)
	}
}

// A failing post-hook makes a successful run partial.
func TestPostHookFailurePartial(t *testing.T) {
	e := newEnv(t)
	p := plan("p1", defCert("mail.d.test"))
	_, mod := hookLog(t, "", "exit 4")
	r := e.run(p, ModeIssue, mod)
	if r.Result() != ResultPartial || r.PostHook == nil || r.PostHook.ExitCode != 4 {
		t.Fatalf("result %v, post %+v", r.Result(), r.PostHook)
	}
}

// A replacement (a revoked certificate) is ordered at once in a renewal
// run, with a new key although ReuseKey is set; a certificate the store
// records as revoked never gets its key reused either.
func TestReplaceNewKey(t *testing.T) {
	e := newEnv(t)
	p := plan("p1", defCert("mail.d.test"), sniCert("sni-a", "smtp.d.test"))
	e.run(p, ModeIssue)
	before := map[string]string{"default-127.0.0.2": e.stored("default-127.0.0.2").Meta.SPKISHA256, "sni-a": e.stored("sni-a").Meta.SPKISHA256}
	r := e.run(p, ModeRenew, func(o *Options) {
		o.ReuseKey = true
		o.Replace = map[string]Replacement{"default-127.0.0.2": {Reason: "revoked"}}
	})
	if statuses(r) != "default-127.0.0.2=issued sni-a=unchanged" || r.Certificates[0].Reason != "revoked" {
		t.Fatalf("replace run: %s %+v", statuses(r), r.Certificates[0])
	}
	replaced := e.stored("default-127.0.0.2").Meta.SPKISHA256
	if replaced == before["default-127.0.0.2"] {
		t.Fatal("the replacement kept the key")
	}

	st, _ := store.Open(e.dir)
	st.Lock()
	cur := e.stored("sni-a")
	if err := st.SaveRevocation("sni-a", store.Revocation{Serial: cur.Meta.Serial, Reason: "keyCompromise"}); err != nil {
		t.Fatal(err)
	}
	st.Unlock()
	st.Close()
	r = e.run(p, ModeIssue, func(o *Options) { o.ReuseKey, o.Force = true, true })
	if r.Result() != ResultOK {
		t.Fatalf("forced run: %s", statuses(r))
	}
	if e.stored("sni-a").Meta.SPKISHA256 == before["sni-a"] {
		t.Fatal("the key of a revoked certificate was reused")
	}
	if e.stored("default-127.0.0.2").Meta.SPKISHA256 != replaced {
		t.Fatal("ReuseKey did not keep the key of a certificate not revoked")
	}
}
