package lab

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// WriteServerRoot writes the files "certplan init --root" looks at, as a
// hosting panel keeps them (DirectAdmin's layout: /usr/local/directadmin,
// and the hosted domains in /etc/virtual/domains), under Dir/root, and
// returns that root. The domain list is the zones directory's now.
func (l *Lab) WriteServerRoot() (string, error) {
	root := filepath.Join(l.Dir, "root")
	files, err := filepath.Glob(filepath.Join(l.ZonesDir, "*.db"))
	if err != nil {
		return "", err
	}
	var domains []string
	for _, f := range files {
		domains = append(domains, strings.TrimSuffix(filepath.Base(f), ".db"))
	}
	slices.Sort(domains)
	for _, d := range []string{"usr/local/directadmin", "etc/virtual"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	list := strings.Join(domains, "\n") + "\n"
	return root, os.WriteFile(filepath.Join(root, "etc/virtual/domains"), []byte(list), 0o644)
}
