package cli

import (
	"context"
	"errors"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/probe"
	"github.com/spf13/pflag"
)

// probeInput is how a command gets a probe report: read from --probe, or
// computed by probing the inventory's names on the server IPs. plan, issue
// and renew take these flags.
type probeInput struct {
	ProbeFile string   // --probe FILE: read a saved probe report
	Ports     []string // --ports LIST: 25,587,465,993 or PROTO:PORT items such as smtp:2525
	CAFile    string   // --ca-file PEM: extra trust anchors
	NoProbe   bool     // --no-probe: plan without looking at the servers
	Hostname  string   // the server's own name (--hostname), to name its certificate by
}

// addFlags registers the flags; withFile adds --probe and --no-probe.
func (p *probeInput) addFlags(fs *pflag.FlagSet, withFile bool) {
	if withFile {
		fs.StringVar(&p.ProbeFile, "probe", "", "read the probe report from `file` (from \"certplan probe --format json\") instead of probing")
		fs.BoolVar(&p.NoProbe, "no-probe", false, "do not probe the servers (the plan then has no before/after coverage)")
	}
	fs.StringSliceVar(&p.Ports, "ports", []string{"25", "587", "465", "993"}, "ports to probe: well-known numbers (25,587,465,993,143,110,995) or PROTO:PORT such as smtp:2525")
	fs.StringVar(&p.CAFile, "ca-file", "", "PEM `file` of extra trust anchors (private CAs, a lab CA)")
}

// load returns the probe report for inv: read from --probe, nil with
// --no-probe, or computed by probing.
func (p *probeInput) load(ctx context.Context, g *globals, inv *model.Inventory) (*model.ProbeReport, error) {
	if p.NoProbe {
		return nil, nil
	}
	if p.ProbeFile != "" {
		var r model.ProbeReport
		if err := readDocument("--probe", p.ProbeFile, model.KindProbe, &r); err != nil {
			return nil, err
		}
		return &r, nil
	}
	ports, err := probe.ParsePorts(p.Ports)
	if err != nil {
		return nil, usageError("--ports: %v", err)
	}
	if len(inv.ServerIPs) == 0 {
		return nil, withHint(errors.New("probe: the inventory has no server IPs"), "run the inventory with --server-ip, or plan with --no-probe")
	}
	scope := probe.InventoryScope(inv, ports)
	scope.Hostname = p.Hostname
	return runProbe(ctx, g, scope, p.CAFile)
}
