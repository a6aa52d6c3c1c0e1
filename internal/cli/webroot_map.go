package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/certplan/certplan/names"
	"gopkg.in/yaml.v3"
)

// loadWebrootMap reads a --webroot-map (readWebrootMap) and checks it: each
// name is normalised as the planner writes names ("Bücher.test" is looked up
// as xn--bcher-kva.test), so that no entry is silently never used, and each
// document root is an absolute path, since certplan runs from cron in "/"
// and as root.
// The owners (the optional account column) are keyed alike.
func loadWebrootMap(path string) (map[string]string, map[string]uint32, error) {
	m, owners, err := readWebrootMap(path)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]string, len(m))
	outOwners := map[string]uint32{}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		n, err := names.Normalize(k)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		case !filepath.IsAbs(v):
			errs = append(errs, fmt.Errorf("%s: %s: document root %q is not an absolute path", path, k, v))
		case out[n] != "" && out[n] != v:
			errs = append(errs, fmt.Errorf("%s: %s is given twice, with %s and %s", path, n, out[n], v))
		default:
			out[n] = v
			if uid, ok := owners[k]; ok {
				outOwners[n] = uid
			}
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return out, outOwners, nil
}

// readWebrootMap reads a webroot map: lines of "name-or-domain docroot
// [account]" (# comments, blank lines ignored), or a YAML mapping of
// domains to docroots. The account (a user name or uid) owns the domain:
// its docroot must belong to it or to root (acme.ChallengeConfig's
// WebrootOwners).
func readWebrootMap(path string) (roots map[string]string, owners map[string]uint32, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	m := map[string]string{}
	var y map[string]string
	if err := yaml.Unmarshal(b, &y); err == nil && len(y) > 0 {
		for k, v := range y {
			m[normName(k)] = v
		}
		return m, nil, nil
	}
	owners = map[string]uint32{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "#"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 && len(f) != 3 {
			return nil, nil, fmt.Errorf("%s:%d: want \"domain docroot [account]\", got %q", path, n, line)
		}
		domain := normName(strings.TrimSuffix(f[0], ":"))
		m[domain] = f[1]
		if len(f) == 3 {
			uid, err := accountUID(f[2])
			if err != nil {
				return nil, nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			owners[domain] = uid
		}
	}
	if len(m) == 0 {
		return nil, nil, fmt.Errorf("%s: no entries", path)
	}
	return m, owners, nil
}

// accountUID reads a user name or a numeric uid.
func accountUID(s string) (uint32, error) {
	if uid, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(uid), nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return 0, fmt.Errorf("account %q: %w", s, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	return uint32(uid), err
}

func normName(s string) string { return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".") }
