package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certplan/certplan/internal/cli"
	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/internal/pebbletest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
	"github.com/miekg/dns"
)

// Issue 5: "Deploy to a real Postfix instance and verify with the probe
// that the new certificate is served", end to end through certplan issue,
// check and renew with the example Postfix and Dovecot hooks.
func TestIssueDeployRenewPostfixDovecot(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	begin := time.Now()

	// Today: the cPanel-like default without SNI, the domain's own
	// certificate with it.
	w.served(w.oldDefault.Leaf, "", hostname)
	w.served(w.oldDomain2.Leaf, "mail.domain2.test")
	w.handOver()
	w.served(w.oldDefault.Leaf, "")
	w.served(w.oldDomain2.Leaf, "smtp.domain2.test")
	if t.Failed() {
		t.FailNow()
	}

	const id = "default-" + serverIP
	planned := []string{hostname, "mail.domain2.test", "smtp.domain2.test", "mail.domain3.test", "smtp.domain3.test"}

	// 1. issue: plan from the zones, order through Pebble, deploy with
	// both hooks, verify by probing every port with and without SNI.
	var first *store.Cert
	t.Run("issue", func(t *testing.T) {
		w.t = t
		r := w.certplan(time.Time{}, w.applyArgs("issue")...)
		if r.code != cli.ExitOK {
			t.Fatalf("certplan issue: %s", r)
		}
		wantLine(t, r.stdout, `^`+regexp.QuoteMeta(id)+`: issued \(issue(: [^)]*)?\), 5 names, serial [0-9a-f]+, expires \d{4}-\d\d-\d\d$`)
		// The text report names a hook by its program, past the settings.
		wantLine(t, r.stdout, `^  deploy hook .*/postfix\.sh'?: ok$`)
		wantLine(t, r.stdout, `^  deploy hook .*/dovecot\.sh'?: ok$`)
		// Every planned name, on every port: the new certificate with SNI
		// and without.
		for _, n := range planned {
			wantLine(t, r.stdout, `^`+regexp.QuoteMeta(n)+`\s+127\.0\.0\.2\s+`+regexp.QuoteMeta(id)+`(\s+\+\+){4}$`)
		}
		wantLine(t, r.stdout, `^1 certificate: 1 issued; verified 20 of 20 name/endpoint pairs$`)
		if strings.Contains(r.stdout, "not served") || strings.Contains(r.stdout, "elsewhere.test") {
			t.Errorf("issue output reports a problem or a foreign name:\n%s", r.stdout)
		}
		m := regexp.MustCompile(`verified (\d+) of (\d+)`).FindStringSubmatch(r.stdout)
		if m == nil || m[1] != m[2] || m[1] == "0" {
			t.Errorf("not every name/endpoint pair verified: %v", m)
		}
		if r.stderr != "" {
			t.Errorf("stderr:\n%s", r.stderr)
		}
		first = w.current(id)
		covers(t, first.Leaf, planned...)
		for _, n := range first.Leaf.DNSNames {
			if strings.HasSuffix(n, "elsewhere.test") {
				t.Errorf("the certificate covers %s, which points elsewhere", n)
			}
		}
		w.served(first.Leaf, append([]string{""}, planned...)...)
		w.hookFiles(first)
		if t.Failed() {
			t.Logf("certplan issue: %s", r)
		}
	})
	w.t = t
	if t.Failed() {
		t.FailNow()
	}

	// 2. check: monitoring sees every planned name verified.
	t.Run("check", func(t *testing.T) {
		w.t = t
		prom := filepath.Join(t.TempDir(), "certplan.prom")
		r := w.certplan(time.Time{}, "check", "--state-dir", w.stateDir, "--ports", w.portsFlag(),
			"--ca-file", w.issuerFile, "--prom-file", prom)
		if r.code != 0 {
			t.Fatalf("certplan check: %s", r)
		}
		wantLine(t, r.stdout, `^CERTPLAN OK - .*\| certificates=1 broken_names=0 min_days_left=\d+\.\d$`)
		wantLine(t, r.stdout, `^certificate `+regexp.QuoteMeta(id)+`: \d+ names, serial `+regexp.QuoteMeta(first.Meta.Serial)+`, expires `)
		b, err := os.ReadFile(prom)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range []string{
			`^certplan_check_status 0$`,
			`^certplan_certificate_issued\{id="` + regexp.QuoteMeta(id) + `"\} 1$`,
			`^certplan_certificate_not_after_seconds\{id="` + regexp.QuoteMeta(id) + `"\} ` + strconv.FormatInt(first.Leaf.NotAfter.Unix(), 10) + `$`,
			`^certplan_broken_names 0$`,
			`^certplan_name_verified\{.*name="mail\.domain2\.test".*\} 1$`,
		} {
			wantLine(t, string(b), re)
		}
		if regexp.MustCompile(`(?m)^certplan_name_verified\{.*\} 0$`).Match(b) {
			t.Errorf("a name does not verify:\n%s", b)
		}
	})
	w.t = t
	if t.Failed() {
		t.FailNow()
	}

	// 3. A customer signs up: renew reissues the default certificate with
	// the new names, replacing the old one (ARI), and deploys it.
	var second *store.Cert
	t.Run("renew-new-domain", func(t *testing.T) {
		w.t = t
		w.addZone(filepath.Join("testdata", "later", "newclient.test.db"))
		nOrders := len(w.ca.Orders())
		r := w.certplan(time.Time{}, w.applyArgs("renew", "--no-jitter")...)
		if r.code != cli.ExitOK {
			t.Fatalf("certplan renew: %s", r)
		}
		wantLine(t, r.stdout, `^reissued `+regexp.QuoteMeta(id)+` \(names changed: 2 added, 0 removed\): \d+ names, serial [0-9a-f]+, expires \S+, replaces \S+; deployed$`)
		if n := strings.Count(strings.TrimSpace(r.stdout), "\n") + 1; n != 1 {
			t.Errorf("renew printed %d lines, want 1:\n%s", n, r.stdout)
		}
		second = w.current(id)
		if second.Meta.Serial == first.Meta.Serial {
			t.Fatalf("the certificate was not replaced (serial %s)", first.Meta.Serial)
		}
		covers(t, second.Leaf, append(planned, "mail.newclient.test", "smtp.newclient.test")...)
		orders := w.ca.Orders()[nOrders:]
		if len(orders) != 1 {
			t.Fatalf("renew placed %d orders, want 1: %+v", len(orders), orders)
		}
		if orders[0].Replaces == "" || orders[0].Replaces != first.Meta.ARICertID {
			t.Errorf("the order's replaces is %q, want the old certificate's ARI id %q", orders[0].Replaces, first.Meta.ARICertID)
		}
		if second.Meta.Replaced != first.Meta.ARICertID {
			t.Errorf("state: replaced = %q, want the old ARI id %q", second.Meta.Replaced, first.Meta.ARICertID)
		}
		wantLine(t, r.stdout, `, replaces `+regexp.QuoteMeta(first.Meta.ARICertID)+`; deployed$`)
		// The hooks ran: both servers present the new certificate, to the
		// new domain's names and to everyone else, with and without SNI.
		w.served(second.Leaf, "", "mail.newclient.test", "smtp.newclient.test", hostname, "mail.domain2.test")
		w.hookFiles(second)
		if t.Failed() {
			t.Logf("certplan renew: %s", r)
		}

		// Nothing is due now: nothing printed, exit 0.
		nOrders = len(w.ca.Orders())
		r = w.certplan(time.Time{}, w.applyArgs("renew", "--no-jitter")...)
		if r.code != cli.ExitOK || r.stdout != "" || r.stderr != "" {
			t.Errorf("second renew, want exit 0 and no output: %s", r)
		}
		if n := len(w.ca.Orders()) - nOrders; n != 0 {
			t.Errorf("the second renew placed %d orders", n)
		}
		if c := w.current(id); c.Meta.Serial != second.Meta.Serial {
			t.Errorf("the second renew replaced the certificate")
		}
	})
	w.t = t
	if t.Failed() {
		t.FailNow()
	}

	// 3b. A deploy hook fails (Dovecot's configuration has an error the
	// administrator has just made): issue --force exits 3, Postfix serves
	// the new certificate, Dovecot the one before; once the configuration
	// is fixed, renew deploys the certificate again, and only then is it
	// quiet.
	third := second
	t.Run("hook-fails-then-redeploy", func(t *testing.T) {
		w.t = t
		conf, err := os.ReadFile(w.dc.ConfigFile)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, w.dc.ConfigFile, append(append([]byte{}, conf...), "ssl_no_such_setting = yes\n"...), 0o644)
		r := w.certplan(time.Time{}, w.applyArgs("issue", "--force", "--verify-wait", "2s")...)
		if r.code != cli.ExitPartial {
			t.Errorf("issue with a failing hook: want exit 3: %s", r)
		}
		wantLine(t, r.stdout, `^`+regexp.QuoteMeta(id)+`: issued \(renew(: [^)]*)?\), 7 names, .*, replaces `+regexp.QuoteMeta(second.Meta.ARICertID)+`$`)
		wantLine(t, r.stdout, `^  deploy hook .*/postfix\.sh'?: ok$`)
		// The hook refuses before changing anything, and says why.
		wantLine(t, r.stdout, `^  deploy hook .*/dovecot\.sh'?: failed: exit status 1: dovecot hook: error: doveconf rejects .* \(nothing changed\): .*Unknown setting: ssl_no_such_setting$`)
		// Said once on stderr, with what happens next.
		wantStderr(t, r.stderr, "deploy hooks failed for 1 certificate; 14 of 28 name/endpoint pairs not served as planned",
			"the next run runs the failed certificates' hooks again")
		// Postfix's ports verify; Dovecot's still show the certificate
		// before.
		dcPorts := []int{w.dc.IMAPPort, w.dc.IMAPSPort}
		slices.Sort(dcPorts)
		wantLine(t, r.stdout, fmt.Sprintf(`^not served: mail\.newclient\.test on 127\.0\.0\.2:%d,%d \(%s\): with SNI old: serial %s .*; without SNI old: serial %s `,
			dcPorts[0], dcPorts[1], regexp.QuoteMeta(id), second.Meta.Serial, second.Meta.Serial))
		wantLine(t, r.stdout, `^1 certificate: 1 issued; verified 14 of 28 name/endpoint pairs$`)
		dcDefault := filepath.Join(w.dcCertDir, "default-"+serverIP+".crt")
		if c, err := store.ParseLeaf(mustRead(t, dcDefault)); err != nil || !c.Equal(second.Leaf) {
			t.Errorf("%s changed although the hook failed (%v)", dcDefault, err)
		}
		t.Logf("issue with a failing hook: %s", r)
		third = w.current(id)
		if third.Meta.Serial == second.Meta.Serial {
			t.Fatal("issue --force did not replace the certificate")
		}
		pf, dc := w.ports, w.ports
		w.ports = pf[:2]
		w.served(third.Leaf, "", "mail.newclient.test")
		w.ports = dc[2:]
		w.served(second.Leaf, "", "mail.newclient.test")
		w.ports = pf

		// Fixed: the next renew deploys the same certificate again.
		writeFile(t, w.dc.ConfigFile, conf, 0o644)
		nOrders := len(w.ca.Orders())
		r = w.certplan(time.Time{}, w.applyArgs("renew", "--no-jitter")...)
		if r.code != cli.ExitOK {
			t.Errorf("renew after the fix: %s", r)
		}
		wantLine(t, r.stdout, `^deployed `+regexp.QuoteMeta(id)+` again \(serial `+regexp.QuoteMeta(third.Meta.Serial)+`\); deployed$`)
		if n := len(w.ca.Orders()) - nOrders; n != 0 {
			t.Errorf("the redeploy placed %d orders", n)
		}
		w.served(third.Leaf, "", "mail.newclient.test", hostname)
		w.hookFiles(third)
		r = w.certplan(time.Time{}, w.applyArgs("renew", "--no-jitter")...)
		if r.code != cli.ExitOK || r.stdout != "" {
			t.Errorf("renew after the redeploy, want exit 0 and no output: %s", r)
		}
	})
	w.t = t
	if t.Failed() {
		t.FailNow()
	}
	second = third

	// 3c. --ports lists a listener the hooks do not manage: every deploy
	// succeeds and verification fails there. Renew deploys again (reloading
	// Postfix and Dovecot) at most 3 times, 1, 10 and 100 minutes apart,
	// and is quiet in between and after.
	t.Run("unmanaged-listener", func(t *testing.T) {
		w.t = t
		self, err := mailtest.SelfSigned(mailtest.CertSpec{Names: []string{hostname}})
		if err != nil {
			t.Fatal(err)
		}
		other, err := mailtest.Start(mailtest.Config{Addr: serverIP + ":0", Protocol: model.ProtoSMTPS, Certs: mailtest.NewCerts(self), Hostname: hostname})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		ports := []string{"--ports", w.portsFlag() + ",smtps:" + strconv.Itoa(other.Port()), "--verify-wait", "1s"}
		start := time.Now().UTC().Truncate(time.Second)
		r := w.certplan(start, w.applyArgs("issue", append(ports, "--force")...)...)
		if r.code != cli.ExitPartial {
			t.Fatalf("issue with an unmanaged listener: want exit 3: %s", r)
		}
		wantLine(t, r.stdout, fmt.Sprintf(`^not served: %s on 127\.0\.0\.2:%d `, regexp.QuoteMeta(hostname), other.Port()))
		wantLine(t, r.stdout, `^not verified `+regexp.QuoteMeta(id)+`: not served after 1 deploy \(its hooks succeeded\); deployed again after `+
			regexp.QuoteMeta(start.Add(time.Minute).Format(time.RFC3339))+`$`)
		fourth := w.current(id)
		for _, step := range []struct {
			after    time.Duration
			redeploy string // the "not verified" line's end; "" for a quiet run
		}{
			{30 * time.Second, ""},
			{2 * time.Minute, "not served after 2 deploys (its hooks succeeded); deployed again after " + start.Add(12*time.Minute).Format(time.RFC3339)},
			{5 * time.Minute, ""},
			{12 * time.Minute, "not served after 3 deploys (its hooks succeeded); deployed again after " + start.Add(112*time.Minute).Format(time.RFC3339)},
			{112 * time.Minute, "not served after 4 deploys (its hooks succeeded); no more redeploys"},
			{5 * time.Hour, ""},
			{30 * time.Hour, ""},
		} {
			r := w.certplan(start.Add(step.after), w.applyArgs("renew", append(ports, "--no-jitter")...)...)
			if step.redeploy == "" {
				if r.code != cli.ExitOK || r.stdout != "" || r.stderr != "" {
					t.Errorf("+%v: want a quiet run: %s", step.after, r)
				}
				continue
			}
			if r.code != cli.ExitPartial {
				t.Errorf("+%v: want exit 3: %s", step.after, r)
			}
			wantLine(t, r.stdout, `^deployed `+regexp.QuoteMeta(id)+` again \(serial `+fourth.Meta.Serial+`\); deployed$`)
			wantLine(t, r.stdout, `^not verified `+regexp.QuoteMeta(id)+`: `+regexp.QuoteMeta(step.redeploy))
			wantStderr(t, r.stderr, "7 of 35 name/endpoint pairs not served as planned", `"certplan check" keeps watching`)
		}
		w.served(fourth.Leaf, "", hostname, "mail.newclient.test")
		if c := w.current(id); c.Meta.Serial != fourth.Meta.Serial {
			t.Errorf("a renew replaced the certificate")
		}
		third = fourth
	})
	w.t = t
	if t.Failed() {
		t.FailNow()
	}
	second = third

	// 4. The renewal window opens but the CA cannot issue: renew fails,
	// and the certificate deployed before is still what clients get.
	t.Run("renew-ca-fails", func(t *testing.T) {
		w.t = t
		now := begin.Add(62 * 24 * time.Hour)
		certPEM, err := os.ReadFile(second.Path("cert.pem"))
		if err != nil {
			t.Fatal(err)
		}
		unchanged := func(when string) {
			t.Helper()
			c := w.current(id)
			b, err := os.ReadFile(c.Path("cert.pem"))
			if err != nil {
				t.Fatal(err)
			}
			if c.Meta.Serial != second.Meta.Serial || !bytes.Equal(b, certPEM) {
				t.Errorf("%s: the state's current certificate changed (serial %s, was %s)", when, c.Meta.Serial, second.Meta.Serial)
			}
			w.served(second.Leaf, "", "mail.newclient.test", hostname)
		}

		// (a) The server's hostname, a must-cover name, now resolves
		// elsewhere: the run fails before ordering.
		if err := pebbletest.PointElsewhere(w.dns, hostname); err != nil {
			t.Fatal(err)
		}
		r := w.certplan(now, w.applyArgs("renew", "--no-jitter")...)
		if r.code != cli.ExitFailure && r.code != cli.ExitPartial {
			t.Errorf("renew with the hostname elsewhere: want exit 1 or 3: %s", r)
		}
		if !strings.Contains(r.stdout+r.stderr, hostname) {
			t.Errorf("renew with the hostname elsewhere does not name it: %s", r)
		}
		if strings.Contains(r.stdout, "deployed") {
			t.Errorf("a hook ran: %s", r)
		}
		t.Logf("hostname elsewhere: %s", r)
		unchanged("hostname elsewhere")
		w.dns.Remove(hostname+".", dns.TypeA)
		if err := w.dns.Add(hostname + ". 300 IN A " + serverIP); err != nil {
			t.Fatal(err)
		}

		// (b) The CA rejects the order: its profile allows fewer names
		// than the administrator said (--max-names).
		now = now.Add(2 * time.Hour) // past any backoff from (a)
		nOrders := len(w.ca.Orders())
		r = w.certplan(now, w.applyArgs("renew", "--no-jitter", "--profile", "small", "--max-names", "100")...)
		if r.code != cli.ExitFailure && r.code != cli.ExitPartial {
			t.Errorf("renew with the order rejected: want exit 1 or 3: %s", r)
		}
		wantLine(t, r.stdout, `^failed `+regexp.QuoteMeta(id)+`: .*more than 3 identifiers.*; next attempt after \S+$`)
		wantStderr(t, r.stderr, "1 certificate not issued", "renew tries again after the time shown")
		if orders := w.ca.Orders()[nOrders:]; len(orders) == 0 || orders[0].Profile != "small" || orders[0].Replaces != second.Meta.ARICertID {
			t.Errorf("orders placed: %+v, want one for profile small replacing %s", orders, second.Meta.ARICertID)
		}
		if strings.Contains(r.stdout, "deployed") {
			t.Errorf("a hook ran: %s", r)
		}
		t.Logf("order rejected: %s", r)
		unchanged("order rejected")

		// (c) The CA is down.
		w.caCancel()
		w.ca.Close()
		now = now.Add(4 * time.Hour) // past the backoff from (b)
		r = w.certplan(now, w.applyArgs("renew", "--no-jitter")...)
		if r.code != cli.ExitFailure && r.code != cli.ExitPartial {
			t.Errorf("renew with the CA down: want exit 1 or 3: %s", r)
		}
		wantLine(t, r.stdout, `^failed `+regexp.QuoteMeta(id)+`: .*connection refused; next attempt after \S+$`)
		wantStderr(t, r.stderr, "1 certificate not issued", "check --ca and the network path to the CA")
		if strings.Contains(r.stdout, "deployed") {
			t.Errorf("a hook ran: %s", r)
		}
		t.Logf("CA down: %s", r)
		unchanged("CA down")

		// Monitoring sees the failing renewal, while every name still
		// verifies with the certificate in place.
		prom := filepath.Join(t.TempDir(), "certplan.prom")
		r = w.certplan(now, "check", "--state-dir", w.stateDir, "--ports", w.portsFlag(),
			"--ca-file", w.issuerFile, "--prom-file", prom)
		if r.code != 1 {
			t.Errorf("certplan check after failed renewals: want exit 1 (WARNING): %s", r)
		}
		wantLine(t, r.stdout, `^CERTPLAN WARNING - .*broken_names=0 `)
		t.Logf("check: %s", r)
		b, err := os.ReadFile(prom)
		if err != nil {
			t.Fatal(err)
		}
		wantLine(t, string(b), `^certplan_renewal_failures\{id="`+regexp.QuoteMeta(id)+`"\} [1-9]\d*$`)
		wantLine(t, string(b), `^certplan_check_status 1$`)
	})
}

