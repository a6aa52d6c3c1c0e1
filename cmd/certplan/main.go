// Command certplan plans, issues, deploys and renews the TLS certificates of
// shared mail servers. See `certplan --help`.
package main

import (
	"os"

	"github.com/certplan/certplan/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
