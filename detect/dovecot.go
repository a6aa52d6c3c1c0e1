package detect

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// dovecotPorts are the ports of Dovecot's protocols: the plain port
// (STARTTLS) and the implicit-TLS one (RFC 8314).
var dovecotPorts = map[string][]string{"imap": {"143", "993"}, "pop3": {"110", "995"}, "submission": {"587"}}

// dovecot reads "protocols" (default imap) into ports and returns
// "listen" (default "*, ::") from dovecot.conf and conf.d/*.conf.
func dovecot(root string, ports map[string]bool) []string {
	files := []string{filepath.Join(root, "etc/dovecot/dovecot.conf")}
	more, _ := filepath.Glob(filepath.Join(root, "etc/dovecot/conf.d/*.conf"))
	sort.Strings(more)
	files = append(files, more...)
	protocols := []string{"imap"}
	var listen []string
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.IsDir() {
			continue
		}
		for _, kv := range keyValues(f, "=") {
			switch kv[0] {
			case "protocols":
				// "protocols = $protocols sieve" adds to the list.
				v := strings.ReplaceAll(kv[1], "$protocols", strings.Join(protocols, " "))
				protocols = strings.Fields(v)
			case "listen":
				listen = splitList(kv[1])
			}
		}
	}
	for _, p := range protocols {
		for _, port := range dovecotPorts[p] {
			ports[port] = true
		}
	}
	if len(listen) == 0 {
		listen = []string{"*", "::"}
	}
	return listen
}
