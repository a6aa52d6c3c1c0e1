package emit

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/certplan/certplan/model"
)

// eximMacros are the macros RenderExim defines, in order. The SNI becomes
// a file name only when it is a lower-case DNS name; anything else ("-")
// names no file, and the IP's default is served. Exim expands
// tls_certificate again once the client's SNI is known (Exim 4.80+).
var eximMacros = [][2]string{
	{"CERTPLAN_LIVE_SNI", `${if match{${lc:$tls_in_sni}}{\N^[a-z0-9][a-z0-9.-]*$\N}{${lc:$tls_in_sni}}{-}}`},
	{"CERTPLAN_LIVE_WILD", `_.${sg{CERTPLAN_LIVE_SNI}{\N^[^.]+\.\N}{}}`},
}

// eximCertificate is tls_certificate: the SNI name's entry, else its
// wildcard's, else the default of the IP the client connected to.
const eximCertificate = `${if exists{CERTPLAN_LIVE_DIR/sni/CERTPLAN_LIVE_SNI/combined.pem}\
                       {CERTPLAN_LIVE_DIR/sni/CERTPLAN_LIVE_SNI/combined.pem}\
                       {${if exists{CERTPLAN_LIVE_DIR/sni/CERTPLAN_LIVE_WILD/combined.pem}\
                             {CERTPLAN_LIVE_DIR/sni/CERTPLAN_LIVE_WILD/combined.pem}\
                             {CERTPLAN_LIVE_DIR/default-$received_ip_address/combined.pem}}}}`

// RenderExim is the Exim main-section configuration for plan p. It names
// no IP or name: the plan decides only which live entries exist, so the
// text changes only with the live directory.
func RenderExim(p *model.Plan, o Options) string {
	o = o.withDefaults()
	s := newServing(p, o.LiveDir)
	var b strings.Builder
	b.WriteString("# certplan: serving paths (Exim main section; Debian: a file in\n")
	b.WriteString("# /etc/exim4/conf.d/main/ or exim4.conf.template). Exim reads the files as\n")
	b.WriteString("# its own user at each TLS start: run certplan with --key-group of that\n")
	b.WriteString("# user's group (Debian-exim; cPanel: mail). No reload after a renewal.\n")
	fmt.Fprintf(&b, "# Entries: %d default (%s), %d SNI.\n", len(s.ips), strings.Join(s.ips, " "), len(s.names))
	fmt.Fprintf(&b, "CERTPLAN_LIVE_DIR = %s\n", o.LiveDir)
	for _, m := range eximMacros {
		fmt.Fprintf(&b, "%s = %s\n", m[0], m[1])
	}
	fmt.Fprintf(&b, "tls_certificate = %s\n", eximCertificate)
	b.WriteString("# tls_privatekey unset: the key is in combined.pem, read with the\n")
	b.WriteString("# certificate in one open, so no connection pairs a new one with an old key.\n")
	return b.String()
}

// eximResolved is what `exim -bP` prints for tls_certificate: the macros
// substituted and the continuation lines joined, without white space.
func eximResolved(live string) string {
	v := eximCertificate
	for i := len(eximMacros) - 1; i >= 0; i-- { // a macro may use an earlier one
		v = strings.ReplaceAll(v, eximMacros[i][0], eximMacros[i][1])
	}
	v = strings.ReplaceAll(v, "CERTPLAN_LIVE_DIR", live)
	return noSpace(strings.ReplaceAll(v, "\\\n", ""))
}

func noSpace(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// CheckExim compares tls_certificate and tls_privatekey of Exim's
// configuration (`exim -bP`, with -C configFile when given) with what
// RenderExim prints for liveDir.
func CheckExim(ctx context.Context, exe, configFile, liveDir string) ([]Diff, error) {
	args := []string{"-bP"}
	if configFile != "" {
		args = []string{"-C", configFile, "-bP"}
	}
	args = append(args, "tls_certificate", "tls_privatekey")
	out, err := exec.CommandContext(ctx, exe, args...).Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", exe, strings.Join(args, " "), cmdErr(err))
	}
	have := map[string]string{}
	for sc := bufio.NewScanner(strings.NewReader(string(out))); sc.Scan(); {
		k, v, _ := strings.Cut(sc.Text(), "=")
		have[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	var diffs []Diff
	if want := eximResolved(liveDir); noSpace(have["tls_certificate"]) != want {
		diffs = append(diffs, Diff{"tls_certificate", want, have["tls_certificate"]})
	}
	if have["tls_privatekey"] != "" {
		diffs = append(diffs, Diff{"tls_privatekey", "", have["tls_privatekey"]})
	}
	return diffs, nil
}
