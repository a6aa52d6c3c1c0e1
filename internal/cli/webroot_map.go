package cli

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"github.com/certplan/certplan/names"
)

// loadWebrootMap reads a --webroot-map (readWebrootMap) and checks it: each
// name is normalised as the planner writes names ("Bücher.test" is looked up
// as xn--bcher-kva.test), so that no entry is silently never used, and each
// document root is an absolute path, since certplan runs from cron in "/"
// and as root.
func loadWebrootMap(path string) (map[string]string, error) {
	m, err := readWebrootMap(path)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
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
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
