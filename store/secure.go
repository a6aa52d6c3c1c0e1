package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// UnsafeDirError is a state directory that a user other than root and the
// running user could change, through the directory itself or one above it:
// that user could then swap what certplan, as root, reads and writes
// (private keys, the plan the deploy hooks act on). See [CheckDir].
type UnsafeDirError struct {
	// Dir is the state directory; Path the directory (or symbolic link on
	// the way to it) that is unsafe.
	Dir, Path string
	UID       int
	Mode      fs.FileMode // permission bits and fs.ModeSticky
	// BadOwner: Path is owned by neither root nor the running user.
	// Writable: Path is group- or world-writable (and not an ancestor
	// with the sticky bit set, owned by root).
	BadOwner, Writable bool
}

func (e *UnsafeDirError) Error() string {
	var what []string
	if e.BadOwner {
		who := "root"
		if uid := os.Geteuid(); uid != 0 {
			who = "root or uid " + strconv.Itoa(uid)
		}
		what = append(what, fmt.Sprintf("owned by uid %d%s, not by %s", e.UID, userName(e.UID), who))
	}
	if e.Writable {
		switch {
		case e.Mode&0o022 == 0o022:
			what = append(what, "group- and world-writable")
		case e.Mode&0o002 != 0:
			what = append(what, "world-writable")
		default:
			what = append(what, "group-writable")
		}
	}
	return fmt.Sprintf("unsafe state directory %s: %s is %s (mode %s): another user could replace what certplan reads and writes as root",
		e.Dir, e.Path, strings.Join(what, ", and "), octalMode(e.Mode))
}

// Fix is the shell command that makes Path safe.
func (e *UnsafeDirError) Fix() string {
	var cmds []string
	if e.BadOwner {
		owner := "root:root"
		if uid := os.Geteuid(); uid != 0 {
			owner = strconv.Itoa(uid)
		}
		cmds = append(cmds, "chown "+owner+" "+e.Path)
	}
	if e.Writable {
		cmds = append(cmds, "chmod go-w "+e.Path)
	}
	return strings.Join(cmds, "; ")
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return " (" + u.Username + ")"
	}
	return ""
}

// octalMode writes m as chmod takes it: 0755, 1777.
func octalMode(m fs.FileMode) string {
	n := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	return fmt.Sprintf("%04o", n)
}

// CheckDir checks that only root and the running user can change dir or
// any directory above it, as OpenSSH's StrictModes checks a user's home
// (secure_path in OpenSSH's misc.c): every directory from dir up to / must
// be owned by root or the running user and be neither group- nor
// world-writable. One exception, so that a state directory may live under
// /tmp (tests do): a directory above dir that has the sticky bit and is
// owned by root is accepted although world-writable, because in it other
// users cannot rename or remove the entry below, which this check requires
// to be root's or ours. dir itself gets no such exception.
//
// Both the path as given and the path its symbolic links resolve to are
// checked; a symbolic link on the way must be owned by root or the running
// user (in a sticky directory, whoever owns the link may replace it).
// Components that do not exist yet pass: [Open] creates them, 0700 and
// ours, then checks again.
func CheckDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := checkChain(abs, abs); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if real != abs {
		return checkChain(abs, real)
	}
	return nil
}

// checkChain checks p and each of its ancestors, for state directory dir.
func checkChain(dir, p string) error {
	for leaf := true; ; leaf = false {
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("state dir: %w", err)
		default:
			if err := checkEntry(dir, p, fi, leaf); err != nil {
				return err
			}
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
}

// checkEntry is CheckDir's rule for one path; leaf is the state directory
// itself (or the link naming it).
func checkEntry(dir, p string, fi fs.FileInfo, leaf bool) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("state dir: %s: no owner information", p)
	}
	e := &UnsafeDirError{Dir: dir, Path: p, UID: int(st.Uid), Mode: fi.Mode() & (fs.ModePerm | fs.ModeSticky)}
	e.BadOwner = st.Uid != 0 && int(st.Uid) != os.Geteuid()
	// A link's own mode means nothing: who may replace it is its owner
	// (checked above) and the writers of its directory (checked next).
	if fi.Mode()&fs.ModeSymlink == 0 && fi.Mode()&0o022 != 0 {
		stickyRoot := fi.Mode()&fs.ModeSticky != 0 && st.Uid == 0
		e.Writable = leaf || !stickyRoot
	}
	if e.BadOwner || e.Writable {
		return e
	}
	return nil
}
