package acme

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// ---- HTTP-01, webroot
//
// The rules for writing as root into customers' document roots are in the
// package doc ("Webroots"); this file implements them: openDocroot and
// trustedLink (the path to the docroot), checkOwner, openBeneath (no link
// beneath the docroot), writeToken, and the bookkeeping of what was made
// (challengeDir).

// wellKnown is the challenge path beneath a docroot (RFC 8555 section 8.3).
var wellKnown = []string{".well-known", "acme-challenge"}

type webrootSolver struct {
	root   string
	roots  map[string]string
	owners map[string]uint32
	log    *slog.Logger

	mu   sync.Mutex
	open map[string]*challengeDir // by docroot, while it holds tokens
}

// challengeDir is a docroot's acme-challenge directory, opened.
type challengeDir struct {
	docroot string
	// dirs are the docroot, .well-known and acme-challenge; made[i] says
	// whether this run made dirs[i+1].
	dirs   [3]*os.Root
	made   [2]bool
	tokens map[string]bool // written, not yet removed
}

func newWebrootSolver(cc ChallengeConfig, log *slog.Logger) *webrootSolver {
	return &webrootSolver{root: cc.Webroot, roots: cc.WebrootMap, owners: cc.WebrootOwners, log: log, open: map[string]*challengeDir{}}
}

// closest returns the value of name's entry in m or that of its closest
// parent domain.
func closest[V any](m map[string]V, name string) (V, string, bool) {
	for n := name; n != ""; {
		if v, ok := m[n]; ok {
			return v, n, true
		}
		_, rest, ok := strings.Cut(n, ".")
		if !ok {
			break
		}
		n = rest
	}
	var zero V
	return zero, "", false
}

// rootFor returns the document root for name: the WebrootMap entry of the
// name or its closest parent, else Webroot.
func (s *webrootSolver) rootFor(name string) (string, error) {
	// Clean: "/var/www/html/" and "/var/www/html" are one docroot, whose
	// made directories are removed once, after its last token.
	if r, _, ok := closest(s.roots, name); ok {
		return filepath.Clean(r), nil
	}
	if s.root != "" {
		return filepath.Clean(s.root), nil
	}
	return "", fmt.Errorf("%s: no webroot for the name or a parent domain", name)
}

func (s *webrootSolver) typ() string  { return HTTP01 }
func (s *webrootSolver) start() error { return nil }

func (s *webrootSolver) present(_ context.Context, name, token, keyAuth string) error {
	if err := checkToken(token); err != nil {
		return err
	}
	root, err := s.rootFor(name)
	if err != nil {
		return err
	}
	cd, err := s.acquire(name, root, token)
	if err != nil {
		return fmt.Errorf("webroot %s: %w", root, err)
	}
	if err := writeToken(cd.dirs[2], token, keyAuth); err != nil {
		s.release(cd, token)
		return fmt.Errorf("webroot %s: %w", root, err)
	}
	return nil
}

func (s *webrootSolver) cleanup(_ context.Context, name, token, _ string) {
	root, err := s.rootFor(name)
	if err != nil || checkToken(token) != nil {
		return // present refused it: nothing was written
	}
	s.mu.Lock()
	cd := s.open[root]
	s.mu.Unlock()
	if cd == nil || !s.holds(cd, token) {
		return
	}
	if err := cd.dirs[2].Remove(token); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("webroot: removing the challenge file", "docroot", root, "token", token, "err", err)
	}
	s.release(cd, token)
}

func (s *webrootSolver) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cd := range s.open {
		cd.close()
	}
	clear(s.open)
	return nil
}

// acquire opens the docroot's challenge directory, or takes the one a
// concurrent challenge opened, checks the docroot's owner for name, and
// records token in it.
func (s *webrootSolver) acquire(name, root, token string) (*challengeDir, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cd := s.open[root]
	if cd == nil {
		docroot, err := openDocroot(root)
		if err != nil {
			return nil, err
		}
		// Before anything is made in it.
		if err := s.checkOwner(name, docroot); err != nil {
			docroot.Close()
			return nil, err
		}
		if cd, err = openChallengeDir(root, docroot); err != nil {
			return nil, err
		}
		s.open[root] = cd
	} else if err := s.checkOwner(name, cd.dirs[0]); err != nil {
		return nil, err // another domain's docroot
	}
	cd.tokens[token] = true
	return cd, nil
}

// openChallengeDir opens .well-known/acme-challenge beneath docroot,
// making what is missing.
func openChallengeDir(root string, docroot *os.Root) (*challengeDir, error) {
	cd := &challengeDir{docroot: root, tokens: map[string]bool{}}
	cd.dirs[0] = docroot
	for i, elem := range wellKnown {
		var err error
		cd.dirs[i+1], cd.made[i], err = openBeneath(cd.dirs[i], strings.Join(wellKnown[:i+1], "/"), elem)
		if err != nil {
			cd.removeMade()
			cd.close()
			return nil, err
		}
	}
	return cd, nil
}

// release forgets token; after the last, it removes the directories this
// run made, if they are empty, and closes them.
func (s *webrootSolver) release(cd *challengeDir, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if delete(cd.tokens, token); len(cd.tokens) > 0 {
		return
	}
	delete(s.open, cd.docroot)
	cd.removeMade()
	cd.close()
}

func (s *webrootSolver) holds(cd *challengeDir, token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cd.tokens[token]
}

