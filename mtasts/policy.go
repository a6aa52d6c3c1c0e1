package mtasts

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/names"
)

// MaxMaxAge is the largest max_age a policy may have, in seconds (a year;
// RFC 8461 §3.2).
const MaxMaxAge = 31557600

// ParsePolicy parses an MTA-STS policy (RFC 8461 §3.2): lines of "key:
// value" ended by LF or CRLF, the keys case-sensitive. version must be
// STSv1; mode enforce, testing or none; max_age a number of seconds up to
// MaxMaxAge; mx, which may repeat, a host name or "*." and one, required
// unless the mode is none. Keys it does not know are ignored, as §3.2
// asks (for extensions); blank lines are skipped. A second version, mode or
// max_age is an error, since senders could take either. The mx patterns
// are normalised (lowercase A-labels, no trailing dot) and kept in order.
// An error names the line and what is wrong with it.
func ParsePolicy(b []byte) (*model.MTASTSPolicy, error) {
	p := &model.MTASTSPolicy{}
	seen := map[string]int{} // key: the line it was first on
	for i, line := range bytes.Split(b, []byte("\n")) {
		n := i + 1
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.Trim(line, " \t")) == 0 {
			continue
		}
		k, v, ok := strings.Cut(string(line), ":")
		if !ok || !validExtName(k) {
			return nil, fmt.Errorf("policy line %d: %q is not \"key: value\"", n, clip(line))
		}
		v = strings.Trim(v, " \t")
		switch k {
		case "version", "mode", "max_age":
			if first, dup := seen[k]; dup {
				return nil, fmt.Errorf("policy line %d: a second %s (the first is on line %d)", n, k, first)
			}
			seen[k] = n
		case "mx":
			seen[k] = n
		default:
			continue // an extension (§3.2: unknown fields are ignored)
		}
		if err := setField(p, k, v); err != nil {
			return nil, fmt.Errorf("policy line %d: %w", n, err)
		}
	}
	for _, k := range []string{"version", "mode", "max_age"} {
		if _, ok := seen[k]; !ok {
			return nil, fmt.Errorf("policy: no %s line", k)
		}
	}
	if len(p.MX) == 0 && p.Mode != model.MTASTSNone {
		return nil, fmt.Errorf("policy: mode %s and no mx line", p.Mode)
	}
	return p, nil
}

// setField sets one known field of p from its value.
func setField(p *model.MTASTSPolicy, k, v string) error {
	switch k {
	case "version":
		if v != version {
			return fmt.Errorf("version %q is not %s", v, version)
		}
	case "mode":
		switch v {
		case model.MTASTSEnforce, model.MTASTSTesting, model.MTASTSNone:
			p.Mode = v
		default:
			return fmt.Errorf("mode %q is not enforce, testing or none", v)
		}
	case "max_age":
		// sts-policy-max-age-value = 1*10(DIGIT)
		age, err := strconv.ParseInt(v, 10, 64)
		if err != nil || len(v) > 10 || !allDigits(v) {
			return fmt.Errorf("max_age %q is not a number of seconds", v)
		}
		if age > MaxMaxAge {
			return fmt.Errorf("max_age %d is more than %d (a year)", age, MaxMaxAge)
		}
		p.MaxAge = age
	case "mx":
		pat, err := mxPattern(v)
		if err != nil {
			return err
		}
		p.MX = append(p.MX, pat)
	}
	return nil
}

// mxPattern normalises an mx value: sts-policy-mx-value = ["*."] Domain.
func mxPattern(v string) (string, error) {
	if v == "" {
		return "", errors.New("mx with no host")
	}
	if strings.Contains(strings.TrimPrefix(v, "*."), "*") {
		return "", fmt.Errorf("mx %q: a wildcard only as \"*.\" and one left-most label", v)
	}
	pat, err := names.NormalizeWildcard(v)
	if err != nil {
		return "", fmt.Errorf("mx %q: %w", v, err)
	}
	return pat, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// clip shortens a bad line for an error message.
func clip(line []byte) string {
	const max = 60
	if len(line) > max {
		return string(line[:max]) + "..."
	}
	return string(line)
}

// FormatPolicy writes p as a policy file: version, mode, one mx line per
// pattern, max_age, each line ended by CRLF (RFC 8461 §3.2's example).
// ParsePolicy reads it back as p.
func FormatPolicy(p *model.MTASTSPolicy) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "version: %s\r\nmode: %s\r\n", version, p.Mode)
	for _, mx := range p.MX {
		fmt.Fprintf(&b, "mx: %s\r\n", mx)
	}
	fmt.Fprintf(&b, "max_age: %d\r\n", p.MaxAge)
	return b.Bytes()
}
