package cli

import (
	"time"

	"github.com/certplan/certplan/apply"
	"github.com/spf13/cobra"
)

type renewOptions struct {
	applyOptions
	jitter   time.Duration
	noJitter bool
}

// newRenewCmd is long for its help text (what renew decides, the exit
// codes, examples); the work is in apply.
func newRenewCmd(g *globals) *cobra.Command {
	o := &renewOptions{}
	cmd := &cobra.Command{
		Use:   "renew [DOMAIN...]",
		Short: "Do what is due, from cron: renew, reissue changed certificates, deploy, verify",
		Long: `renew is the command for cron or a systemd timer, safe to run every hour. It
takes the inventory again (the domain sources and --server-ip, usually from the
config file), plans against the plan applied last time (certificates keep
their IDs and name sets; a new domain goes into a certificate with room; a
removed one changes only its own certificate), and for each planned
certificate decides:

  nothing to do    the certificate is fine (it says when it becomes due)
  renew            the CA's renewal window (ARI, RFC 9773) has opened, or,
                   without ARI, a third of the lifetime is left
  reissue          the plan changed its names (a domain came or went)
  issue            there is none yet

Failures back off per certificate across runs (1 minute, 10 minutes, 100
minutes, then daily), and a CA's Retry-After (a rate limit) is honoured: for a
renewal, and for a certificate whose first issuance keeps failing alike. Before its first
order a run sleeps a random time up to --jitter, so that many hosts started
by the same cron minute do not reach the CA at once (--no-jitter to skip).
A second run while one is working exits at once with code 4. Deploy hooks
run only for certificates that changed, and the changed certificates are
then verified by probing, as "certplan issue" does. When a certificate's
hooks succeed but verification does not find it served (a listener the hooks
do not manage, a server that did not reload), later runs deploy it again at
most 3 times, 1, 10 and 100 minutes apart, and then stop reloading the
servers for it: "certplan check" keeps reporting the names it does not serve.

--pre-hook and --post-hook run once per run, only when something is due, so
an hourly run with nothing to do runs neither: the pre-hook before anything
binds or self-checks the challenge port, the post-hook after the last deploy
hook (also when the run failed). A failing pre-hook stops the run before any
order (exit 1); a failing post-hook makes it partial (exit 3).

A certificate the plan no longer has (a domain left) is retired: its deploy
hooks run once with CERTPLAN_CHANGE=retired, before the deploys of the run,
so that the servers stop presenting it; then its files move to --state-dir's
retired/ and nothing renews or checks it. A failed hook is run again by the
next run. The retirement waits while one of its names is planned on a
certificate that does not list it yet (that order failed): until then, the
retired certificate is the one serving the name.

Output: nothing at all when nothing happened (a certificate waiting out a
backoff, or its next redeploy, counts as nothing: the run that failed said
so, and --format json shows it); otherwise one line per change, and when
something failed one "certplan: error:" line on stderr. --format json writes
the full report. A hosted domain whose DNS lookups start failing is said
once on stderr ("certplan: warning: lookups failing for ...", and in the
JSON report's "domains"), and once more when it answers again; the runs in
between say nothing of it (its names stay planned), and "certplan check"
warns about it meanwhile. --state-dir keeps the failing domains.

Exit codes:
  0  nothing was due, or everything due was done, deployed and verified
  1  failure: nothing due could be issued
  2  bad flags or arguments, or no --agree-tos when an ACME account must be
     registered (none in --state-dir for the CA): nothing was sent
  3  partial: some names or certificates failed, a hook failed (also a
     retired certificate's, or the post-hook), certificates were deferred (--max-orders), or
     verification found a new certificate not served (runs that deploy
     nothing verify nothing: they exit 0)
  4  another certplan run holds the state directory's lock`,
		Example: `  # Hourly from cron (the config file holds the domain sources, server IPs,
  # CA, challenge, hooks, ...)
  17 * * * *  root  certplan --config /etc/certplan/certplan.yaml renew

  # By hand, without the random sleep, as JSON
  certplan renew --zones /var/named --server-ip 192.0.2.10 --no-jitter --format json

  # Apply a plan made and reviewed beforehand ("certplan plan --format json")
  certplan renew --plan plan.json

  # A web server holds port 80: stop it for the HTTP-01 challenge, only
  # when something is due
  certplan renew --pre-hook 'systemctl stop nginx' --post-hook 'systemctl start nginx'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkFormat("text", "json"); err != nil {
				return err
			}
			args, err := o.recall(cmd, g, args)
			if err != nil {
				return err
			}
			if o.jitter < 0 {
				return usageError("--jitter %s: must not be negative", o.jitter)
			}
			rep, err := runApply(cmd.Context(), g, &o.applyOptions, args, apply.ModeRenew, func(ao *apply.Options) {
				if !o.noJitter {
					ao.Jitter = o.jitter
				}
			})
			if rep == nil {
				return err
			}
			if g.Format == "json" || !rep.Quiet() {
				if werr := writeReport(g, rep, true); werr != nil {
					return werr
				}
			}
			return err
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().DurationVar(&o.jitter, "jitter", 5*time.Minute, "sleep a random time up to this long before the first order")
	cmd.Flags().BoolVar(&o.noJitter, "no-jitter", false, "do not sleep before ordering")
	return cmd
}
