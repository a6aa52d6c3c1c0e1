package acme

import "testing"

func TestCAAParams(t *testing.T) {
	const acct = "https://ca.test/acct/1"
	tests := []struct {
		name    string
		records []string
		allows  bool
		forbid  bool // caaParamsForbid for http-01 and acct
	}{
		{"no records", nil, true, false},
		{"only iodef", []string{`0 iodef "mailto:a@b.test"`}, true, false},
		{"plain issue", []string{`0 issue "pebble.test"`}, true, false},
		{"other CA", []string{`0 issue "sectigo.com"`}, false, false},
		{"forbid all", []string{`0 issue ";"`}, false, false},
		{"full record", []string{`d.test. 300 IN CAA 0 issue "pebble.test"`}, true, false},
		{"method excluded", []string{`0 issue "pebble.test; validationmethods=dns-01"`}, true, true},
		{"method listed", []string{`0 issue "pebble.test; validationmethods=dns-01,http-01"`}, true, false},
		{"one of two allows", []string{`0 issue "pebble.test; validationmethods=dns-01"`, `0 issue "pebble.test"`}, true, false},
		{"other account", []string{`0 issue "pebble.test; accounturi=https://ca.test/acct/2"`}, true, true},
		{"this account", []string{`0 issue "pebble.test; accounturi=` + acct + `"`}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := caaAllows(tt.records, "pebble.test"); got != tt.allows {
				t.Errorf("caaAllows = %v, want %v", got, tt.allows)
			}
			if got := caaParamsForbid(tt.records, "issue", "pebble.test", HTTP01, acct) != ""; got != tt.forbid {
				t.Errorf("caaParamsForbid = %v, want %v", got, tt.forbid)
			}
		})
	}
}

func TestParseKeyTypeAndDirectory(t *testing.T) {
	for in, want := range map[string]KeyType{"": EC256, "P256": EC256, "ecdsa": EC256, "rsa-3072": RSA3072, "RSA4096": RSA4096, "ec384": EC384} {
		if got, err := ParseKeyType(in); err != nil || got != want {
			t.Errorf("ParseKeyType(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseKeyType("dsa"); err == nil {
		t.Error("ParseKeyType(dsa) succeeded")
	}
	if u, _ := DirectoryURL("letsencrypt-staging"); u != "https://acme-staging-v02.api.letsencrypt.org/directory" {
		t.Errorf("staging: %s", u)
	}
	if u, _ := DirectoryURL("https://127.0.0.1:14000/dir"); u != "https://127.0.0.1:14000/dir" {
		t.Errorf("url: %s", u)
	}
	if _, err := DirectoryURL("nosuchca"); err == nil {
		t.Error("unknown CA accepted")
	}
}
