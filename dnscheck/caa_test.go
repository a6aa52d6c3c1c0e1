package dnscheck

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/certplan/certplan/internal/dnstest"
	"github.com/miekg/dns"
)

func caaSet(t *testing.T, recs ...string) []*dns.CAA {
	t.Helper()
	var out []*dns.CAA
	for _, r := range recs {
		rr, err := dns.NewRR("x.test. CAA " + r)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		out = append(out, rr.(*dns.CAA))
	}
	return out
}

func TestEvaluateCAA(t *testing.T) {
	tests := []struct {
		name     string
		recs     []string
		ca       string
		wildcard bool
		allowed  bool
		reason   string // substring
	}{
		{"no records", nil, "letsencrypt.org", false, true, "no CAA record"},
		{"issue matches", []string{`0 issue "letsencrypt.org"`}, "letsencrypt.org", false, true, `allows "letsencrypt.org"`},
		{"issuer domain case-insensitive", []string{`0 issue "LetsEncrypt.ORG"`}, "letsencrypt.org", false, true, "allows"},
		{"CA identifier case-insensitive", []string{`0 issue "letsencrypt.org"`}, "LetsEncrypt.org.", false, true, "allows"},
		{"other CA only", []string{`0 issue "sectigo.com"`}, "letsencrypt.org", false, false, `allows only "sectigo.com"`},
		{"several others listed sorted", []string{`0 issue "sectigo.com"`, `0 issue "digicert.com"`, `0 issue "sectigo.com"`}, "letsencrypt.org", false, false, `allows only "digicert.com", "sectigo.com"`},
		{"one of several", []string{`0 issue "sectigo.com"`, `0 issue "letsencrypt.org"`}, "letsencrypt.org", false, true, "allows"},
		{"empty issue forbids", []string{`0 issue ";"`}, "letsencrypt.org", false, false, `forbids every CA (issue ";")`},
		{"empty value forbids", []string{`0 issue ""`}, "letsencrypt.org", false, false, "forbids every CA"},
		{"iodef only allows", []string{`0 iodef "mailto:sec@x.test"`}, "letsencrypt.org", false, true, "no issue property"},
		{"issuewild ignored for a plain name", []string{`0 issuewild "sectigo.com"`}, "letsencrypt.org", false, true, "no issue property"},
		{"issuewild ignored, issue forbids", []string{`0 issue "sectigo.com"`, `0 issuewild "letsencrypt.org"`}, "letsencrypt.org", false, false, "allows only"},
		{"wildcard uses issuewild", []string{`0 issue "letsencrypt.org"`, `0 issuewild "sectigo.com"`}, "letsencrypt.org", true, false, `allows only "sectigo.com" for wildcards (issuewild)`},
		{"wildcard issuewild allows", []string{`0 issue "sectigo.com"`, `0 issuewild "letsencrypt.org"`}, "letsencrypt.org", true, true, "for wildcards"},
		{"wildcard falls back to issue", []string{`0 issue "letsencrypt.org"`}, "letsencrypt.org", true, true, "allows"},
		{"wildcard issuewild ; forbids", []string{`0 issue "letsencrypt.org"`, `0 issuewild ";"`}, "letsencrypt.org", true, false, "forbids every CA for wildcards"},
		{"critical unknown tag forbids", []string{`0 issue "letsencrypt.org"`, `128 tbs "unknown"`}, "letsencrypt.org", false, false, `critical record with the unknown tag "tbs"`},
		{"non-critical unknown tag ignored", []string{`0 issue "letsencrypt.org"`, `0 tbs "unknown"`}, "letsencrypt.org", false, true, "allows"},
		{"critical known tag fine", []string{`128 issue "letsencrypt.org"`}, "letsencrypt.org", false, true, "allows"},
		{"critical known tag uppercase", []string{`128 ISSUE "letsencrypt.org"`}, "letsencrypt.org", false, true, "allows"},
		{"parameters in reason", []string{`0 issue "letsencrypt.org; accounturi=https://acme.test/acct/1; validationmethods=dns-01"`}, "letsencrypt.org", false, true, "(accounturi=https://acme.test/acct/1; validationmethods=dns-01)"},
		{"malformed value authorises nobody", []string{`0 issue "letsencrypt.org; bad param"`}, "letsencrypt.org", false, false, "forbids every CA"},
		{"bad issuer domain", []string{`0 issue "lets_encrypt.org"`}, "letsencrypt.org", false, false, "forbids"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := EvaluateCAA(caaSet(t, tt.recs...), tt.ca, tt.wildcard)
			if d.Allowed != tt.allowed || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("got allowed=%v %q, want allowed=%v, reason containing %q", d.Allowed, d.Reason, tt.allowed, tt.reason)
			}
			if d.Allowed != (len(d.Issuers) > 0) && tt.recs != nil && !strings.Contains(d.Reason, "no issue property") {
				t.Errorf("allowed=%v with issuers %v", d.Allowed, d.Issuers)
			}
		})
	}
}

