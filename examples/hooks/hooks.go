// Package hooks embeds the example deploy hooks (*.sh), so that
// "certplan init" can install them on a server that has certplan's binary
// but not its package (which puts them in /usr/share/certplan/hooks).
package hooks

import "embed"

// FS holds the hooks, by file name.
//
//go:embed *.sh
var FS embed.FS
