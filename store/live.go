package store

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// The serving paths: see "Serving paths" in the package documentation.

// LiveOptions says where the live tree is and who may read its keys.
type LiveOptions struct {
	// Dir is the live directory; LiveDirFor(state dir) when empty.
	Dir string
	// KeyGroup, when set, is the group that may read the keys (files
	// root:KeyGroup 0640, directories 0750).
	KeyGroup string
}

// LiveDirFor is the default live directory of a state directory: a
// sibling named <dir>-live.
func LiveDirFor(stateDir string) string {
	if stateDir == "" {
		stateDir = DefaultDir
	}
	return filepath.Clean(stateDir) + "-live"
}

// LiveDefault is the live entry of an IP's default certificate, in the
// address's canonical form (RFC 5952 for IPv6), as servers expand it
// (Exim's $received_ip_address).
func LiveDefault(ip string) string {
	if a, err := netip.ParseAddr(ip); err == nil {
		return "default-" + a.String()
	}
	return "default-" + strings.ToLower(ip)
}

// LiveSNI is the live entry of an SNI name: "sni/<name>", lower-case, a
// wildcard's "*" written "_".
func LiveSNI(name string) string {
	name = strings.ToLower(name)
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name = "_." + rest
	}
	return "sni/" + name
}

// LiveFiles are the files of a live entry.
var LiveFiles = []string{FileFullchain, FileKey, FileCombined}

// LiveChange is what UpdateLive did.
type LiveChange struct {
	Dir string
	// Generation is the current set; Switched is false when the plan's
	// certificates were already the ones served.
	Generation string
	Switched   bool
	// Added and Removed entries (LiveDefault, LiveSNI), sorted.
	Added, Removed []string
}

// liveEntry is one entry's file contents, by file name.
type liveEntry map[string][]byte

// UpdateLive makes the live tree serve plan p's certificates, from their
// current versions (see the layout above). The store must be locked.
func (s *Store) UpdateLive(p *model.Plan, o LiveOptions) (*LiveChange, error) {
	if err := s.locked(); err != nil {
		return nil, err
	}
	if o.Dir == "" {
		o.Dir = LiveDirFor(s.dir)
	}
	lt, err := openLive(o)
	if err != nil {
		return nil, err
	}
	defer lt.root.Close()
	old, oldGen := lt.currentSet()
	want, err := s.liveSet(p, old)
	if err != nil {
		return nil, err
	}
	ch := &LiveChange{Dir: o.Dir, Generation: oldGen}
	ch.Added, ch.Removed = diffKeys(want, old)
	if oldGen == "" || !sameSet(want, old) {
		if ch.Generation, err = lt.writeSet(want); err != nil {
			return nil, fmt.Errorf("live %s: %w", o.Dir, err)
		}
		ch.Switched = true
	}
	if err := lt.links(want); err != nil {
		return nil, fmt.Errorf("live %s: %w", o.Dir, err)
	}
	lt.prune(ch.Generation)
	return ch, nil
}

// liveSet is the entries plan p needs: each default certificate for each
// of its IPs, and each name's certificate (the first, in ID order, whose
// current version covers it). An entry with no such certificate keeps its
// old contents, if any.
func (s *Store) liveSet(p *model.Plan, old map[string]liveEntry) (map[string]liveEntry, error) {
	certs := append([]model.PlannedCert(nil), p.Certificates...)
	sort.Slice(certs, func(i, j int) bool { return certs[i].ID < certs[j].ID })
	want := map[string]liveEntry{}
	pending := map[string]bool{}
	for _, pc := range certs {
		c, err := s.LoadCert(pc.ID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("live: %w", err)
		}
		var e liveEntry
		if c != nil {
			full := append(append([]byte{}, c.CertPEM...), c.ChainPEM...)
			e = liveEntry{FileFullchain: full, FileKey: c.KeyPEM, FileCombined: append(append([]byte{}, c.KeyPEM...), full...)}
		}
		if err := liveNamesOK(pc); err != nil {
			return nil, err
		}
		var keys []string
		if pc.Default {
			for _, ip := range pc.IPs {
				keys = append(keys, LiveDefault(ip))
			}
		}
		for _, n := range pc.Names {
			if c == nil || covers(c.Leaf, n) {
				keys = append(keys, LiveSNI(n))
			} else {
				pending[LiveSNI(n)] = true
			}
		}
		for _, k := range keys {
			if _, done := want[k]; done {
				continue
			}
			if e == nil {
				pending[k] = true
				continue
			}
			want[k] = e
		}
	}
	for k := range pending {
		if _, ok := want[k]; !ok && old[k] != nil {
			want[k] = old[k]
		}
	}
	return want, nil
}

