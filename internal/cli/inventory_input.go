package cli

import (
	"context"
	"errors"

	"github.com/certplan/certplan/model"
	"github.com/spf13/pflag"
)

// inventoryInput is how a command gets an inventory: read from --inventory,
// or computed by running the inventory over the domain sources. inventory,
// probe, plan, issue and renew all take these flags.
type inventoryInput struct {
	InventoryFile string   // --inventory FILE: read a saved inventory instead of querying DNS
	DomainsFile   string   // --domains FILE ("-" for stdin): one domain a line, # comments
	ZonesDir      string   // --zones DIR: BIND zone files; each file's origin is a hosted domain
	ServerIPs     []string // --server-ip IP (repeatable): this server's addresses
	CAIdentifier  string   // --ca-identifier: CAA issuer domain, default letsencrypt.org
}

// addFlags registers the flags; withFile adds --inventory.
func (in *inventoryInput) addFlags(fs *pflag.FlagSet, withFile bool) {
	if withFile {
		fs.StringVar(&in.InventoryFile, "inventory", "", "read the inventory from `file` (from \"certplan inventory --format json\") instead of querying DNS")
	}
	fs.StringVar(&in.DomainsFile, "domains", "", "hosted domains, one per line, # comments (`file`, or - for stdin)")
	fs.StringVar(&in.ZonesDir, "zones", "", "`dir` of BIND zone files (such as /var/named); each file's origin is a hosted domain")
	fs.StringArrayVar(&in.ServerIPs, "server-ip", nil, "an `IP` address of this server (repeatable)")
	fs.StringVar(&in.CAIdentifier, "ca-identifier", "letsencrypt.org", "CAA issuer `domain` of the CA, for CAA checks")
}

// given reports whether any domain source (or --inventory) was given.
func (in *inventoryInput) given(args []string) bool {
	return in.InventoryFile != "" || in.DomainsFile != "" || in.ZonesDir != "" || len(args) > 0
}

// load returns the inventory: read from --inventory, or computed from args
// (domains), --domains and --zones. A non-nil inventory with failed domains
// is returned with a nil error; the caller decides the exit code.
func (in *inventoryInput) load(ctx context.Context, g *globals, args []string) (*model.Inventory, error) {
	if in.InventoryFile != "" {
		var inv model.Inventory
		if err := model.ReadFile(in.InventoryFile, model.KindInventory, &inv); err != nil {
			return nil, err
		}
		return &inv, nil
	}
	return nil, errors.New("inventory: not implemented yet")
}
