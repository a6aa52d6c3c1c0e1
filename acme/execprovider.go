package acme

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/challenge/dns01"

	"github.com/certplan/certplan/internal/proc"
)

// execProvider is the "exec" DNS provider: it runs the admin's script to
// publish and remove a challenge's TXT record, with lego's exec provider's
// interface (EXEC_PATH; arguments "present|cleanup FQDN VALUE", or with
// EXEC_MODE=RAW "present|cleanup -- DOMAIN TOKEN KEYAUTH"), so scripts
// written for lego work unchanged. Unlike lego's, a failure carries the
// script's own words (the end of what it printed is in the error), and the
// script runs as deploy hooks do (internal/proc: its process group killed
// on EXEC_TIMEOUT).
//
// The script must add its record beside any others at the FQDN, and
// "cleanup" must remove only the record with that VALUE: an order for
// "*.d" and "d" has two challenges at _acme-challenge.d, presented at
// once, and a script that replaces the record set (or deletes every TXT
// record there) makes one of them fail. With nsupdate that is "update add"
// and "update delete FQDN TXT VALUE", not "update delete FQDN TXT"; see
// examples/hooks/dns-nsupdate.sh.
type execProvider struct {
	path    string
	raw     bool
	timeout time.Duration
}

func newExecProvider() (*execProvider, error) {
	path := os.Getenv("EXEC_PATH")
	if path == "" {
		return nil, errors.New("EXEC_PATH is not set: the script that adds and removes the TXT records")
	}
	if _, err := exec.LookPath(path); err != nil {
		return nil, fmt.Errorf("EXEC_PATH %s: %w", path, err)
	}
	p := &execProvider{path: path, raw: os.Getenv("EXEC_MODE") == "RAW", timeout: 2 * time.Minute}
	if s := os.Getenv("EXEC_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("EXEC_TIMEOUT %q: want a duration such as 90s", s)
		}
		p.timeout = d
	}
	return p, nil
}

func (p *execProvider) Present(ctx context.Context, domain, token, keyAuth string) error {
	return p.run(ctx, "present", domain, token, keyAuth)
}

func (p *execProvider) CleanUp(ctx context.Context, domain, token, keyAuth string) error {
	return p.run(ctx, "cleanup", domain, token, keyAuth)
}

func (p *execProvider) run(ctx context.Context, op, domain, token, keyAuth string) error {
	var args []string
	if p.raw {
		args = []string{op, "--", domain, token, keyAuth}
	} else {
		info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
		args = []string{op, info.EffectiveFQDN, info.Value}
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	out, err := proc.Run(exec.CommandContext(ctx, p.path, args...), time.Second)
	if err == nil {
		return nil
	}
	switch {
	case parent.Err() != nil:
		err = parent.Err()
	case ctx.Err() != nil:
		err = fmt.Errorf("killed: no result after %s (EXEC_TIMEOUT)", p.timeout)
	}
	what := args[1] // the record's FQDN; in RAW mode, the domain
	if p.raw {
		what = domain
	}
	msg := fmt.Sprintf("%s %s %s: %v", p.path, op, what, err)
	if t := lastLines(out, 3); t != "" {
		msg += ": " + t
	}
	return errors.New(msg)
}

// lastLines returns the last n non-empty lines, joined by " / ".
func lastLines(out []byte, n int) string {
	var lines []string
	for _, l := range strings.Split(string(bytes.ToValidUTF8(out, []byte("?"))), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s := strings.Join(lines, " / ")
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}
