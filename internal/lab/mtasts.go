package lab

import (
	"fmt"
	"net"
	"strconv"

	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/mtasts"
)

// MTASTSDomain publishes an MTA-STS policy (RFC 8461) in enforce mode
// listing its MX: its zone has the _mta-sts TXT record and
// mta-sts.<domain> on IP1, where the lab's policy server answers.
const MTASTSDomain = "client05.test"

// MTASTSPort is the policy server's port on IP1 when the lab's ports are
// not random: a high one, as the lab needs no privileges, given to
// certplan by --mta-sts-port (senders use 443 only).
const MTASTSPort = 2443

// MTASTSPolicy is the policy the lab serves for MTASTSDomain.
var MTASTSPolicy = model.MTASTSPolicy{Mode: model.MTASTSEnforce, MaxAge: 604800, MX: []string{"mail." + MTASTSDomain}}

// startMTASTS serves MTASTSPolicy over HTTPS on IP1, with a certificate
// from the lab CA (so --mta-sts-ca takes CAFile).
func (l *Lab) startMTASTS(randomPorts bool) error {
	port := MTASTSPort
	if randomPorts {
		port = 0
	}
	s, err := mailtest.StartPolicyServer(net.JoinHostPort(IP1, strconv.Itoa(port)), l.CA,
		map[string][]byte{MTASTSDomain: mtasts.FormatPolicy(&MTASTSPolicy)})
	if err != nil {
		return fmt.Errorf("lab mta-sts policy server: %w", err)
	}
	l.MTASTS = s
	l.closers = append(l.closers, s.Close)
	return nil
}

// MTASTSFlags are the flags that let certplan fetch the lab's policy: the
// lab CA as a trust anchor and the policy server's port.
func (l *Lab) MTASTSFlags() []string {
	return []string{"--mta-sts-ca", l.CAFile, "--mta-sts-port", strconv.Itoa(l.MTASTS.Port)}
}
