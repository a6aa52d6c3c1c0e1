package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file reads --webroot-map.

// readWebrootMap reads a webroot map: lines of "name-or-domain docroot"
// (# comments, blank lines ignored), or a YAML mapping of the same.
func readWebrootMap(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	var y map[string]string
	if err := yaml.Unmarshal(b, &y); err == nil && len(y) > 0 {
		for k, v := range y {
			m[normName(k)] = v
		}
		return m, nil
	}
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
		if len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"domain docroot\", got %q", path, n, line)
		}
		m[normName(strings.TrimSuffix(f[0], ":"))] = f[1]
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%s: no entries", path)
	}
	return m, nil
}

func normName(s string) string { return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".") }
