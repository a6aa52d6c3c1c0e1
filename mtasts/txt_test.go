package mtasts

import "testing"

func TestParseTXT(t *testing.T) {
	for _, c := range []struct{ in, id, err string }{
		{"v=STSv1; id=20261127T000000;", "20261127T000000", ""},
		{"v=STSv1;id=1", "1", ""},
		{"v=STSv1 ; id=abc ;  ", "abc", ""},
		{"v=STSv1; ext-1=x!y; id=A1", "A1", ""},
		{"v=STSv1; id=12345678901234567890123456789012", "12345678901234567890123456789012", ""},
		{"v=STSv1", "", "no id field"},
		{"v=STSv1;", "", "no id field"},
		{"v=STSv2; id=1", "", `does not start with "v=STSv1;"`},
		{"v=STSv1x; id=1", "", `does not start with "v=STSv1;"`},
		{"id=1; v=STSv1", "", `does not start with "v=STSv1;"`},
		{"v=STSv1; id=", "", `id "" is not 1 to 32 letters and digits`},
		{"v=STSv1; id=2026-11-27", "", `id "2026-11-27" is not 1 to 32 letters and digits`},
		{"v=STSv1; id=123456789012345678901234567890123", "", `id "123456789012345678901234567890123" is not 1 to 32 letters and digits`},
		{"v=STSv1; id=1; id=2", "", "two id fields"},
		{"v=STSv1;; id=1", "", "an empty field"},
		{"v=STSv1; id 1", "", `field "id 1" is not name=value`},
		{"v=STSv1; id=1; x=a b", "", `field "x=a b" is not name=value`},
	} {
		id, err := ParseTXT(c.in)
		if got := errString(err); id != c.id || got != c.err {
			t.Errorf("ParseTXT(%q) = %q, %q; want %q, %q", c.in, id, got, c.id, c.err)
		}
	}
}

func TestSelectTXT(t *testing.T) {
	for _, c := range []struct {
		in           []string
		txt, id, err string
	}{
		{nil, "", "", ""},
		{[]string{"v=spf1 -all", "unrelated"}, "", "", ""},
		{[]string{"unrelated", "v=STSv1; id=7"}, "v=STSv1; id=7", "7", ""},
		{[]string{"v=STSv1; id=9", "v=STSv1; id=7"}, "v=STSv1; id=7", "", "_mta-sts TXT: 2 v=STSv1 records: senders use none"},
		{[]string{"v=STSv1; id=no-dash"}, "v=STSv1; id=no-dash", "", `_mta-sts TXT: id "no-dash" is not 1 to 32 letters and digits`},
	} {
		txt, id, err := SelectTXT(c.in)
		if got := errString(err); txt != c.txt || id != c.id || got != c.err {
			t.Errorf("SelectTXT(%q) = %q, %q, %q; want %q, %q, %q", c.in, txt, id, got, c.txt, c.id, c.err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
