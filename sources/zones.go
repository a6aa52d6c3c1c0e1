package sources

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Zones returns the origins of the BIND zone files in dir: the hosted
// domains, as cPanel keeps them in /var/named. It reads the regular files
// (or links to them) named *.db or *.zone, not hidden, and skips everything
// else (named.ca, *.jnl journals, *.signed, backups such as *.db.bak,
// subdirectories), and the zones a name server keeps for itself: the root,
// single labels such as localhost.zone, and reverse zones. A file's origin
// is its $ORIGIN directive when one comes before the first record, else its
// name without the suffix. A file that cannot be read or whose header is
// not a zone file's is an error of that file; the others are read.
func Zones(dir string) *Result {
	r := &Result{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		r.fail(dir, 0, fileErr(err))
		return r
	}
	for _, e := range ents {
		if base, ok := zoneFile(dir, e); ok {
			r.zone(filepath.Join(dir, e.Name()), base)
		}
	}
	return r
}

// zoneFile reports whether e is a zone file to read, and its name without
// the suffix.
func zoneFile(dir string, e fs.DirEntry) (string, bool) {
	name := e.Name()
	if strings.HasPrefix(name, ".") {
		return "", false
	}
	if e.Type()&fs.ModeSymlink != 0 {
		// Some panels link each zone file from elsewhere: follow a link to
		// a regular file; a dangling one is skipped.
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() {
			return "", false
		}
	} else if !e.Type().IsRegular() {
		return "", false
	}
	if base, ok := strings.CutSuffix(name, ".db"); ok {
		return base, true
	}
	return strings.CutSuffix(name, ".zone")
}

// zone adds the origin of one zone file.
func (r *Result) zone(path, base string) {
	origin, line, err := zoneOrigin(path)
	if err != nil {
		r.fail(path, line, err)
		return
	}
	if origin == "" {
		origin = base
	}
	if notHosted(origin) {
		return
	}
	n, err := normalize(origin)
	if err != nil {
		if line > 0 {
			r.fail(path, line, fmt.Errorf("$ORIGIN %w", err))
		} else {
			r.fail(path, 0, fmt.Errorf("origin from the file name: %w", err))
		}
		return
	}
	r.Domains = append(r.Domains, Domain{Name: n, Source: "zones:" + path})
}

// zoneOrigin returns the $ORIGIN of a zone file that comes before its first
// record, and its line; "" when there is none. An error comes with the
// line it is about (0: the file).
func zoneOrigin(path string) (string, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fileErr(err)
	}
	defer f.Close()
	return readZoneOrigin(f)
}

// readZoneOrigin is zoneOrigin of the text of rd.
func readZoneOrigin(rd io.Reader) (string, int, error) {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 4096), maxLine)
	line := 0
	for sc.Scan() {
		line++
		fs := strings.Fields(cutComment(sc.Text(), ';'))
		switch {
		case len(fs) == 0:
			continue
		case strings.EqualFold(fs[0], "$ORIGIN"):
			if len(fs) < 2 {
				return "", line, errors.New("$ORIGIN without a name")
			}
			return fs[1], line, nil
		case strings.HasPrefix(fs[0], "$"):
			continue // $TTL, $INCLUDE, $GENERATE
		}
		return "", 0, nil // the first record
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return "", line + 1, fmt.Errorf("line longer than %d bytes: not a BIND zone file (move it out of the zones directory)", maxLine)
		}
		return "", 0, err
	}
	return "", 0, nil
}

// notHosted reports whether a zone origin is one that a name server keeps
// for itself and that never hosts mail: the root (root hints), a single
// label such as localhost or localdomain (Red Hat's localhost.zone and
// localdomain.zone), and reverse zones under in-addr.arpa and ip6.arpa.
// A single label with characters not allowed in host names is not
// skipped: it is a mistake to report.
func notHosted(origin string) bool {
	o := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(origin), "."))
	if o == "" || o == "arpa" || strings.HasSuffix(o, ".arpa") {
		return true
	}
	if strings.Contains(o, ".") {
		// A numeric last label: a reverse zone named by its network
		// (0.0.10.zone), never a mail domain.
		last := o[strings.LastIndexByte(o, '.')+1:]
		return last != "" && strings.Trim(last, "0123456789") == ""
	}
	for _, c := range o {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}