func TestParseCAAValue(t *testing.T) {
	tests := []struct {
		value   string
		want    CAAIssuer
		wantErr bool
	}{
		{"letsencrypt.org", CAAIssuer{Tag: "issue", Domain: "letsencrypt.org"}, false},
		{"  LetsEncrypt.org  ", CAAIssuer{Tag: "issue", Domain: "letsencrypt.org"}, false},
		{";", CAAIssuer{Tag: "issue"}, false},
		{"", CAAIssuer{Tag: "issue"}, false},
		{"ca.test; accounturi=https://ca.test/a/1 ; ValidationMethods=http-01,DNS-01",
			CAAIssuer{Tag: "issue", Domain: "ca.test", Params: []CAAParam{{"accounturi", "https://ca.test/a/1"}, {"validationmethods", "http-01,DNS-01"}}}, false},
		{"ca.test; key", CAAIssuer{}, true},
		{"ca.test; k=v w", CAAIssuer{}, true},
		{"ca..test", CAAIssuer{}, true},
		{"-ca.test", CAAIssuer{}, true},
	}
	for _, tt := range tests {
		got, err := ParseCAAValue("issue", tt.value)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseCAAValue(%q) error %v, want error %v", tt.value, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCAAValue(%q) = %+v, want %+v", tt.value, got, tt.want)
		}
	}
	iss, _ := ParseCAAValue("issue", "ca.test; validationmethods=http-01,DNS-01")
	if got := iss.ValidationMethods(); !reflect.DeepEqual(got, []string{"http-01", "dns-01"}) {
		t.Errorf("ValidationMethods = %q", got)
	}
	iss, _ = ParseCAAValue("issue", "ca.test")
	if got := iss.ValidationMethods(); got != nil {
		t.Errorf("ValidationMethods without the parameter = %q, want nil", got)
	}
}

const caaZones = `
-- test --
-- climb.test --
@	IN CAA 0 issue "sectigo.com"
a.b	IN A 127.0.0.2
-- sub.climb.test --
@	IN CAA 0 issue "letsencrypt.org; validationmethods=dns-01"
host	IN A 127.0.0.2
-- alias.test --
mail	IN CNAME host.provider.test.
web	IN CNAME nocaa.provider.test.
-- provider.test --
host	IN A 127.0.0.2
host	IN CAA 0 issue "sectigo.com"
nocaa	IN A 127.0.0.2
-- wild.test --
@	IN CAA 0 issue "letsencrypt.org"
@	IN CAA 0 issuewild ";"
-- failing.test --
mail	IN A 127.0.0.2
-- nocaa.test --
mail	IN A 127.0.0.2
`

func TestCAAClimbing(t *testing.T) {
	s := startServer(t, caaZones)
	s.SetFault("failing.test", dnstest.FaultServfail)
	r := newTestResolver(t, s, Config{})
	tests := []struct {
		name    string
		allowed bool
		at      string
		reason  string
		err     bool
	}{
		{"a.b.climb.test", false, "climb.test", `CAA at climb.test allows only "sectigo.com"`, false},
		{"climb.test", false, "climb.test", "allows only", false},
		{"host.sub.climb.test", true, "sub.climb.test", `CAA at sub.climb.test allows "letsencrypt.org" (validationmethods=dns-01)`, false},
		{"MAIL.alias.test.", false, "mail.alias.test", `CAA at mail.alias.test (CNAME to host.provider.test) allows only "sectigo.com"`, false},
		// RFC 8659: the climb goes on from the alias's parent, not the target's.
		{"web.alias.test", true, "", "no CAA record", false},
		{"mail.wild.test", true, "wild.test", "allows", false},
		{"*.wild.test", false, "wild.test", "forbids every CA for wildcards", false},
		{"mail.failing.test", false, "", "CAA lookup failed: CAA failing.test: SERVFAIL", true},
		{"mail.nocaa.test", true, "", "no CAA record: any CA may issue", false},
		{"nonexistent.nocaa.test", true, "", "no CAA record", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := r.CAA(context.Background(), tt.name, "")
			if res.Allowed != tt.allowed || res.At != tt.at || !strings.Contains(res.Reason, tt.reason) || (res.Err != nil) != tt.err {
				t.Fatalf("got allowed=%v at=%q reason=%q err=%v; want %v %q %q err=%v", res.Allowed, res.At, res.Reason, res.Err, tt.allowed, tt.at, tt.reason, tt.err)
			}
			v := res.Verdict()
			if tt.err && v.Error == "" {
				t.Errorf("verdict has no error: %+v", v)
			}
			if tt.at != "" && len(v.Records) == 0 {
				t.Errorf("verdict has no records: %+v", v)
			}
			if wantAlias := strings.Contains(tt.reason, "(CNAME to host.provider.test)"); wantAlias != (v.Alias == "host.provider.test") {
				t.Errorf("verdict alias %q", v.Alias)
			}
		})
	}
	// The parameters stay available to the ACME client.
	res := r.CAA(context.Background(), "host.sub.climb.test", "letsencrypt.org")
	if len(res.Issuers) != 1 || !reflect.DeepEqual(res.Issuers[0].ValidationMethods(), []string{"dns-01"}) {
		t.Errorf("issuers %+v, want one with validationmethods dns-01", res.Issuers)
	}
	// The climb stops before the root.
	if n := s.QueryCount(".", dns.TypeCAA); n != 0 {
		t.Errorf("%d CAA queries for the root, want 0", n)
	}
	if n := s.QueryCount("test", dns.TypeCAA); n != 1 {
		t.Errorf("%d CAA queries for test, want 1 (cached)", n)
	}
}
