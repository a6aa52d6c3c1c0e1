package store

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/certplan/certplan/model"
)

// livePlan: a default certificate for two IPs and an SNI certificate
// with a wildcard.
func livePlan(defID, sniID string) *model.Plan {
	return &model.Plan{ID: "p", Certificates: []model.PlannedCert{
		{ID: defID, Names: []string{"mail.a.test"}, IPs: []string{"127.0.0.2", "127.0.0.3"}, Default: true},
		{ID: sniID, Names: []string{"*.b.test", "MX.c.test"}, IPs: []string{"127.0.0.2"}},
	}}
}

func liveRead(t *testing.T, live, entry, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(live, entry, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUpdateLive: the stable paths serve the plan's certificates; a plan
// that moves names to a new ID switches them without changing the paths,
// and a name that leaves the plan loses its entry.
func TestUpdateLive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := open(t, dir)
	def := testFiles(t, 1, "mail.a.test")
	sni := testFiles(t, 2, "*.b.test", "mx.c.test")
	mustSave(t, s, "default-127.0.0.2", def)
	mustSave(t, s, "sni-b.test", sni)
	ch, err := s.UpdateLive(livePlan("default-127.0.0.2", "sni-b.test"), LiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live := LiveDirFor(dir)
	want := []string{"default-127.0.0.2", "default-127.0.0.3", "sni/_.b.test", "sni/mail.a.test", "sni/mx.c.test"}
	if ch.Dir != live || !ch.Switched || !slices.Equal(ch.Added, want) {
		t.Fatalf("got %+v, want a switch in %s adding %v", ch, live, want)
	}
	if got := liveRead(t, live, "default-127.0.0.3", FileCombined); !bytes.Equal(got, append(append(append([]byte{}, def.KeyPEM...), def.CertPEM...), def.ChainPEM...)) {
		t.Errorf("combined.pem:\n%s", got)
	}
	if got := liveRead(t, live, "sni/_.b.test", FileKey); !bytes.Equal(got, sni.KeyPEM) {
		t.Errorf("sni key: %s", got)
	}
	fi, _ := os.Stat(filepath.Join(live, "sni/_.b.test", FileKey))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode())
	}

	// Unchanged: no new generation.
	if ch, err = s.UpdateLive(livePlan("default-127.0.0.2", "sni-b.test"), LiveOptions{}); err != nil || ch.Switched {
		t.Fatalf("second run: %+v, %v; want no switch", ch, err)
	}

	// The SNI certificate gets a new ID (the plan changed) and loses
	// mx.c.test: the same paths now serve the new certificate.
	sni2 := testFiles(t, 3, "*.b.test")
	mustSave(t, s, "sni-b.test-2", sni2)
	p := livePlan("default-127.0.0.2", "sni-b.test-2")
	p.Certificates[1].Names = []string{"*.b.test"}
	if ch, err = s.UpdateLive(p, LiveOptions{}); err != nil {
		t.Fatal(err)
	}
	if !ch.Switched || !slices.Equal(ch.Removed, []string{"sni/mx.c.test"}) {
		t.Fatalf("got %+v, want a switch removing sni/mx.c.test", ch)
	}
	if got := liveRead(t, live, "sni/_.b.test", FileKey); !bytes.Equal(got, sni2.KeyPEM) {
		t.Error("sni/_.b.test still serves the old key")
	}
	if _, err := os.Lstat(filepath.Join(live, "sni/mx.c.test")); !os.IsNotExist(err) {
		t.Errorf("sni/mx.c.test: %v, want it gone", err)
	}
	gens, _ := filepath.Glob(filepath.Join(live, "gen-*"))
	if len(gens) != 2 {
		t.Errorf("generations %v, want the current and the previous", gens)
	}
}

