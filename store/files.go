package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
)

// The store's file operations. Every name is slash-separated and relative
// to the state directory, and goes through s.root, an [os.Root] on it: no
// name, ".." or symbolic link included, reaches outside the directory (the
// kernel walks from the directory's descriptor; a link that leaves it is an
// error). Files are opened with O_NOFOLLOW on their last component, so a
// state file replaced by a symbolic link is refused even when the link stays
// inside; a file is replaced by renaming a new one over it, which replaces
// a link rather than writing through it. Directories on the way are
// resolved by os.Root, which follows a link that stays inside the state
// directory: only root or the running user can put one there (see
// [CheckDir]), and it still leads nowhere else.

// ErrSymlink means a state file is a symbolic link, which the store never
// follows (the "current" links excepted).
var ErrSymlink = errors.New("is a symbolic link, which certplan does not follow in its state directory")

// path is name's full path, for messages and callers (deploy hooks).
func (s *Store) path(name string) string { return filepath.Join(s.dir, filepath.FromSlash(name)) }

// openFile opens name without following a link at its last component.
func (s *Store) openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	if s.absent() {
		return nil, s.notExist("open", name)
	}
	d, err := s.root.Open(path.Dir(name))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fd, err := syscall.Openat(int(d.Fd()), path.Base(name), flag|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, uint32(perm))
	if errors.Is(err, syscall.ELOOP) {
		err = ErrSymlink
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: s.path(name), Err: err}
	}
	return os.NewFile(uintptr(fd), s.path(name)), nil
}

// readFile reads name; it is not a link.
func (s *Store) readFile(name string) ([]byte, error) {
	f, err := s.openFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// writeFile replaces name with data, atomically: a new file in the same
// directory (created, never opened through a link), synced, then renamed
// over name, and the directory synced. A reader or a crash sees the old
// file or the new one. The parent directories are created 0700.
func (s *Store) writeFile(name string, data []byte, perm os.FileMode) (err error) {
	if err := s.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := path.Join(path.Dir(name), "."+path.Base(name)+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := s.openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			s.root.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil { // not the umask's
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = s.root.Rename(tmp, name); err != nil {
		return err
	}
	return s.syncDir(path.Dir(name))
}

// mkdirAll creates directory name and its parents, 0700.
func (s *Store) mkdirAll(name string) error {
	if err := s.root.MkdirAll(name, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	return nil
}

// readDir lists directory name, which is not a link.
func (s *Store) readDir(name string) ([]fs.DirEntry, error) {
	d, err := s.openFile(name, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDir(-1)
}

func (s *Store) syncDir(name string) error {
	d, err := s.openFile(name, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
