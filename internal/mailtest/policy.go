package mailtest

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"
)

// PolicyServer serves MTA-STS policies (RFC 8461) over HTTPS, as the
// mta-sts.<domain> hosts of several domains would: GET
// /.well-known/mta-sts.txt with Host mta-sts.<domain> gets that domain's
// policy as text/plain; anything else a 404. Its certificate, from the CA
// given, names every mta-sts.<domain>.
type PolicyServer struct {
	// Addr is the "ip:port" it listens on; Port its port (the seam
	// certplan's --mta-sts-port takes, since 443 needs privileges).
	Addr string
	Port int
	srv  *http.Server
}

// StartPolicyServer serves policies (by domain) on addr ("127.0.0.2:0"
// for a free port) with a certificate signed by ca.
func StartPolicyServer(addr string, ca *CA, policies map[string][]byte) (*PolicyServer, error) {
	if len(policies) == 0 {
		return nil, errors.New("mailtest: a policy server needs a policy")
	}
	var names []string
	for d := range policies {
		names = append(names, "mta-sts."+d)
	}
	cert, err := ca.Issue(CertSpec{Names: names})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := strings.CutPrefix(strings.ToLower(r.Host), "mta-sts.")
		p, known := policies[d]
		if !ok || !known || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(p)
	})
	s := &PolicyServer{Addr: ln.Addr().String(), Port: ln.Addr().(*net.TCPAddr).Port,
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
			// A client that refuses the certificate is what tests
			// check, not news for the test's log.
			ErrorLog:  log.New(io.Discard, "", 0),
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{*cert}}}}
	go s.srv.ServeTLS(ln, "", "")
	return s, nil
}

// Close stops the server.
func (s *PolicyServer) Close() error { return s.srv.Close() }
