package cli

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/certplan/certplan/model"
)

// inventoryGuard stops issue and renew from planning on an inventory in
// which every domain failed its DNS lookups (a resolver that is down, a
// network outage at 3 a.m.): such a plan lists none of the hosted names,
// and applying it would reissue the certificates with only the must-cover
// names and retire the others.
func inventoryGuard(g *globals, inv *model.Inventory) error {
	if inv == nil || inv.Stats.Domains == 0 || inv.Stats.DomainsFailed < inv.Stats.Domains {
		return nil
	}
	example := ""
	for _, d := range inv.Domains {
		if d.Error != "" {
			example = "; " + d.Domain + ": " + d.Error
			break
		}
	}
	resolvers := "the system's resolvers (/etc/resolv.conf)"
	if len(g.Resolvers) > 0 {
		resolvers = strings.Join(g.Resolvers, ", ")
	}
	return withHint(fmt.Errorf("every domain failed its DNS lookups (%d of %d%s): a plan now would drop every hosted name, so nothing was ordered, deployed or changed",
		inv.Stats.DomainsFailed, inv.Stats.Domains, example),
		"check that "+resolvers+" answers (dig @HOST -p PORT example.com MX), or give another with --resolver; then run again")
}

// coverageGuard refuses a plan that drops more than half of the names the
// applied plan covers, unless --allow-reduced-coverage: that is what
// "certplan issue newdomain.test" (one domain instead of every source) or
// a mass DNS failure would do, and deploying it takes the other names'
// certificates away. Customers leaving one by one never trip it.
func coverageGuard(o *applyOptions, prev, plan *model.Plan) error {
	if o.allowReduced || prev == nil || plan == nil {
		return nil
	}
	dropped, covered := droppedNames(prev, plan)
	if len(dropped) < 2 || 2*len(dropped) <= covered {
		return nil
	}
	return withHint(fmt.Errorf("the new plan drops %d of the %d names the applied certificates cover (%s): nothing was ordered, deployed or changed",
		len(dropped), covered, list(dropped, 5)),
		"if only some domains were meant, give every domain source (such as --zones /var/named) as the config file does; a new domain joins on its own",
		"if their DNS lookups failed, fix them first; if the names really left this server, run again with --allow-reduced-coverage")
}

// droppedNames returns the names of prev's certificates that plan does not
// have, sorted, and how many names prev covers.
func droppedNames(prev, plan *model.Plan) (dropped []string, covered int) {
	kept := map[string]bool{}
	for _, c := range plan.Certificates {
		for _, n := range c.Names {
			kept[n] = true
		}
	}
	seen := map[string]bool{}
	for _, c := range prev.Certificates {
		for _, n := range c.Names {
			if seen[n] {
				continue
			}
			seen[n] = true
			if !kept[n] {
				dropped = append(dropped, n)
			}
		}
	}
	sort.Strings(dropped)
	return dropped, len(seen)
}

// warnDroppedWhileFailing warns when the new plan leaves out names that
// the applied plan covers while some domains fail their DNS lookups: those
// names may be leaving only because their domain did not answer this time.
func warnDroppedWhileFailing(g *globals, inv *model.Inventory, prev, plan *model.Plan) {
	if inv == nil || prev == nil || plan == nil || inv.Stats.DomainsFailed == 0 {
		return
	}
	dropped, _ := droppedNames(prev, plan)
	if len(dropped) == 0 {
		return
	}
	var failed []string
	for _, d := range inv.Domains {
		if d.Error != "" {
			failed = append(failed, d.Domain)
		}
	}
	fmt.Fprintf(g.Stderr, "certplan: warning: %d domains failed their DNS lookups (%s), and %d names the certificates cover now leave them (%s): if the lookups failed only this time, the next run puts the names back\n",
		len(failed), list(failed, 5), len(dropped), list(dropped, 5))
}

// list joins at most max items, saying how many more there are.
func list(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:max], ", ") + fmt.Sprintf(" and %d more", len(items)-max)
}

// notServedHint says what to look at when verification finds the new
// certificates not served.
func notServedHint(hooks []string, stateDir string) string {
	if len(hooks) == 0 {
		return "no --deploy-hook was given, so no server was told: install the files of " + filepath.Join(stateDir, "certs", "<id>", "current") +
			" (combined.pem, or fullchain.pem and privkey.pem) and reload the mail servers, or add --deploy-hook (see examples/hooks)"
	}
	return "the deploy hooks ran, but the servers still serve other certificates: check that the hooks install the files and reload the servers, and that --ports lists the ports they listen on"
}

// checkApplyFlags checks the flags of issue and renew that would otherwise
// fail late (at the CA, after the inventory) or quietly (a hook killed at
// once, a webroot created where none was meant to be).
func checkApplyFlags(o *applyOptions) error {
	if o.hookTimeout <= 0 {
		return usageError("--hook-timeout %s: must be positive", o.hookTimeout)
	}
	if o.verifyWait < 0 {
		return usageError("--verify-wait %s: must not be negative", o.verifyWait)
	}
	if o.email != "" {
		if a, err := mail.ParseAddress(o.email); err != nil || a.Address != o.email || !strings.Contains(a.Address, "@") {
			return withCode(ExitUsage, fmt.Errorf("--email %q: not an email address", o.email), "give a plain address, such as postmaster@example.com")
		}
	}
	if (o.eabKID == "") != (o.eabHMAC == "") {
		return usageError("--eab-kid and --eab-hmac go together: the CA gives both")
	}
	if o.eabHMAC != "" {
		// As lego decodes it: base64url, with or without padding.
		if _, err := base64.RawURLEncoding.DecodeString(o.eabHMAC); err != nil {
			if _, err := base64.URLEncoding.DecodeString(o.eabHMAC); err != nil {
				return withCode(ExitUsage, errors.New("--eab-hmac: not base64url"), "copy the HMAC key exactly as the CA shows it (letters, digits, - and _)")
			}
		}
	}
	if o.webroot != "" {
		fi, err := os.Stat(o.webroot)
		switch {
		case err != nil:
			return withHint(fmt.Errorf("--webroot %s: %w", o.webroot, errors.Unwrap(err)), "give the document root the web server serves for the names (such as /var/www/html)")
		case !fi.IsDir():
			return usageError("--webroot %s: not a directory", o.webroot)
		}
	}
	return nil
}
