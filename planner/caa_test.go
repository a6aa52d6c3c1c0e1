package planner

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/certplan/certplan/model"
)

// TestCAAReason: the fix names the name whose CAA set applies and gives a
// zone-file line that parses; a failed lookup names the zone to fix.
func TestCAAReason(t *testing.T) {
	ips := []string{"127.0.0.2"}
	forbid := func(name string, v model.CAAVerdict) model.Name {
		n := nm(name, []string{RegisteredDomain(name)}, ips, model.RoleMail)
		n.CAAOK, n.CAA = false, v
		return n
	}
	allowed := func(name, at string) model.Name {
		n := nm(name, []string{RegisteredDomain(name)}, ips, model.RoleMail)
		n.CAA = model.CAAVerdict{At: at, Records: []string{`0 issue "letsencrypt.org"`}, Reason: "CAA at " + at + ` allows "letsencrypt.org"`}
		return n
	}
	failed := model.CAAVerdict{Error: "CAA x.test: SERVFAIL from 127.0.0.1:53"}
	inv := inventory(ips,
		forbid("mail.d3.test", model.CAAVerdict{At: "d3.test", Records: []string{`0 issue "sectigo.com"`}, Reason: `CAA at d3.test allows only "sectigo.com"`}),
		forbid("smtp.alias.test", model.CAAVerdict{At: "alias.test", Records: []string{`0 issue "sectigo.com"`},
			Reason: `CAA at alias.test (CNAME to caa.provider.test) allows only "sectigo.com"`}),
		// The alias as the inventory records it now, with a reason that
		// does not say it.
		forbid("pop.alias2.test", model.CAAVerdict{At: "alias2.test", Alias: "caa2.provider.test", Records: []string{`0 issue "sectigo.com"`},
			Reason: `CAA allows only "sectigo.com"`}),
		forbid("imap.crit.test", model.CAAVerdict{At: "crit.test", Records: []string{`128 tbs "x"`},
			Reason: `CAA at crit.test has a critical record with the unknown tag "tbs": no CA may issue`}),
		// Failed lookups: the zone is the closest enclosing name where the
		// inventory saw a CAA set, else the registered domain.
		allowed("mail.d1.test", "d1.test"),
		forbid("smtp.d1.test", failed),
		allowed("mail.sub.d2.test", "sub.d2.test"),
		allowed("mail.d2.test", "d2.test"),
		forbid("smtp.deep.sub.d2.test", failed),
		forbid("smtp.nocaa.d4.test", failed),
	)
	p := mustPlan(t, inv, nil, Policy{}, nil)
	want := map[string][]string{
		"mail.d3.test":          {`; to let it issue, add this record: d3.test. IN CAA 0 issue "letsencrypt.org"; or leave the name out with --exclude`},
		"smtp.alias.test":       {`(CNAME to caa.provider.test)`, `add this record: caa.provider.test. IN CAA 0 issue "letsencrypt.org";`},
		"pop.alias2.test":       {`add this record: caa2.provider.test. IN CAA 0 issue "letsencrypt.org";`},
		"imap.crit.test":        {"no CA may issue; remove the critical record at crit.test"},
		"smtp.d1.test":          {"CAA lookup failed (CAA x.test: SERVFAIL from 127.0.0.1:53)", "fix the DNS servers of d1.test (where"},
		"smtp.deep.sub.d2.test": {"fix the DNS servers of sub.d2.test (where"},
		"smtp.nocaa.d4.test":    {"fix the DNS servers of d4.test (where"},
	}
	got := map[string]string{}
	for _, e := range p.Excluded {
		got[e.Name] = e.Reason
	}
	for name, subs := range want {
		r, ok := got[name]
		if !ok {
			t.Errorf("%s not excluded", name)
			continue
		}
		for _, s := range subs {
			if !strings.Contains(r, s) {
				t.Errorf("%s: reason %q lacks %q", name, r, s)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("excluded %v, want %d names", got, len(want))
	}
}

// TestCAAIssueRecord: the line is a valid CAA record in zone-file syntax
// whose value is exactly the CA identifier, however odd.
func TestCAAIssueRecord(t *testing.T) {
	tests := []struct{ name, ca, want string }{
		{"example.test", "letsencrypt.org", `example.test. IN CAA 0 issue "letsencrypt.org"`},
		{"example.test.", "letsencrypt.org", `example.test. IN CAA 0 issue "letsencrypt.org"`},
		{"a.example.test", `we"ird\ca`, `a.example.test. IN CAA 0 issue "we\"ird\\ca"`},
		{"example.test", "ca.tëst", `example.test. IN CAA 0 issue "ca.t\195\171st"`},
	}
	for _, tt := range tests {
		t.Run(tt.ca, func(t *testing.T) {
			got := CAAIssueRecord(tt.name, tt.ca)
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			rr, err := dns.NewRR(got)
			if err != nil {
				t.Fatalf("%s does not parse: %v", got, err)
			}
			c, ok := rr.(*dns.CAA)
			if !ok || c.Flag != 0 || c.Tag != "issue" || c.Hdr.Name != dns.Fqdn(tt.name) {
				t.Fatalf("parsed as %v", rr)
			}
			// miekg/dns keeps escapes in Value; compare after unescaping.
			if v := unescapeZone(c.Value); v != tt.ca {
				t.Errorf("value %q, want %q", v, tt.ca)
			}
		})
	}
}

// unescapeZone undoes RFC 1035 §5.1 escapes (\X and \DDD).
func unescapeZone(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
			b = append(b, (s[i+1]-'0')*100+(s[i+2]-'0')*10+(s[i+3]-'0'))
			i += 3
			continue
		}
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b = append(b, s[i])
	}
	return string(b)
}