func (cd *challengeDir) removeMade() {
	for i := len(cd.made) - 1; i >= 0; i-- {
		if cd.made[i] && cd.dirs[i] != nil {
			// Not empty (the customer put something there meanwhile):
			// theirs now, left as it is.
			cd.dirs[i].Remove(wellKnown[i])
		}
	}
}

func (cd *challengeDir) close() {
	for _, r := range cd.dirs {
		if r != nil {
			r.Close()
		}
	}
}

// checkOwner refuses a docroot that belongs neither to root nor to the
// domain's account, where WebrootOwners knows it.
func (s *webrootSolver) checkOwner(name string, docroot *os.Root) error {
	want, domain, known := closest(s.owners, name)
	if !known {
		return nil
	}
	fi, err := docroot.Stat(".")
	if err != nil {
		return err
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 0 && uid != want {
		return fmt.Errorf("the docroot is owned by uid %d, not root nor uid %d (the account of %s)", uid, want, domain)
	}
	return nil
}

// openBeneath opens the directory elem of parent (shown as rel, its path
// beneath the docroot), making it 0755 when it is missing. A link is
// refused: the customer made it, and a link is the one way a write meant
// for the docroot lands elsewhere.
func openBeneath(parent *os.Root, rel, elem string) (dir *os.Root, made bool, err error) {
	fi, err := parent.Lstat(elem)
	if errors.Is(err, fs.ErrNotExist) {
		if err := parent.Mkdir(elem, 0o755); err != nil {
			return nil, false, err
		}
		made = true
		fi, err = parent.Lstat(elem)
	}
	if err != nil {
		return nil, made, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := parent.Readlink(elem)
		return nil, made, fmt.Errorf("%s is a symbolic link (to %s): certplan writes challenge files only into real directories beneath the docroot; remove the link or map the name to the directory it points to", rel, target)
	}
	if !fi.IsDir() {
		return nil, made, fmt.Errorf("%s is not a directory", rel)
	}
	dir, err = openSame(parent, elem, fi)
	if err != nil {
		return nil, made, fmt.Errorf("%s: %w", rel, err)
	}
	if made {
		// 0755 whatever root's umask: the web server reads through it.
		err = fchmod(dir, 0o755)
	}
	return dir, made, err
}

// openSame opens the directory elem of parent and checks that it is the
// one fi describes (not a link swapped in since the Lstat).
func openSame(parent *os.Root, elem string, fi fs.FileInfo) (*os.Root, error) {
	dir, err := parent.OpenRoot(elem)
	if err != nil {
		return nil, err
	}
	now, err := dir.Stat(".")
	if err == nil && !os.SameFile(fi, now) {
		err = errors.New("changed while it was being opened")
	}
	if err != nil {
		dir.Close()
		return nil, err
	}
	return dir, nil
}

func fchmod(dir *os.Root, mode fs.FileMode) error {
	f, err := dir.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chmod(mode)
}

// writeToken writes keyAuth to a temporary file in dir, 0644 whatever the
// umask, and renames it to token: the web server never reads half a file.
func writeToken(dir *os.Root, token, keyAuth string) error {
	tmp := "." + token + ".tmp"
	f, err := dir.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(keyAuth)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = dir.Rename(tmp, token)
	}
	if err != nil {
		dir.Remove(tmp)
	}
	return err
}

// maxLinks bounds the links followed on a docroot path, as the kernel's
// ELOOP limit does.
const maxLinks = 40

// openDocroot opens dir one component at a time from "/", following only
// links that root made in a directory no one else can write.
func openDocroot(dir string) (*os.Root, error) {
	path, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for range maxLinks {
		r, next, err := walkDocroot(path)
		if err != nil || next == "" {
			return r, err
		}
		path = next
	}
	return nil, fmt.Errorf("more than %d links on the path", maxLinks)
}

// walkDocroot opens path, an absolute clean path, component by component.
// At a trusted link it stops and returns the path with the link replaced
// by its target, to walk again.
func walkDocroot(path string) (r *os.Root, next string, err error) {
	cur, err := os.OpenRoot("/")
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err != nil || next != "" {
			cur.Close()
		}
	}()
	elems := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, elem := range elems {
		if elem == "" {
			continue
		}
		at := "/" + filepath.Join(elems[:i+1]...)
		fi, err := cur.Lstat(elem)
		if err != nil {
			return nil, "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := trustedLink(cur, elem, at, fi)
			if err != nil {
				return nil, "", err
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(at), target)
			}
			return nil, filepath.Join(append([]string{target}, elems[i+1:]...)...), nil
		}
		if !fi.IsDir() {
			return nil, "", fmt.Errorf("%s is not a directory", at)
		}
		sub, err := openSame(cur, elem, fi)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", at, err)
		}
		cur.Close()
		cur = sub
	}
	return cur, "", nil
}

// trustedLink returns the target of the link elem of dir (at is its path)
// if root made it in a directory that only root can write; the customer
// can make neither.
func trustedLink(dir *os.Root, elem, at string, fi fs.FileInfo) (string, error) {
	target, err := dir.Readlink(elem)
	if err != nil {
		return "", err
	}
	dfi, err := dir.Stat(".")
	if err != nil {
		return "", err
	}
	linkUID := fi.Sys().(*syscall.Stat_t).Uid
	dirUID := dfi.Sys().(*syscall.Stat_t).Uid
	if linkUID != 0 || dirUID != 0 || dfi.Mode().Perm()&0o022 != 0 {
		return "", fmt.Errorf("%s is a symbolic link (to %s) that root did not make in a directory only root can write: certplan does not follow it; give the directory it points to", at, target)
	}
	return target, nil
}