var liveNameRE = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*$`)

// liveNamesOK refuses a plan whose names or IPs would not make plain
// file names (the planner never writes such a plan; a hand-edited
// --plan might).
func liveNamesOK(pc model.PlannedCert) error {
	for _, ip := range pc.IPs {
		if _, err := netip.ParseAddr(ip); err != nil || strings.Contains(ip, "%") {
			return fmt.Errorf("live: certificate %s: IP %q is not an IP address", pc.ID, ip)
		}
	}
	for _, n := range pc.Names {
		if !liveNameRE.MatchString(strings.ToLower(n)) {
			return fmt.Errorf("live: certificate %s: %q is not a DNS name", pc.ID, n)
		}
	}
	return nil
}

// covers reports whether leaf lists name (a wildcard name: the wildcard
// itself), or a wildcard that covers it ([names.Covers], RFC 6125: one
// left-most label), so that a name's SNI entry may point at a certificate
// whose current version verifies for it.
func covers(leaf *x509.Certificate, name string) bool {
	name = strings.ToLower(name)
	for _, d := range leaf.DNSNames {
		d = strings.ToLower(d)
		if d == name || names.Covers(d, name) {
			return true
		}
	}
	return false
}

func sameSet(a, b map[string]liveEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for k, ea := range a {
		eb, ok := b[k]
		if !ok {
			return false
		}
		for _, f := range LiveFiles {
			if !bytes.Equal(ea[f], eb[f]) {
				return false
			}
		}
	}
	return true
}

func diffKeys(want, old map[string]liveEntry) (added, removed []string) {
	for k := range want {
		if _, ok := old[k]; !ok {
			added = append(added, k)
		}
	}
	for k := range old {
		if _, ok := want[k]; !ok {
			removed = append(removed, k)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}

// liveTree is an open live directory; its files go through a Store on
// it, so under the same os.Root and no-follow rules (files.go).
type liveTree struct {
	*Store
	gid     int // the key group's, or 0
	dirMode fs.FileMode
	keyMode fs.FileMode
}

// openLive checks and creates the live directory and sets its owner and
// mode (a key group added or dropped since the last run included).
func openLive(o LiveOptions) (*liveTree, error) {
	lt := &liveTree{dirMode: 0o700, keyMode: 0o600}
	if o.KeyGroup != "" {
		g, err := user.LookupGroup(o.KeyGroup)
		if err != nil {
			return nil, fmt.Errorf("live: key group: %w", err)
		}
		lt.gid, _ = strconv.Atoi(g.Gid)
		lt.dirMode, lt.keyMode = 0o750, 0o640
	}
	if err := CheckDir(o.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	if err := CheckDir(o.Dir); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	lt.Store = &Store{dir: o.Dir, root: root, writable: true}
	if err := lt.own("."); err != nil {
		root.Close()
		return nil, err
	}
	return lt, nil
}

// own gives directory name the tree's owner and mode.
func (lt *liveTree) own(name string) error {
	d, err := lt.openFile(name, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("live: %w", err)
	}
	defer d.Close()
	if err := d.Chown(os.Geteuid(), lt.gidOr(os.Getegid())); err != nil {
		return fmt.Errorf("live: %w", err)
	}
	if err := d.Chmod(lt.dirMode); err != nil {
		return fmt.Errorf("live: %w", err)
	}
	return nil
}

func (lt *liveTree) gidOr(def int) int {
	if lt.dirMode == 0o750 {
		return lt.gid
	}
	return def
}

var genRE = regexp.MustCompile(`^gen-(\d{6,})$`)

// currentSet reads the set "current" names (nil and "" when there is
// none or it is not a generation beside it).
func (lt *liveTree) currentSet() (map[string]liveEntry, string) {
	gen, err := lt.root.Readlink("current")
	if err != nil || !genRE.MatchString(gen) {
		return nil, ""
	}
	set := map[string]liveEntry{}
	read := func(entry string) {
		if !lt.owned(path.Join(gen, entry, FileKey)) {
			return // written for another key group: rewrite
		}
		e := liveEntry{}
		for _, f := range LiveFiles {
			b, err := lt.readFile(path.Join(gen, entry, f))
			if err != nil {
				return
			}
			e[f] = b
		}
		set[entry] = e
	}
	ents, _ := lt.readDir(gen)
	for _, de := range ents {
		if de.IsDir() && strings.HasPrefix(de.Name(), "default-") {
			read(de.Name())
		}
	}
	ents, _ = lt.readDir(path.Join(gen, "sni"))
	for _, de := range ents {
		if de.IsDir() {
			read("sni/" + de.Name())
		}
	}
	return set, gen
}

// owned reports whether file name has the tree's key mode and group.
func (lt *liveTree) owned(name string) bool {
	fi, err := lt.root.Lstat(name)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode().Perm() == lt.keyMode && int(st.Gid) == lt.gidOr(os.Getegid())
}

// writeSet writes want as a new generation and switches "current" to it.
func (lt *liveTree) writeSet(want map[string]liveEntry) (string, error) {
	gen := lt.nextGen()
	lt.root.RemoveAll(gen) // debris of an interrupted run
	if err := lt.mkdir(gen); err != nil {
		return "", err
	}
	if err := lt.mkdir(path.Join(gen, "sni")); err != nil {
		return "", err
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := lt.writeEntry(path.Join(gen, k), want[k]); err != nil {
			return "", err
		}
	}
	if err := lt.syncDir(gen); err != nil {
		return "", err
	}
	return gen, lt.link(gen, "current")
}

func (lt *liveTree) nextGen() string {
	n := 0
	ents, _ := lt.readDir(".")
	for _, de := range ents {
		if m := genRE.FindStringSubmatch(de.Name()); m != nil {
			if v, _ := strconv.Atoi(m[1]); v > n {
				n = v
			}
		}
	}
	return fmt.Sprintf("gen-%06d", n+1)
}

func (lt *liveTree) mkdir(name string) error {
	if err := lt.root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return lt.own(name)
}

func (lt *liveTree) writeEntry(dir string, e liveEntry) error {
	if err := lt.mkdir(dir); err != nil {
		return err
	}
	for _, f := range LiveFiles {
		perm := lt.keyMode
		if f == FileFullchain {
			perm = 0o644
		}
		if err := lt.writeOwned(path.Join(dir, f), e[f], perm); err != nil {
			return err
		}
	}
	return lt.syncDir(dir)
}

// writeOwned writes a new file (never through a link) with the tree's
// group and perm, synced.
func (lt *liveTree) writeOwned(name string, data []byte, perm fs.FileMode) error {
	f, err := lt.openFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chown(os.Geteuid(), lt.gidOr(os.Getegid())); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}

// link points name at target: a new link renamed over it (atomic, and it
// replaces a link rather than following it).
func (lt *liveTree) link(target, name string) error {
	if t, err := lt.root.Readlink(name); err == nil && t == target {
		return nil
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := path.Join(path.Dir(name), ".link.tmp-"+hex.EncodeToString(rnd[:]))
	if err := lt.root.Symlink(target, tmp); err != nil {
		return err
	}
	if err := lt.root.Rename(tmp, name); err != nil {
		lt.root.Remove(tmp)
		return err
	}
	return lt.syncDir(path.Dir(name))
}

// links makes the stable link of every entry of want and removes those of
// entries that left it.
func (lt *liveTree) links(want map[string]liveEntry) error {
	if err := lt.mkdir("sni"); err != nil {
		return err
	}
	for k := range want {
		target := "current/" + k
		if strings.HasPrefix(k, "sni/") {
			target = "../current/" + k
		}
		if err := lt.link(target, k); err != nil {
			return err
		}
	}
	for _, dir := range []string{".", "sni"} {
		ents, err := lt.readDir(dir)
		if err != nil {
			return err
		}
		for _, de := range ents {
			k := path.Join(dir, de.Name())
			stable := dir == "sni" || strings.HasPrefix(de.Name(), "default-")
			if _, ok := want[k]; !ok && stable && de.Type()&fs.ModeSymlink != 0 {
				if err := lt.root.Remove(k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// prune removes generations other than current and the one before it.
func (lt *liveTree) prune(current string) {
	cur := genNum(current)
	prev := -1
	ents, _ := lt.readDir(".")
	for _, de := range ents {
		if n := genNum(de.Name()); n >= 0 && n < cur && n > prev {
			prev = n
		}
	}
	for _, de := range ents {
		if n := genNum(de.Name()); n >= 0 && n != cur && n != prev {
			lt.root.RemoveAll(de.Name())
		}
	}
}

func genNum(name string) int { return seqNum(genRE, name) }
