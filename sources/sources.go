package sources

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/certplan/certplan/names"
)

// Kinds are the source kinds [Read] knows, for --source.
var Kinds = []string{"cpanel", "directadmin", "exim", "postfix"}

// maxLine bounds a line of any file a source reads; a longer line is an
// error of that line, and the next one is read.
const maxLine = 64 << 10

// maxErrorsPerFile bounds the errors kept for one file: a binary file given
// by mistake would otherwise give one per line.
const maxErrorsPerFile = 20

// Domain is one hosted domain.
type Domain struct {
	// Name is the normalised A-label form (package names).
	Name string
	// Source is the kind and the file that named it, such as
	// "cpanel:/etc/userdomains", "domains:list.txt", "argument".
	Source string
	// AlsoIn are the other sources that named it (after [Merge]), sorted.
	AlsoIn []string
	// Owner is the account that owns the domain, where the source says.
	Owner string
}

// InputError is a problem with one input: a file, or a line of it.
type InputError struct {
	// File is the path as read (under the root).
	File string
	// Line is 1-based; 0 when the problem is the whole file.
	Line int
	Err  error
}

func (e *InputError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// Skipped is a domain a source names but that is deliberately left out,
// such as a cPanel domain whose mail is delivered elsewhere.
type Skipped struct {
	Domain string
	Source string
	Reason string
}

// Result is what one or several sources found.
type Result struct {
	// Domains in the order found; [Merge] sorts and merges them.
	Domains []Domain
	Errors  []*InputError
	Skipped []Skipped
	// Webroots maps a domain to its document root (cPanel's userdata).
	Webroots map[string]string
	// Owners maps a domain to the uid of the account owning its document
	// root (cPanel's userdata and the root's /etc/passwd).
	Owners map[string]uint32

	perFile map[string]int // errors per file, for maxErrorsPerFile
}

// Read runs the source kind under root. It fails only for an unknown kind;
// everything else is in the Result.
func Read(kind, root string) (*Result, error) {
	switch strings.ToLower(kind) {
	case "cpanel":
		return Cpanel(root), nil
	case "directadmin":
		return DirectAdmin(root), nil
	case "postfix":
		return Postfix(root), nil
	case "exim":
		return Exim(root), nil
	}
	return nil, fmt.Errorf("unknown domain source %q: want one of %s", kind, strings.Join(Kinds, ", "))
}

// fail records an error of file (line 0: the whole file).
func (r *Result) fail(file string, line int, err error) {
	if r.perFile == nil {
		r.perFile = map[string]int{}
	}
	r.perFile[file]++
	switch n := r.perFile[file]; {
	case n <= maxErrorsPerFile:
		r.Errors = append(r.Errors, &InputError{File: file, Line: line, Err: err})
	case n == maxErrorsPerFile+1:
		r.Errors = append(r.Errors, &InputError{File: file, Err: fmt.Errorf("more than %d bad lines; the others are not reported", maxErrorsPerFile)})
	}
}

// add records a domain given as text at file:line, normalising it; a name
// that does not normalise is an error of that line.
func (r *Result) add(name, source, owner, file string, line int) bool {
	n, err := normalize(name)
	if err != nil {
		r.fail(file, line, err)
		return false
	}
	r.Domains = append(r.Domains, Domain{Name: n, Source: source, Owner: owner})
	return true
}

// normalize is names.Normalize with the reason alone in the error, since
// the caller names the file and line.
func normalize(s string) (string, error) {
	n, err := names.Normalize(s)
	if err != nil {
		var ne *names.Error
		if errors.As(err, &ne) {
			return "", fmt.Errorf("%q: %s", s, ne.Reason)
		}
		return "", err
	}
	return n, nil
}

// Merge joins results: each domain once, sorted, its Source the first
// that named it and AlsoIn the others; errors and skipped domains in
// order; webroots and owners, the first result's winning.
func Merge(rs ...*Result) *Result {
	out := &Result{}
	idx := map[string]int{}
	for _, r := range rs {
		if r == nil {
			continue
		}
		for _, d := range r.Domains {
			i, ok := idx[d.Name]
			if !ok {
				idx[d.Name] = len(out.Domains)
				d.AlsoIn = nil
				out.Domains = append(out.Domains, d)
				continue
			}
			m := &out.Domains[i]
			if m.Owner == "" {
				m.Owner = d.Owner
			}
			if d.Source != m.Source && !contains(m.AlsoIn, d.Source) {
				m.AlsoIn = append(m.AlsoIn, d.Source)
			}
		}
		out.Errors = append(out.Errors, r.Errors...)
		out.Skipped = append(out.Skipped, r.Skipped...)
		out.Webroots = mergeMap(out.Webroots, r.Webroots)
		out.Owners = mergeMap(out.Owners, r.Owners)
	}
	for i := range out.Domains {
		sort.Strings(out.Domains[i].AlsoIn)
	}
	sort.Slice(out.Domains, func(i, j int) bool { return out.Domains[i].Name < out.Domains[j].Name })
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mergeMap[V any](dst, src map[string]V) map[string]V {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = map[string]V{}
	}
	for k, v := range src {
		if _, ok := dst[k]; !ok {
			dst[k] = v
		}
	}
	return dst
}

// Names returns the domain names of r, in r's order.
func (r *Result) Names() []string {
	out := make([]string, len(r.Domains))
	for i, d := range r.Domains {
		out[i] = d.Name
	}
	return out
}

// under joins a system path to root, for reading.
func under(root, path string) string {
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, path)
}

// openFile opens a file of a source, recording an error and returning nil
// when it cannot (a directory counts as unreadable). optional files that
// do not exist are not an error.
func (r *Result) openFile(path string, optional bool) *os.File {
	f, err := os.Open(path)
	if err != nil {
		if optional && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		r.fail(path, 0, fileErr(err))
		return nil
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		r.fail(path, 0, errors.New("is a directory, want a file"))
		return nil
	}
	return f
}

// fileErr is err without the path that os repeats.
func fileErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// eachLine calls fn with each line of rd (1-based number, without the line
// end and, on the first line, a byte-order mark). A line longer than
// maxLine is an error of that line, recorded against file, and skipped; a
// read error ends the file.
func (r *Result) eachLine(rd io.Reader, file string, fn func(n int, line string)) {
	br := bufio.NewReaderSize(rd, 4096)
	var buf []byte
	for n := 1; ; n++ {
		buf = buf[:0]
		long := false
		var err error
		for {
			var part []byte
			var more bool
			part, more, err = br.ReadLine()
			if len(buf)+len(part) > maxLine {
				long = true
			} else {
				buf = append(buf, part...)
			}
			if !more || err != nil {
				break
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			r.fail(file, n, fileErr(err))
			return
		}
		if long {
			r.fail(file, n, fmt.Errorf("line longer than %d bytes", maxLine))
			continue
		}
		if n == 1 {
			buf = bytes.TrimPrefix(buf, []byte("\ufeff"))
		}
		fn(n, string(buf))
	}
}

// cutComment returns s before the first c.
func cutComment(s string, c byte) string {
	if i := strings.IndexByte(s, c); i >= 0 {
		return s[:i]
	}
	return s
}
