package lab

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certplan/certplan/internal/atomicfile"
	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
)

// Ports are the lab's mail services on each server IP, high ports so that
// the lab needs no privileges: SMTP and submission with STARTTLS, SMTPS and
// IMAPS.
var Ports = []struct {
	Protocol string
	Port     int
}{
	{model.ProtoSMTP, 2525},
	{model.ProtoSubmission, 2587},
	{model.ProtoSMTPS, 2465},
	{model.ProtoIMAPS, 2993},
}

// sniDomains have a cPanel-style "Mail SNI" certificate today (mail.D and
// D, and smtp.D for domain2.test): with SNI their clients verify, without
// they get the IP's default certificate. client31 to client40 have none.
func sniDomains() []string {
	var out []string
	for _, d := range HostedDomains() {
		if !strings.HasPrefix(d, "client3") && !strings.HasPrefix(d, "client40") {
			out = append(out, d)
		}
	}
	return out
}

// MailServer is the lab host's mail listeners. Like a real server it reads
// its certificates from files and re-reads them when told to reload:
//
//	Dir/default-<ip>.pem   the IP's default certificate (key, then chain)
//	Dir/sni/<name>.pem     the certificate for clients that send SNI <name>
//	Dir/reload             touch it to reload, as "postfix reload" would
//
// That is the interface deploy hooks write to (examples/hooks/lab.sh).
type MailServer struct {
	Dir string
	// Ports maps protocol to the port it listens on (the same on every IP).
	Ports map[string]int

	mu      sync.Mutex
	certs   map[string]*mailtest.Certs // by IP
	servers []*mailtest.Server
	stop    chan struct{}
	done    chan struct{}
	lastMod time.Time
	// watching is set once the reload watcher runs.
	watching  bool
	closeOnce sync.Once
	// OnReloadError reports a reload that failed; the old certificates stay.
	OnReloadError func(error)
}

// PortsFlag returns the --ports value that probes the lab's services.
func (m *MailServer) PortsFlag() string {
	var items []string
	for _, p := range Ports {
		items = append(items, fmt.Sprintf("%s:%d", p.Protocol, m.Ports[p.Protocol]))
	}
	return strings.Join(items, ",")
}

// startMail writes today's certificates, signed by ca, and starts the
// listeners. With randomPorts the ports are free ones (the same on every IP),
// for tests that run beside a lab.
func startMail(dir string, ca *mailtest.CA, randomPorts bool) (*MailServer, error) {
	m := &MailServer{Dir: dir, Ports: map[string]int{}, certs: map[string]*mailtest.Certs{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := os.MkdirAll(filepath.Join(dir, "sni"), 0o700); err != nil {
		return nil, err
	}
	defaults := map[string][]string{IP1: {Hostname}, IP2: {"server2.main-domain.test"}}
	for ip, names := range defaults {
		if err := writeCert(filepath.Join(dir, "default-"+ip+".pem"), ca, names); err != nil {
			return nil, err
		}
	}
	for _, d := range sniDomains() {
		names := []string{"mail." + d, d}
		if d == "domain2.test" {
			names = append(names, "smtp."+d)
		}
		for _, n := range names {
			if err := writeCert(filepath.Join(dir, "sni", n+".pem"), ca, names); err != nil {
				return nil, err
			}
		}
	}
	if err := m.Reload(); err != nil {
		return nil, err
	}
	if err := m.listen(randomPorts); err != nil {
		m.Close()
		return nil, err
	}
	m.watching = true
	go m.watch()
	return m, nil
}

func writeCert(path string, ca *mailtest.CA, names []string) error {
	c, err := ca.Issue(mailtest.CertSpec{Names: names})
	if err != nil {
		return err
	}
	key, err := mailtest.KeyPEM(c)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(key, mailtest.CertPEM(c)...), 0o600)
}

func (m *MailServer) listen(randomPorts bool) error {
	for _, p := range Ports {
		port := p.Port
		for try := 0; ; try++ {
			if randomPorts {
				port = freePort(IP1)
			}
			servers, err := m.startOn(p.Protocol, port)
			if err == nil {
				m.servers = append(m.servers, servers...)
				m.Ports[p.Protocol] = port
				break
			}
			if !randomPorts || try > 20 {
				return fmt.Errorf("lab mail %s on port %d: %w", p.Protocol, port, err)
			}
		}
	}
	return nil
}

// startOn starts protocol on port on every server IP, or none of them.
func (m *MailServer) startOn(protocol string, port int) ([]*mailtest.Server, error) {
	var started []*mailtest.Server
	for _, ip := range ServerIPs {
		s, err := mailtest.Start(mailtest.Config{Addr: net.JoinHostPort(ip, strconv.Itoa(port)), Protocol: protocol,
			Certs: m.certs[ip], Hostname: Hostname})
		if err != nil {
			for _, x := range started {
				x.Close()
			}
			return nil, err
		}
		started = append(started, s)
	}
	return started, nil
}

func freePort(ip string) int {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Reload re-reads the certificate files. On any error the certificates
// served so far stay, as a real server keeps its old configuration when the
// new one does not load.
func (m *MailServer) Reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sniFiles, err := filepath.Glob(filepath.Join(m.Dir, "sni", "*.pem"))
	if err != nil {
		return err
	}
	// Like Exim's per-name files and Postfix's SNI map, the file name is the
	// name it serves, whatever else the certificate lists; a certificate
	// linked under several names is loaded once.
	sni := map[string]*tls.Certificate{}
	byPath := map[string]*tls.Certificate{}
	for _, f := range sniFiles {
		real, err := filepath.EvalSymlinks(f)
		if err != nil {
			return err
		}
		c := byPath[real]
		if c == nil {
			if c, err = loadCombined(f); err != nil {
				return err
			}
			byPath[real] = c
		}
		name := strings.TrimSuffix(filepath.Base(f), ".pem")
		if rest, ok := strings.CutPrefix(name, "_."); ok {
			name = "*." + rest // exim.sh's file name for a wildcard
		}
		sni[name] = c
	}
	defs := map[string]*tls.Certificate{}
	for _, ip := range ServerIPs {
		c, err := loadCombined(filepath.Join(m.Dir, "default-"+ip+".pem"))
		if err != nil {
			return err
		}
		defs[ip] = c
	}
	for _, ip := range ServerIPs {
		if m.certs[ip] == nil {
			m.certs[ip] = &mailtest.Certs{}
		}
		m.certs[ip].SetByName(defs[ip], sni)
	}
	return nil
}

// loadCombined reads a PEM file holding a key and its certificate chain.
func loadCombined(path string) (*tls.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(b, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// watch reloads when Dir/reload is touched.
func (m *MailServer) watch() {
	defer close(m.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	path := filepath.Join(m.Dir, "reload")
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		fi, err := os.Stat(path)
		if err != nil || !fi.ModTime().After(m.lastMod) {
			continue
		}
		m.lastMod = fi.ModTime()
		if err := m.Reload(); err != nil && m.OnReloadError != nil {
			m.OnReloadError(err)
		}
	}
}

// Close stops the listeners.
func (m *MailServer) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		if m.watching {
			<-m.done
		}
	})
	var errs []error
	for _, s := range m.servers {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
