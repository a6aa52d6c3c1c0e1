//go:build tools

// Package deps pins modules that certplan uses through packages not yet
// imported everywhere (lego DNS providers, Pebble for tests, testscript), so
// that `go mod tidy` keeps them and parallel work does not race on go.mod.
package deps

import (
	_ "github.com/go-acme/lego/v5/lego"
	_ "github.com/go-acme/lego/v5/providers/dns/cloudflare"
	_ "github.com/go-acme/lego/v5/providers/dns/cpanel"
	_ "github.com/go-acme/lego/v5/providers/dns/dnsupdate"
	_ "github.com/go-acme/lego/v5/providers/dns/exec"
	_ "github.com/go-acme/lego/v5/providers/dns/httpreq"
	_ "github.com/go-acme/lego/v5/providers/dns/route53"
	_ "github.com/letsencrypt/pebble/v2/ca"
	_ "github.com/letsencrypt/pebble/v2/db"
	_ "github.com/letsencrypt/pebble/v2/va"
	_ "github.com/letsencrypt/pebble/v2/wfe"
	_ "github.com/miekg/dns"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/spf13/cobra"
	_ "golang.org/x/net/idna"
	_ "golang.org/x/net/publicsuffix"
	_ "gopkg.in/yaml.v3"
)
