package dnscheck

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/certplan/certplan/names"
)

// maxLine bounds a line of a domain list or zone file header.
const maxLine = 64 << 10

// maxListErrors bounds the errors ReadDomains reports at once.
const maxListErrors = 10

// LineError is a bad line of a domain list or zone file.
type LineError struct {
	File string // as given; "-" is standard input
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ReadDomains reads domain names, one a line; "#" starts a comment, blank
// lines are skipped. Names are normalised (see package names) and merged;
// the result is sorted. Bad lines are reported as *LineError naming file
// (used only in messages) and line, up to ten at once, joined.
func ReadDomains(r io.Reader, file string) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	seen := map[string]bool{}
	var out []string
	var errs []error
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if line == 1 {
			s = strings.TrimPrefix(s, "\ufeff") // a byte-order mark, as Windows editors write
		}
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if f := strings.Fields(s); len(f) > 1 {
			errs = append(errs, &LineError{file, line, fmt.Errorf("%q: want one domain a line", s)})
		} else if n, err := names.Normalize(s); err != nil {
			errs = append(errs, &LineError{file, line, err})
		} else if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
		if len(errs) == maxListErrors {
			errs = append(errs, fmt.Errorf("%s: too many errors", file))
			break
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line longer than %d bytes", maxLine)
		}
		errs = append(errs, &LineError{file, line + 1, err})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Strings(out)
	return out, nil
}

// ZoneDirDomains returns the origins of the BIND zone files in dir: the
// hosted domains, as cPanel keeps them in /var/named. It reads the regular
// files (or links to them) named *.db or *.zone, not hidden, and skips
// everything else
// (named.ca, *.jnl journals, *.signed, backups such as *.db.bak,
// subdirectories), and the zones a name server keeps for itself: the root,
// single labels such as localhost.zone and localdomain.zone, and reverse
// zones (*.in-addr.arpa, *.ip6.arpa). A file's origin is its $ORIGIN directive when one
// comes before the first record, else its name without the suffix. Origins
// are normalised and merged; the result is sorted.
func ZoneDirDomains(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("zones: %w", err)
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if e.Type()&fs.ModeSymlink != 0 {
			// Some panels link each zone file from elsewhere: follow a link
			// to a regular file; a dangling one is skipped.
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
		} else if !e.Type().IsRegular() {
			continue
		}
		base, ok := strings.CutSuffix(name, ".db")
		if !ok {
			if base, ok = strings.CutSuffix(name, ".zone"); !ok {
				continue
			}
		}
		path := filepath.Join(dir, name)
		origin, line, err := zoneFileOrigin(path)
		if err != nil {
			return nil, fmt.Errorf("zones: %w", err)
		}
		if origin == "" {
			origin = base
		}
		if notHosted(origin) {
			continue
		}
		n, err := names.Normalize(origin)
		if err != nil {
			if line > 0 {
				return nil, fmt.Errorf("zones: %w", &LineError{path, line, fmt.Errorf("$ORIGIN %w", err)})
			}
			return nil, fmt.Errorf("zones: %s: origin from the file name: %w", path, err)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// notHosted reports whether a zone origin is one that a name server keeps
// for itself and that never hosts mail: the root (root hints), a single
// label such as localhost or localdomain (Red Hat's localhost.zone and
// localdomain.zone), and reverse zones under in-addr.arpa and ip6.arpa.
// A single label with characters not allowed in host names is not
// skipped: it is a mistake to report.
func notHosted(origin string) bool {
	o := names.FromDNS(strings.TrimSpace(origin))
	if o == "" || o == "arpa" || strings.HasSuffix(o, ".arpa") {
		return true
	}
	if strings.Contains(o, ".") {
		// A numeric last label: a reverse zone named by its network
		// (0.0.10.zone), never a mail domain.
		last := o[strings.LastIndexByte(o, '.')+1:]
		return last != "" && strings.Trim(last, "0123456789") == ""
	}
	for _, r := range o {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}

// zoneFileOrigin returns the $ORIGIN of a zone file that comes before its
// first record, and its line; "" when there is none.
func zoneFileOrigin(path string) (string, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), maxLine)
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if i := strings.IndexByte(s, ';'); i >= 0 {
			s = s[:i]
		}
		fs := strings.Fields(s)
		if len(fs) == 0 {
			continue
		}
		if strings.EqualFold(fs[0], "$ORIGIN") {
			if len(fs) < 2 {
				return "", line, &LineError{path, line, errors.New("$ORIGIN without a name")}
			}
			return fs[1], line, nil
		}
		if strings.HasPrefix(fs[0], "$") {
			continue // $TTL, $INCLUDE, $GENERATE
		}
		return "", 0, nil // the first record
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return "", 0, &LineError{path, line + 1, fmt.Errorf("line longer than %d bytes: not a BIND zone file (move it out of the zones directory)", maxLine)}
		}
		return "", 0, fmt.Errorf("%s: %w", path, err)
	}
	return "", 0, nil
}
