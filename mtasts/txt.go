package mtasts

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// version is the value of the TXT record's v= field and of the policy's
// version field.
const version = "STSv1"

// IsRecord reports whether a TXT record (its strings joined) is an MTA-STS
// record: it starts with "v=STSv1" followed by ";", a space, a tab or its
// end. RFC 8461 §3.1 discards the others before counting.
func IsRecord(txt string) bool {
	rest, ok := strings.CutPrefix(txt, "v="+version)
	return ok && (rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t')
}

// ParseTXT parses an _mta-sts TXT record (RFC 8461 §3.1) and returns its
// policy id: "v=STSv1; id=20261127T000000;". The grammar:
//
//	sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
//	sts-field-delim = *WSP ";" *WSP
//	sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//	sts-extension   = sts-ext-name "=" sts-ext-value
//
// Extensions are allowed and ignored; exactly one id is required.
func ParseTXT(s string) (id string, err error) {
	if !IsRecord(s) {
		return "", errors.New(`does not start with "v=STSv1;"`)
	}
	fields := strings.Split(s[len("v="+version):], ";")
	// The text after the version starts with a delimiter: the first
	// field is only the whitespace before it.
	if strings.Trim(fields[0], " \t") != "" {
		return "", errors.New(`does not start with "v=STSv1;"`)
	}
	found := false
	for i, f := range fields[1:] {
		f = strings.Trim(f, " \t")
		if f == "" {
			if i == len(fields)-2 {
				break // a trailing delimiter
			}
			return "", errors.New("an empty field")
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok || !validExtName(k) {
			return "", fmt.Errorf("field %q is not name=value", f)
		}
		if k != "id" {
			if !validExtValue(v) {
				return "", fmt.Errorf("field %q is not name=value", f)
			}
			continue
		}
		if found {
			return "", errors.New("two id fields")
		}
		if v == "" || len(v) > 32 || !alnum(v) {
			return "", fmt.Errorf("id %q is not 1 to 32 letters and digits", v)
		}
		id, found = v, true
	}
	if !found {
		return "", errors.New("no id field")
	}
	return id, nil
}

// SelectTXT picks the MTA-STS record among a name's TXT records (each's
// strings joined): RFC 8461 §3.1 discards those that are not MTA-STS
// records ([IsRecord]); unless exactly one remains and it parses, a sender
// takes the domain to have no policy (available now). txt is the MTA-STS
// record (the first in sorting order when there are several; "" when
// none), id its id; err says why a sender would not use it.
func SelectTXT(records []string) (txt, id string, err error) {
	var sts []string
	for _, r := range records {
		if IsRecord(r) {
			sts = append(sts, r)
		}
	}
	switch len(sts) {
	case 0:
		return "", "", nil
	case 1:
		id, err := ParseTXT(sts[0])
		if err != nil {
			return sts[0], "", fmt.Errorf("_mta-sts TXT: %w", err)
		}
		return sts[0], id, nil
	}
	slices.Sort(sts)
	return sts[0], "", fmt.Errorf("_mta-sts TXT: %d v=STSv1 records: senders use none", len(sts))
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validExtName is sts-ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" /
// "-" / "."). The policy's sts-policy-ext-name is the same.
func validExtName(s string) bool {
	if s == "" || len(s) > 32 || !alnum(s[:1]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(s[i:i+1]) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validExtValue is sts-ext-value: 1*(%x21-3A / %x3C / %x3E-7E), printable
// ASCII but for "=", ";" and space.
func validExtValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '=' || c == ';' {
			return false
		}
	}
	return true
}
