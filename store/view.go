package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// OpenView opens the state directory for a run that must write nothing
// (certplan issue --dry-run): an existing directory read-only, as
// [OpenReadOnly] does; a missing one as an empty state directory, in which
// every read finds nothing ([ErrNotFound]) and nothing is created, not even
// the directory. Like OpenReadOnly it cannot lock, so it cannot write.
func OpenView(dir string) (*Store, error) {
	if dir == "" {
		dir = DefaultDir
	}
	_, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return &Store{dir: dir}, nil // root nil: see absent
	}
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return OpenReadOnly(dir)
}

// absent reports whether the store is OpenView's view of a missing
// directory: it has no root, and every path in it does not exist.
func (s *Store) absent() bool { return s.root == nil }

// notExist is the error of an operation on name in an absent store.
func (s *Store) notExist(op, name string) error {
	return &fs.PathError{Op: op, Path: s.path(name), Err: fs.ErrNotExist}
}

// lstat is os.Root.Lstat, for an absent store too.
func (s *Store) lstat(name string) (fs.FileInfo, error) {
	if s.absent() {
		return nil, s.notExist("lstat", name)
	}
	return s.root.Lstat(name)
}

// readlink is os.Root.Readlink, for an absent store too.
func (s *Store) readlink(name string) (string, error) {
	if s.absent() {
		return "", s.notExist("readlink", name)
	}
	return s.root.Readlink(name)
}
