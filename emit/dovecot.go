package emit

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
)

// RenderDovecot is the Dovecot configuration for plan p: the first IP's
// default as the server-wide certificate (Dovecot needs one with ssl =
// yes), then a local block per IP with its SNI names nested inside.
func RenderDovecot(p *model.Plan, o Options) string {
	o = o.withDefaults()
	s := newServing(p, o.LiveDir)
	v24 := dovecot24(o.DovecotVersion)
	var b strings.Builder
	fmt.Fprintf(&b, "# certplan: serving paths under %s (Dovecot %s settings)\n", o.LiveDir, map[bool]string{false: "2.3", true: "2.4"}[v24])
	if len(s.ips) > 0 {
		dovecotCert(&b, "", s.live, store.LiveDefault(s.ips[0]), v24)
	}
	for _, ip := range s.ips {
		fmt.Fprintf(&b, "local %s {\n", ip)
		dovecotCert(&b, "  ", s.live, store.LiveDefault(ip), v24)
		for _, n := range s.sniNames(ip) {
			fmt.Fprintf(&b, "  local_name %s {\n", n)
			dovecotCert(&b, "    ", s.live, store.LiveSNI(n), v24)
			b.WriteString("  }\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func dovecotCert(b *strings.Builder, indent, live, entry string, v24 bool) {
	s := &serving{live: live}
	if v24 {
		fmt.Fprintf(b, "%sssl_server_cert_file = %s\n", indent, s.file(entry, store.FileFullchain))
		fmt.Fprintf(b, "%sssl_server_key_file = %s\n", indent, s.file(entry, store.FileKey))
		return
	}
	fmt.Fprintf(b, "%sssl_cert = <%s\n", indent, s.file(entry, store.FileFullchain))
	fmt.Fprintf(b, "%sssl_key = <%s\n", indent, s.file(entry, store.FileKey))
}

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)`)

// dovecot24 reports whether version (such as "2.4.1 (abc)") is 2.4 or later.
func dovecot24(version string) bool {
	m := versionRE.FindStringSubmatch(strings.TrimSpace(version))
	if m == nil {
		return false
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return major > 2 || major == 2 && minor >= 4
}

// DovecotVersion runs `dovecot --version`.
func DovecotVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "dovecot", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("dovecot --version: %w", cmdErr(err))
	}
	v := strings.TrimSpace(string(out))
	if !versionRE.MatchString(v) {
		return "", fmt.Errorf("dovecot --version: unexpected output %q", v)
	}
	return v, nil
}

// CheckDovecot compares `doveconf -n -P` (with -c configFile when given)
// with want (RenderDovecot's text): every certificate setting want has,
// in the same section, and none that it does not have in a local or
// local_name section.
func CheckDovecot(ctx context.Context, want, configFile string) ([]Diff, error) {
	args := []string{"-n", "-P"} // -P: ssl_key is "# hidden" without it
	if configFile != "" {
		args = append(args, "-c", configFile)
	}
	out, err := exec.CommandContext(ctx, "doveconf", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("doveconf %s: %w", strings.Join(args, " "), cmdErr(err))
	}
	return compareSettings(certSettings(want), certSettings(string(out)), ""), nil
}

// certSettings reads Dovecot configuration text into "section/.../setting"
// → value, for the certificate settings only.
func certSettings(text string) map[string]string {
	m := map[string]string{}
	var stack []string
	for sc := bufio.NewScanner(strings.NewReader(text)); sc.Scan(); {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasSuffix(line, "{"):
			sec := strings.Join(strings.Fields(strings.TrimSuffix(line, "{")), " ")
			stack = append(stack, strings.ReplaceAll(sec, `"`, ""))
		case line == "}":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if ok && (k == "ssl_cert" || k == "ssl_key" || k == "ssl_server_cert_file" || k == "ssl_server_key_file") {
				m[strings.Join(append(append([]string{}, stack...), k), " / ")] = strings.TrimSpace(v)
			}
		}
	}
	return m
}

// compareSettings lists the keys whose values differ, wanted ones first.
func compareSettings(want, have map[string]string, prefix string) []Diff {
	var diffs []Diff
	keys := func(m map[string]string) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	for _, k := range keys(want) {
		if have[k] != want[k] {
			diffs = append(diffs, Diff{prefix + k, want[k], have[k]})
		}
	}
	for _, k := range keys(have) {
		if _, ok := want[k]; !ok && strings.HasPrefix(k, "local") {
			diffs = append(diffs, Diff{prefix + k, "", have[k]})
		}
	}
	return diffs
}