// Issue 5 with SNI-only certificates: when the name limit keeps names off
// the default certificate, the hooks install the others through Postfix's
// SNI table and Dovecot's local_name blocks, every name gets its planned
// certificate with SNI, and a domain that leaves the server leaves the SNI
// table and the local_name blocks too.
func TestSNIOnlyCertificatesPostfixDovecot(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.handOver()
	r := w.certplan(time.Time{}, w.applyArgs("issue", "--max-names", "2")...)
	if r.code != cli.ExitOK {
		t.Fatalf("certplan issue --max-names 2: %s", r)
	}
	t.Logf("certplan issue: %s", r)
	plan := w.plan()
	if len(plan.Certificates) < 2 || len(plan.SNIOnly) == 0 {
		t.Fatalf("want a default certificate and SNI-only ones; plan has %d certificates, SNI-only names %v", len(plan.Certificates), plan.SNIOnly)
	}
	if !strings.Contains(r.stdout, " s") {
		t.Errorf("the verification matrix shows no SNI-only cell:\n%s", r.stdout)
	}
	m := regexp.MustCompile(`verified (\d+) of (\d+)`).FindStringSubmatch(r.stdout)
	if m == nil || m[1] != m[2] {
		t.Errorf("not every name/endpoint pair verified: %v", m)
	}
	byName := map[string]*store.Cert{}
	var def *store.Cert
	for _, pc := range plan.Certificates {
		c := w.current(pc.ID)
		covers(t, c.Leaf, pc.Names...)
		for _, n := range pc.Names {
			byName[n] = c
		}
		if pc.Default {
			def = c
		}
		w.served(c.Leaf, pc.Names...)
	}
	if def == nil {
		t.Fatal("no default certificate planned")
	}
	w.served(def.Leaf, "")

	r = w.certplan(time.Time{}, "check", "--state-dir", w.stateDir, "--ports", w.portsFlag(), "--ca-file", w.issuerFile)
	if r.code != 0 {
		t.Errorf("certplan check: %s", r)
	}

	// domain2.test leaves the server, and smtp.domain3.test is deleted
	// from its zone: their names leave the certificates, the SNI table and
	// the local_name blocks.
	if err := os.Remove(filepath.Join(w.zonesDir, "domain2.test.db")); err != nil {
		t.Fatal(err)
	}
	zone3 := filepath.Join(w.zonesDir, "domain3.test.db")
	b, err := os.ReadFile(zone3)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, zone3, regexp.MustCompile(`(?m)^smtp\s.*\n`).ReplaceAll(b, nil), 0o644)
	w.dns.Remove("smtp.domain3.test.", dns.TypeA)
	// Three of the five names go at once: more than half, which renew
	// refuses unless told that the names really left.
	r = w.certplan(time.Time{}, w.applyArgs("renew", "--no-jitter", "--max-names", "2")...)
	if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "the new plan drops 3 of the 5 names") {
		t.Fatalf("certplan renew dropping 3 of 5 names without --allow-reduced-coverage: %s", r)
	}
	r = w.certplan(time.Time{}, w.applyArgs("renew", "--no-jitter", "--max-names", "2", "--allow-reduced-coverage")...)
	if r.code != cli.ExitOK {
		t.Fatalf("certplan renew after domain2.test left: %s", r)
	}
	wantLine(t, r.stdout, `^reissued default-127\.0\.0\.2 \(names changed: 0 added, 1 removed\): 1 name, .*; deployed$`)
	wantLine(t, r.stdout, `^reissued sni-domain3\.test \(names changed: 0 added, 1 removed\): 1 name, .*; deployed$`)
	// smtp.domain2.test's certificate has no names left: its hooks take it
	// out of both servers, and its files leave the state's certificates.
	wantLine(t, r.stdout, `^retired sni-domain2\.test: no longer in the plan; undeployed; its files moved to `+regexp.QuoteMeta(w.stateDir)+`/retired/sni-domain2\.test-\d+$`)
	if r.stderr != "" {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	if t.Failed() {
		t.Logf("certplan renew: %s", r)
	}
	// Names that left a certificate that stays, and the names of the
	// retired certificate: the hooks drop them.
	hookFiles := []string{w.pfMapSrc, w.dcSNIConf}
	for _, file := range hookFiles {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"mail.domain2.test", "smtp.domain3.test", "smtp.domain2.test", "sni-domain2.test"} {
			if strings.Contains(string(b), n) {
				t.Errorf("%s still names %s:\n%s", file, n, b)
			}
		}
	}
	for _, f := range []string{
		filepath.Join(w.pfCertDir, "sni-domain2.test.pem"),
		filepath.Join(w.dcCertDir, "sni-domain2.test.crt"),
		filepath.Join(w.dcCertDir, "sni-domain2.test.key"),
		filepath.Join(w.stateDir, "certs", "sni-domain2.test"),
	} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is still there after the retirement (%v)", f, err)
		}
	}
	plan = w.plan()
	for _, pc := range plan.Certificates {
		if pc.ID == "sni-domain2.test" {
			t.Errorf("the retired certificate is still planned")
		}
		w.served(w.current(pc.ID).Leaf, pc.Names...)
		if pc.Default {
			def = w.current(pc.ID)
		}
	}
	// A client still asking for a name that left a certificate, or whose
	// certificate was retired, gets the default.
	w.served(def.Leaf, "", "mail.domain2.test", "smtp.domain3.test", "smtp.domain2.test")

	// Nothing more: the retirement is not repeated, and monitoring no
	// longer watches the retired certificate.
	r = w.certplan(time.Time{}, w.applyArgs("renew", "--no-jitter", "--max-names", "2")...)
	if r.code != cli.ExitOK || r.stdout != "" || r.stderr != "" {
		t.Errorf("renew after the retirement, want exit 0 and no output: %s", r)
	}
	r = w.certplan(time.Time{}, "check", "--state-dir", w.stateDir, "--ports", w.portsFlag(), "--ca-file", w.issuerFile)
	if r.code != 0 || strings.Contains(r.stdout, "sni-domain2.test") {
		t.Errorf("certplan check after the retirement: %s", r)
	}
}

// wantStderr checks that stderr is one "certplan: error:" line with msg,
// and a hint containing hint: nothing else (no log lines).
func wantStderr(t *testing.T, stderr, msg, hint string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	// Notes come first: settings changed since the last applied run.
	for len(lines) > 0 && strings.HasPrefix(lines[0], "certplan: note: ") {
		lines = lines[1:]
	}
	if len(lines) < 2 || lines[0] != "certplan: error: "+msg || !strings.Contains(strings.Join(lines[1:], "\n"), hint) {
		t.Errorf("stderr:\n%s\nwant \"certplan: error: %s\" and a hint with %q", stderr, msg, hint)
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "certplan: hint: ") {
			t.Errorf("stderr line %q: want only hints after the error", l)
		}
	}
}
