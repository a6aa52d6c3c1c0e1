package apply

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/certplan/certplan/store"
)

// TestLiveServingPaths: with Options.Live, the serving paths hold every
// planned name's certificate before the deploy hooks run (a hook checks
// them), a name that moves to a certificate with a new ID switches, and a
// name that leaves the plan loses its path.
func TestLiveServingPaths(t *testing.T) {
	e := newEnv(t)
	live := filepath.Join(t.TempDir(), "live")
	withLive := func(o *Options) {
		o.Live = &store.LiveOptions{Dir: live}
		o.Hooks = append(o.Hooks, `[ "$CERTPLAN_CHANGE" = retired ] && exit 0
for n in $CERTPLAN_NAMES; do
	cmp -s "$CERTPLAN_CERT_DIR/fullchain.pem" "`+live+`/sni/$n/fullchain.pem" || { echo "$n: serving path not updated" >&2; exit 1; }
done`)
	}
	fullchain := func(name string) []byte {
		b, _ := os.ReadFile(filepath.Join(live, "sni", name, store.FileFullchain))
		return b
	}
	r := e.run(plan("p1", defCert("mail.d.test"), sniCert("sni-a", "imap.d.test", "late.d.test")), ModeIssue, withLive)
	if r.Result() != ResultOK {
		t.Fatalf("first run: %s %+v", statuses(r), r.Certificates)
	}
	a, _ := os.ReadFile(e.stored("sni-a").Path(store.FileFullchain))
	if !bytes.Equal(fullchain("late.d.test"), a) {
		t.Fatal("sni/late.d.test is not sni-a's certificate")
	}

	r = e.run(plan("p2", defCert("mail.d.test"), sniCert("sni-b", "late.d.test")), ModeIssue, withLive)
	if r.Result() != ResultOK {
		t.Fatalf("second run: %s %+v", statuses(r), r.Certificates)
	}
	b, _ := os.ReadFile(e.stored("sni-b").Path(store.FileFullchain))
	if !bytes.Equal(fullchain("late.d.test"), b) {
		t.Error("sni/late.d.test did not switch to sni-b")
	}
	if _, err := os.Lstat(filepath.Join(live, "sni", "imap.d.test")); !os.IsNotExist(err) {
		t.Errorf("sni/imap.d.test left the plan but stays: %v", err)
	}
	if _, err := os.Stat(filepath.Join(live, "default-127.0.0.2", store.FileCombined)); err != nil {
		t.Error(err)
	}
}
