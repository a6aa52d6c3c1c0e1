package sources

import (
	"fmt"
	"io"
	"strings"
)

// DomainList reads a plain list, one domain a line ("#" starts a comment,
// blank lines are skipped), as --domains takes it. file names the input in
// errors and in each domain's source ("domains:FILE"; "-" is standard
// input).
func DomainList(rd io.Reader, file string) *Result {
	r := &Result{}
	r.readList(rd, file, "domains:"+file, "")
	return r
}

// DirectAdmin reads DirectAdmin's /etc/virtual/domains under root: the
// domains whose mail the server accepts, one a line.
func DirectAdmin(root string) *Result {
	r := &Result{}
	r.listFile(root, "/etc/virtual/domains", "directadmin", false)
	return r
}

// listFile reads the one-domain-a-line file path under root as source kind.
func (r *Result) listFile(root, path, kind string, optional bool) {
	file := under(root, path)
	f := r.openFile(file, optional)
	if f == nil {
		return
	}
	defer f.Close()
	r.readList(f, file, kind+":"+path, "")
}

// readList reads one domain a line from rd.
func (r *Result) readList(rd io.Reader, file, source, owner string) {
	r.eachLine(rd, file, func(n int, line string) {
		s := strings.TrimSpace(cutComment(line, '#'))
		if s == "" {
			return
		}
		if len(strings.Fields(s)) > 1 {
			r.fail(file, n, fmt.Errorf("%q: want one domain a line", s))
			return
		}
		r.add(s, source, owner, file, n)
	})
}
