package monitor

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/certplan/certplan/model"
)

// WriteProm writes r as Prometheus text-format metrics (for node_exporter's
// textfile collector). Series are sorted so the file is stable.
func WriteProm(w io.Writer, r Result, now time.Time) error {
	var b strings.Builder
	metric := func(name, help, typ string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	metric("certplan_check_status", "Result of the last check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", "gauge")
	fmt.Fprintf(&b, "certplan_check_status %d\n", r.Status)
	metric("certplan_check_timestamp_seconds", "When the last check ran.", "gauge")
	fmt.Fprintf(&b, "certplan_check_timestamp_seconds %d\n", now.Unix())

	certs := append([]CertReport(nil), r.Certs...)
	sort.Slice(certs, func(i, j int) bool { return certs[i].ID < certs[j].ID })
	metric("certplan_certificate_issued", "1 when the planned certificate has been issued.", "gauge")
	for _, c := range certs {
		fmt.Fprintf(&b, "certplan_certificate_issued{id=%s} %d\n", q(c.ID), b2i(c.Issued))
	}
	metric("certplan_certificate_not_after_seconds", "Expiry time of the certificate.", "gauge")
	for _, c := range certs {
		if c.Issued {
			fmt.Fprintf(&b, "certplan_certificate_not_after_seconds{id=%s} %d\n", q(c.ID), c.NotAfter.Unix())
		}
	}
	metric("certplan_certificate_next_renewal_seconds", "When the certificate becomes due for renewal.", "gauge")
	for _, c := range certs {
		if c.Issued {
			fmt.Fprintf(&b, "certplan_certificate_next_renewal_seconds{id=%s} %d\n", q(c.ID), c.NextRenewal.Unix())
		}
	}
	metric("certplan_certificate_names", "Names on the certificate.", "gauge")
	for _, c := range certs {
		fmt.Fprintf(&b, "certplan_certificate_names{id=%s} %d\n", q(c.ID), c.Names)
	}
	metric("certplan_renewal_failures", "Consecutive failed attempts to renew the certificate (or, never issued, to issue it).", "gauge")
	for _, c := range certs {
		fmt.Fprintf(&b, "certplan_renewal_failures{id=%s} %d\n", q(c.ID), c.Failures)
	}
	if r.Coverage != nil {
		metric("certplan_name_verified", "1 when a client dialling the name verifies the certificate served (sni=yes|no).", "gauge")
		for _, row := range r.Coverage {
			for _, v := range []struct{ sni, verdict string }{{"yes", row.WithSNI}, {"no", row.WithoutSNI}} {
				fmt.Fprintf(&b, "certplan_name_verified{name=%s,ip=%s,port=\"%d\",sni=\"%s\"} %d\n",
					q(row.Name), q(row.IP), row.Port, v.sni, b2i(v.verdict == "ok"))
			}
		}
		metric("certplan_broken_names", "Names that some clients fail to verify.", "gauge")
		fmt.Fprintf(&b, "certplan_broken_names %d\n", r.BrokenNames)
	}
	if hasSenderVerdicts(r.Coverage) {
		writeSenderProm(&b, metric, r)
	}
	metric("certplan_failing_domains", "Hosted domains whose DNS lookups fail (as the last renew found).", "gauge")
	fmt.Fprintf(&b, "certplan_failing_domains %d\n", len(r.FailingDomains))
	_, err := io.WriteString(w, b.String())
	return err
}

// q quotes a label value as the text format wants: backslash, double quote
// and newline escaped, nothing else.
func q(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// writeSenderProm writes the DANE and MTA-STS verdicts of the MX
// endpoints, one series per endpoint with the verdict as a label (value
// 1), and how many a validating sender refuses.
func writeSenderProm(b *strings.Builder, metric func(name, help, typ string), r Result) {
	for _, m := range []struct {
		name, help string
		verdict    func(model.Coverage) string
	}{
		{"certplan_mx_dane", "DANE verdict of the MX endpoint (verdict=ok|fail|none|unknown): what a DANE sender does with the chain served.", func(c model.Coverage) string { return c.DANE }},
		{"certplan_mx_mta_sts", "MTA-STS verdict of the MX endpoint (verdict=ok|fail|warn|none): fail under enforce, warn under testing.", func(c model.Coverage) string { return c.MTASTS }},
	} {
		metric(m.name, m.help, "gauge")
		for _, row := range r.Coverage {
			if v := m.verdict(row); v != "" {
				fmt.Fprintf(b, "%s{name=%s,ip=%s,port=\"%d\",verdict=%s} 1\n", m.name, q(row.Name), q(row.IP), row.Port, q(v))
			}
		}
	}
	metric("certplan_mx_refused", "MX endpoints a validating sender refuses (DANE fail, or MTA-STS fail under enforce).", "gauge")
	fmt.Fprintf(b, "certplan_mx_refused %d\n", r.RefusedMX)
}
