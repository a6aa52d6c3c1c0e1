package emit

import (
	"bufio"
	"context"
	"fmt"

	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
)

// Postfix is the Postfix configuration that serves a plan.
type Postfix struct {
	// Main are main.cf parameters, in order (`postconf -e`).
	Main []Param
	// Master are master.cf services, one per IP and port, when the IPs
	// have different default certificates; empty otherwise.
	Master []Service
	// SNIMapFile is the SNI table's source file, SNITable its lines
	// (name, then the chain file), sorted.
	SNIMapFile string
	SNITable   []Param
}

// Param is a parameter and its value.
type Param struct{ Name, Value string }

// Service is a master.cf smtpd service on IP:Port with its -o overrides.
type Service struct {
	IP   string
	Port int
	Opts []Param
}

// Name is the service's master.cf name, such as "127.0.0.2:25" or
// "[::1]:25".
func (s Service) Name() string {
	if strings.Contains(s.IP, ":") {
		return "[" + s.IP + "]:" + strconv.Itoa(s.Port)
	}
	return s.IP + ":" + strconv.Itoa(s.Port)
}

// RenderPostfix is the Postfix configuration for plan p.
func RenderPostfix(p *model.Plan, o Options) *Postfix {
	o = o.withDefaults()
	s := newServing(p, o.LiveDir)
	c := &Postfix{SNIMapFile: o.SNIMapFile}
	// The first IP's default serves any other smtpd service too; with
	// several defaults, each IP's services override it.
	if len(s.ips) > 0 {
		c.Main = append(c.Main, Param{"smtpd_tls_chain_files", s.file(store.LiveDefault(s.ips[0]), store.FileCombined)})
	}
	c.Main = append(c.Main, Param{"tls_server_sni_maps", "texthash:" + o.SNIMapFile})
	if !s.oneDefault() {
		for _, ip := range s.ips {
			chain := Param{"smtpd_tls_chain_files", s.file(store.LiveDefault(ip), store.FileCombined)}
			c.Master = append(c.Master,
				Service{ip, o.Ports.SMTP, []Param{chain}},
				Service{ip, o.Ports.Submission, []Param{chain, {"syslog_name", "postfix/submission"}, {"smtpd_tls_security_level", "encrypt"}}},
				Service{ip, o.Ports.SMTPS, []Param{chain, {"syslog_name", "postfix/smtps"}, {"smtpd_tls_wrappermode", "yes"}}})
		}
	}
	for _, n := range s.names {
		key := n
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			key = "." + rest // Postfix tries .parent for every name under it
		}
		c.SNITable = append(c.SNITable, Param{key, s.file(store.LiveSNI(n), store.FileCombined)})
	}
	return c
}

// MainText is the main.cf lines.
func (c *Postfix) MainText() string {
	var b strings.Builder
	for _, p := range c.Main {
		fmt.Fprintf(&b, "%s = %s\n", p.Name, p.Value)
	}
	return b.String()
}

// MasterText is the master.cf services ("" when there are none).
func (c *Postfix) MasterText() string {
	var b strings.Builder
	for _, s := range c.Master {
		fmt.Fprintf(&b, "%s inet n - - - - smtpd\n", s.Name())
		for _, o := range s.Opts {
			fmt.Fprintf(&b, "  -o %s=%s\n", o.Name, o.Value)
		}
	}
	return b.String()
}

// SNIText is the SNI table's source.
func (c *Postfix) SNIText() string {
	var b strings.Builder
	for _, p := range c.SNITable {
		fmt.Fprintf(&b, "%s %s\n", p.Name, p.Value)
	}
	return b.String()
}

// Text is the whole configuration, each file's part under a comment.
func (c *Postfix) Text() string {
	var b strings.Builder
	b.WriteString("# main.cf (postconf -e, or edit main.cf)\n")
	b.WriteString(c.MainText())
	if len(c.Master) > 0 {
		b.WriteString("\n# master.cf: one smtpd service per IP and port, for each IP's default\n")
		b.WriteString("# certificate (replaces the services that listen on all addresses)\n")
		b.WriteString(c.MasterText())
	}
	fmt.Fprintf(&b, "\n# %s (texthash: no postmap; postfix reload after a change)\n", c.SNIMapFile)
	b.WriteString(c.SNIText())
	return b.String()
}

// CheckPostfix compares the Postfix configuration in configDir ("" for
// the default) with c: main.cf (postconf -n), the services' overrides
// (postconf -P) and the SNI table's source file.
func CheckPostfix(ctx context.Context, c *Postfix, configDir string) ([]Diff, error) {
	args := []string{}
	if configDir != "" {
		args = append(args, "-c", configDir)
	}
	main, err := postconf(ctx, append(args, "-n"))
	if err != nil {
		return nil, err
	}
	var diffs []Diff
	for _, p := range c.Main {
		if have := main[p.Name]; have != p.Value {
			diffs = append(diffs, Diff{"main.cf " + p.Name, p.Value, have})
		}
	}
	if len(c.Master) > 0 {
		svc, err := postconf(ctx, append(args, "-P"))
		if err != nil {
			return nil, err
		}
		for _, s := range c.Master {
			for _, o := range s.Opts {
				key := s.Name() + "/inet/" + o.Name
				if have := svc[key]; have != o.Value {
					diffs = append(diffs, Diff{"master.cf " + key, o.Value, have})
				}
			}
		}
	}
	return append(diffs, checkSNITable(c)...), nil
}

// postconf runs postconf with args and returns its "name = value" lines.
func postconf(ctx context.Context, args []string) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "postconf", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("postconf %s: %w", strings.Join(args, " "), cmdErr(err))
	}
	m := map[string]string{}
	for sc := bufio.NewScanner(strings.NewReader(string(out))); sc.Scan(); {
		if k, v, ok := strings.Cut(sc.Text(), " = "); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		} else if k, ok := strings.CutSuffix(strings.TrimSpace(sc.Text()), " ="); ok {
			m[k] = ""
		}
	}
	return m, nil
}

// checkSNITable compares the SNI table's source file with c's.
func checkSNITable(c *Postfix) []Diff {
	have := map[string]string{}
	b, err := os.ReadFile(c.SNIMapFile)
	if err != nil {
		return []Diff{{c.SNIMapFile, fmt.Sprintf("%d entries", len(c.SNITable)), "unreadable: " + err.Error()}}
	}
	for sc := bufio.NewScanner(strings.NewReader(string(b))); sc.Scan(); {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && !strings.HasPrefix(f[0], "#") {
			have[strings.ToLower(f[0])] = strings.Join(f[1:], " ")
		}
	}
	var diffs []Diff
	for _, p := range c.SNITable {
		if have[p.Name] != p.Value {
			diffs = append(diffs, Diff{c.SNIMapFile + " " + p.Name, p.Value, have[p.Name]})
		}
		delete(have, p.Name)
	}
	var extra []string
	for k := range have {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	for _, k := range extra {
		diffs = append(diffs, Diff{c.SNIMapFile + " " + k, "", have[k]})
	}
	return diffs
}

// cmdErr adds a command's stderr to its error.
func cmdErr(err error) error {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}
