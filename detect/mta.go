package detect

import (
	"bufio"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// postfixServices are master.cf's service names for the mail ports.
var postfixServices = map[string]string{"smtp": "25", "submission": "587", "smtps": "465", "submissions": "465"}

// postfix reads master.cf's smtpd inet services into ports and returns the
// listening addresses: inet_interfaces of main.cf, and the hosts master.cf
// services name.
func postfix(root string, ports map[string]bool) []string {
	var listen []string
	for _, kv := range keyValues(filepath.Join(root, "etc/postfix/main.cf"), "=") {
		if kv[0] == "inet_interfaces" {
			listen = append(listen, splitList(kv[1])...)
		}
	}
	for _, f := range lines(filepath.Join(root, "etc/postfix/master.cf")) {
		fields := strings.Fields(f)
		// service type private unpriv chroot wakeup maxproc command
		if len(fields) < 8 || fields[1] != "inet" || strings.HasPrefix(f, " ") || strings.HasPrefix(f, "\t") || fields[7] != "smtpd" {
			continue
		}
		svc := fields[0]
		if i := strings.LastIndex(svc, ":"); i > 0 { // [::1]:smtp, 192.0.2.10:submission
			host := strings.Trim(svc[:i], "[]")
			if ip, err := netip.ParseAddr(host); host == "localhost" || err == nil && ip.IsLoopback() {
				continue // a content filter's reinjection port: no client sees it
			}
			listen = append(listen, host)
			svc = svc[i+1:]
		}
		if p, ok := postfixServices[svc]; ok {
			ports[p] = true
		} else if isNumber(svc) {
			ports[smtpPort(svc)] = true
		}
	}
	if len(listen) == 0 {
		listen = []string{"all"} // Postfix's default inet_interfaces
	}
	return listen
}

// eximConfig is the Exim configuration file under root ("" when none):
// Debian's split or template configuration, or /etc/exim.conf.
func eximConfig(root string) string {
	for _, rel := range []string{"etc/exim4/exim4.conf", "etc/exim4/exim4.conf.template", "etc/exim.conf", "etc/exim/exim.conf"} {
		if exists(root, rel) {
			return filepath.Join(root, rel)
		}
	}
	if exists(root, "etc/exim4") {
		return filepath.Join(root, "etc/exim4")
	}
	return ""
}

// exim reads daemon_smtp_ports (default 25) and tls_on_connect_ports into
// ports and returns local_interfaces (Debian: dc_local_interfaces).
func exim(root, conf string, ports map[string]bool) []string {
	var kvs [][2]string
	if fi, err := os.Stat(conf); err == nil && !fi.IsDir() {
		kvs = keyValues(conf, "=")
	}
	smtp := []string{"25"}
	var listen []string
	for _, kv := range kvs {
		switch kv[0] {
		case "daemon_smtp_ports", "daemon_smtp_port":
			smtp = eximList(kv[1])
		case "local_interfaces":
			listen = eximList(kv[1])
		}
	}
	for _, p := range smtp {
		if isNumber(p) {
			ports[smtpPort(p)] = true
		} else if q, ok := postfixServices[p]; ok {
			ports[q] = true
		}
	}
	for _, kv := range keyValues(filepath.Join(root, "etc/exim4/update-exim4.conf.conf"), "=") {
		if kv[0] == "dc_local_interfaces" && len(listen) == 0 {
			listen = eximList(strings.Trim(kv[1], `'"`))
		}
	}
	if len(listen) == 0 {
		listen = []string{"all"}
	}
	return listen
}

// eximList splits an Exim list: colon-separated, or with another
// separator after "<" ("<; 127.0.0.1 ; ::1"), as Exim's spec (6.21) says.
func eximList(s string) []string {
	s = strings.TrimSpace(s)
	sep := ":"
	if strings.HasPrefix(s, "<") && len(s) > 1 {
		sep, s = s[1:2], s[2:]
	} else if strings.Contains(s, ";") {
		sep = ";" // Debian's dc_local_interfaces
	}
	var out []string
	for _, it := range strings.Split(s, sep) {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

// keyValues are the "key = value" lines of a file, comments and blank
// lines skipped, continuation lines (leading space) joined.
func keyValues(file, sep string) [][2]string {
	var out [][2]string
	for _, l := range lines(file) {
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(out) > 0 {
			out[len(out)-1][1] += " " + strings.TrimSpace(l)
			continue
		}
		k, v, ok := strings.Cut(l, sep)
		if !ok {
			continue
		}
		out = append(out, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	return out
}

// lines are a file's lines without comments and blank lines; a file that
// cannot be read has none.
func lines(file string) []string {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// splitList splits a Postfix list (commas and spaces).
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
