package sources

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The files cPanel keeps its domains in. cPanel documents them by what its
// interfaces write: /etc/userdomains is rebuilt from /var/cpanel/users by
// WHM's updateuserdomains ("domain: user", every domain, addon, parked and
// subdomain of every account, plus "*: nobody"); Email Routing puts each
// domain in one of /etc/localdomains (Local Mail Exchanger: mail delivered
// here), /etc/secondarymx (Backup Mail Exchanger: mail held here until the
// primary MX is up) or /etc/remotedomains (Remote Mail Exchanger: mail is
// not accepted here). /var/cpanel/userdata/USER/VHOST is the YAML record
// of one web virtual host (documentroot, user, group, homedir, servername,
// serveralias, ...), next to USER/main (the account's domain lists),
// VHOST_SSL (the TLS vhost) and cache files.
const (
	cpanelUserdomains  = "/etc/userdomains"
	cpanelLocaldomains = "/etc/localdomains"
	cpanelSecondaryMX  = "/etc/secondarymx"
	cpanelRemote       = "/etc/remotedomains"
	cpanelUserdata     = "/var/cpanel/userdata"
	passwdFile         = "/etc/passwd"
)

// maxUserdata bounds one userdata file; real ones are a few kilobytes.
const maxUserdata = 1 << 20

// Cpanel reads a cPanel server's domains under root: those of
// /etc/userdomains (with their accounts), /etc/localdomains and
// /etc/secondarymx, less those of /etc/remotedomains (left out as
// [Skipped]: their mail is delivered elsewhere), and the document roots
// and owners of /var/cpanel/userdata.
func Cpanel(root string) *Result {
	r := &Result{}
	remote := &Result{}
	remote.listFile(root, cpanelRemote, "cpanel", true)
	r.Errors = append(r.Errors, remote.Errors...)
	r.userdomains(root)
	r.listFile(root, cpanelLocaldomains, "cpanel", false)
	r.listFile(root, cpanelSecondaryMX, "cpanel", true)
	r.dropRemote(remote)
	r.userdata(root)
	return r
}

// userdomains reads /etc/userdomains: "domain: user" lines.
func (r *Result) userdomains(root string) {
	file := under(root, cpanelUserdomains)
	f := r.openFile(file, false)
	if f == nil {
		return
	}
	defer f.Close()
	r.readUserdomains(f, file)
}

// readUserdomains reads "domain: user" lines from rd.
func (r *Result) readUserdomains(rd io.Reader, file string) {
	r.eachLine(rd, file, func(n int, line string) {
		if strings.TrimSpace(line) == "" {
			return
		}
		d, user, ok := parseUserdomain(line)
		switch {
		case !ok:
			r.fail(file, n, fmt.Errorf("%q: want \"domain: user\"", line))
		case d == "*":
			// "*: nobody": cPanel's catch-all line, not a domain.
		default:
			r.add(d, "cpanel:"+cpanelUserdomains, user, file, n)
		}
	})
}

// parseUserdomain splits a userdomains line into domain and account.
func parseUserdomain(line string) (domain, user string, ok bool) {
	d, u, found := strings.Cut(line, ":")
	d, u = strings.TrimSpace(d), strings.TrimSpace(u)
	if !found || d == "" || u == "" || strings.ContainsAny(u, " \t:") {
		return "", "", false
	}
	return d, u, true
}

// dropRemote moves the domains that remote lists from r.Domains to
// r.Skipped, once each.
func (r *Result) dropRemote(remote *Result) {
	isRemote := map[string]bool{}
	for _, d := range remote.Domains {
		isRemote[d.Name] = true
	}
	kept := r.Domains[:0]
	skipped := map[string]bool{}
	for _, d := range r.Domains {
		if !isRemote[d.Name] {
			kept = append(kept, d)
			continue
		}
		if !skipped[d.Name] {
			skipped[d.Name] = true
			r.Skipped = append(r.Skipped, Skipped{Domain: d.Name, Source: "cpanel:" + cpanelRemote,
				Reason: "listed in " + cpanelRemote + ": its mail is delivered elsewhere (cPanel's Remote Mail Exchanger)"})
		}
	}
	r.Domains = kept
}

// vhost is what certplan reads of a userdata file.
type vhost struct {
	DocumentRoot string `yaml:"documentroot"`
	User         string `yaml:"user"`
	ServerName   string `yaml:"servername"`
	ServerAlias  string `yaml:"serveralias"`
}