// TestUpdateLiveKeepsUnissued: a name whose new certificate is not issued
// keeps the entry it had.
func TestUpdateLiveKeepsUnissued(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := open(t, dir)
	sni := testFiles(t, 2, "*.b.test", "mx.c.test")
	mustSave(t, s, "default-127.0.0.2", testFiles(t, 1, "mail.a.test"))
	mustSave(t, s, "sni-b.test", sni)
	if _, err := s.UpdateLive(livePlan("default-127.0.0.2", "sni-b.test"), LiveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateLive(livePlan("default-127.0.0.2", "sni-new"), LiveOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := liveRead(t, LiveDirFor(dir), "sni/mx.c.test", FileKey); !bytes.Equal(got, sni.KeyPEM) {
		t.Error("sni/mx.c.test lost its certificate while the new one is not issued")
	}
}

// TestUpdateLiveKeyGroup: with a key group, a user of that group (nobody,
// group nogroup) reads the keys through the stable paths; without it, and
// for another user, the keys stay closed.
func TestUpdateLiveKeyGroup(t *testing.T) {
	needRoot(t)
	tmp := t.TempDir()
	for _, d := range []string{tmp, filepath.Dir(tmp)} { // let nobody reach the live dir
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(tmp, "state")
	s := open(t, dir)
	mustSave(t, s, "default-127.0.0.2", testFiles(t, 1, "mail.a.test"))
	mustSave(t, s, "sni-b.test", testFiles(t, 2, "*.b.test", "mx.c.test"))
	key := filepath.Join(LiveDirFor(dir), "sni/_.b.test", FileKey)
	readAs := func(uid, gid uint32) error {
		cmd := exec.Command("cat", key)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		return cmd.Run()
	}
	p := livePlan("default-127.0.0.2", "sni-b.test")
	if _, err := s.UpdateLive(p, LiveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := readAs(nobody, nobody); err == nil {
		t.Fatal("nobody reads the key without a key group")
	}
	if _, err := s.UpdateLive(p, LiveOptions{KeyGroup: "nogroup"}); err != nil {
		t.Fatal(err)
	}
	if err := readAs(nobody, nobody); err != nil {
		t.Fatalf("nobody (group nogroup) cannot read the key: %v", err)
	}
	if err := readAs(nobody, 1); err == nil { // group daemon
		t.Fatal("a user outside the key group reads the key")
	}
	fi, _ := os.Stat(key)
	if fi.Mode().Perm() != 0o640 || fi.Sys().(*syscall.Stat_t).Gid != nobody {
		t.Errorf("key %v gid %d, want 0640 nogroup", fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir %v, want 0700", fi.Mode())
	}
	// Dropping the group closes the keys again.
	if _, err := s.UpdateLive(p, LiveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := readAs(nobody, nobody); err == nil {
		t.Fatal("nobody still reads the key after the key group was dropped")
	}
}

func mustSave(t *testing.T, s *Store, id string, f Files) {
	t.Helper()
	if _, err := s.SaveCert(id, f, Meta{}); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateLiveRefusesBadNames: a hand-edited plan cannot make a name
// into a path, and nothing is written.
func TestUpdateLiveRefusesBadNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := open(t, dir)
	for _, pc := range []model.PlannedCert{
		{ID: "a", Names: []string{".."}},
		{ID: "b", Names: []string{"x/../../etc"}},
		{ID: "c", Names: []string{"ok.test"}, IPs: []string{"../x"}, Default: true},
	} {
		if _, err := s.UpdateLive(&model.Plan{Certificates: []model.PlannedCert{pc}}, LiveOptions{}); err == nil {
			t.Errorf("%+v: no error", pc)
		}
	}
	if _, err := os.Lstat(filepath.Join(LiveDirFor(dir), "current")); !os.IsNotExist(err) {
		t.Errorf("a set was written: %v", err)
	}
}

func TestLiveEntryNames(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.2":       "default-127.0.0.2",
		"2001:0DB8:0::10": "default-2001:db8::10",
	} {
		if got := LiveDefault(in); got != want {
			t.Errorf("LiveDefault(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"*.Example.test": "sni/_.example.test", "MX.example.test": "sni/mx.example.test"} {
		if got := LiveSNI(in); got != want {
			t.Errorf("LiveSNI(%q) = %q, want %q", in, got, want)
		}
	}
}