// userdata reads /var/cpanel/userdata/USER/VHOST for the document roots
// and their owners. A missing userdata directory is not an error: the
// domains are still listed, and webroots must then be given.
func (r *Result) userdata(root string) {
	dir := under(root, cpanelUserdata)
	users, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			r.fail(dir, 0, fileErr(err))
		}
		return
	}
	var uids map[string]uint32
	for _, u := range users {
		if !u.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, u.Name()))
		if err != nil {
			r.fail(filepath.Join(dir, u.Name()), 0, fileErr(err))
			continue
		}
		for _, f := range files {
			if !isVhostFile(f) {
				continue
			}
			if uids == nil {
				uids = r.passwd(root)
			}
			r.vhostFile(filepath.Join(dir, u.Name(), f.Name()), u.Name(), uids)
		}
	}
}

// isVhostFile reports whether a userdata entry is a vhost's file: named
// like a domain, not main, cache files or the _SSL twin (same docroot).
func isVhostFile(f os.DirEntry) bool {
	n := f.Name()
	if !f.Type().IsRegular() || strings.HasSuffix(n, "_SSL") || !strings.Contains(n, ".") {
		return false
	}
	for _, suf := range []string{".cache", ".json", ".yaml", ".stor", ".lock", ".bak", ".tmp"} {
		if strings.HasSuffix(n, suf) {
			return false
		}
	}
	_, err := normalize(n)
	return err == nil
}

// vhostFile reads one userdata file into r.Webroots and r.Owners.
func (r *Result) vhostFile(path, dirUser string, uids map[string]uint32) {
	f, err := os.Open(path)
	if err != nil {
		r.fail(path, 0, fileErr(err))
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxUserdata+1))
	if err != nil {
		r.fail(path, 0, fileErr(err))
		return
	}
	v, line, err := parseVhost(data)
	if err != nil {
		r.fail(path, line, err)
		return
	}
	user := v.User
	if user == "" {
		user = dirUser
	}
	uid, known := uids[user]
	if !known {
		r.fail(path, 0, fmt.Errorf("user %q is not in %s: the owner of %s is not checked", user, passwdFile, v.DocumentRoot))
	}
	for _, name := range vhostNames(v, filepath.Base(path)) {
		if r.Webroots == nil {
			r.Webroots, r.Owners = map[string]string{}, map[string]uint32{}
		}
		r.Webroots[name] = v.DocumentRoot
		if known {
			r.Owners[name] = uid
		}
	}
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// parseVhost decodes a userdata file; an error comes with its line when
// YAML gives one.
func parseVhost(data []byte) (vhost, int, error) {
	var v vhost
	if len(data) > maxUserdata {
		return v, 0, fmt.Errorf("larger than %d bytes: not a cPanel userdata file", maxUserdata)
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		line := 0
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return v, line, fmt.Errorf("not cPanel userdata YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if v.DocumentRoot == "" || !filepath.IsAbs(v.DocumentRoot) {
		return v, 0, fmt.Errorf("documentroot %q: want an absolute path", v.DocumentRoot)
	}
	return v, 0, nil
}

// vhostNames are the names a vhost serves: its file name, servername and
// serveralias, normalised, without wildcards.
func vhostNames(v vhost, file string) []string {
	var out []string
	for _, s := range append([]string{file, v.ServerName}, strings.Fields(v.ServerAlias)...) {
		if n, err := normalize(s); err == nil && !contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// passwd reads the users' uids from the root's /etc/passwd
// ("name:password:uid:gid:gecos:home:shell").
func (r *Result) passwd(root string) map[string]uint32 {
	uids := map[string]uint32{}
	file := under(root, passwdFile)
	f := r.openFile(file, false)
	if f == nil {
		return uids
	}
	defer f.Close()
	return r.readPasswd(f, file)
}

// readPasswd reads passwd lines from rd into a map of user to uid.
func (r *Result) readPasswd(rd io.Reader, file string) map[string]uint32 {
	uids := map[string]uint32{}
	r.eachLine(rd, file, func(n int, line string) {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			return
		}
		fs := strings.Split(line, ":")
		uid, err := strconv.ParseUint(safeIndex(fs, 2), 10, 32)
		if len(fs) < 4 || fs[0] == "" || err != nil {
			r.fail(file, n, errors.New("want \"name:password:uid:gid:...\""))
			return
		}
		if _, dup := uids[fs[0]]; !dup {
			uids[fs[0]] = uint32(uid)
		}
	})
	return uids
}

func safeIndex(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}
