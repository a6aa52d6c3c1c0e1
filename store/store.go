// Package store is certplan's state directory (--state-dir, default
// /var/lib/certplan): ACME accounts, certificates with their keys and
// metadata, per-certificate renewal state, the applied plan, and room for a
// staged next key (DANE). It does no network I/O.
//
// # Layout
//
//	<dir>/                          0700
//	  lock                          flock(2): one writer at a time
//	  plan.json                     the applied plan (model.Plan)
//	  domains.json                  hosted domains whose lookups fail, since when (FailingDomain)
//	  settings.json                 0600 the settings that shaped it, for renew ([Store.LoadSettings])
//	  accounts/<ca>/                0700, <ca> from the directory URL (no network: accountDir)
//	    key.pem                     0600 account key
//	    account.json                registration (email, URI)
//	  retired/<id>-<unix>/          certificates the plan dropped (RetireCert)
//	  certs/<id>/                   0700, <id> is the plan's certificate ID
//	    current -> v000003          symlink, swapped atomically
//	    v000003/                    one issued version, never modified
//	      privkey.pem               0600
//	      cert.pem chain.pem fullchain.pem
//	      combined.pem              0600, key then cert chain (Postfix smtpd_tls_chain_files)
//	      meta.json                 names, serial, dates, ARI id, ...
//	    v000002/                    the previous version, kept for rollback
//	    next/                       a staged next key, for DANE rollover
//	      privkey.pem  next.json      (package rollover)
//	    rolled.json                 the last switch to a next key, until its old records are gone
//	    renewal.json                attempts, failures, backoff, Retry-After
//	    revoked.json                certificates of <id> revoked at the CA (revoked.go)
//	  apply/<id>.json               apply's deploy state ([Store.WriteFile])
//	<dir>-live/                     serving paths, outside <dir> ([Store.UpdateLive], live.go)
//	  default-<ip>/ sni/<name>/     fullchain.pem privkey.pem combined.pem, stable across plans
//
// # Crash safety
//
// A new certificate is written into a fresh version directory (every file
// to a temporary file, synced and renamed, then the directory synced), and only then
// does "current" switch to it with a rename of a symlink, which is atomic.
// A crash at any point leaves "current" on the complete previous version; a
// version directory that "current" does not name and that is newer than it is
// debris from an interrupted run, and the next write removes it. Readers
// follow "current" (deploy hooks get paths through it), and LoadCert checks
// that the key matches the certificate and meta.json's serial.
//
// Renewal state lives outside the version directories because it changes
// when an attempt fails and nothing is issued.
//
// # Locking
//
// Writers call [Store.Lock] first; a second process gets [ErrLocked] at once.
// Write methods fail with [ErrNotLocked] without the lock. Reads need no lock.
//
// # Who may change the state directory
//
// certplan runs as root and the state directory holds private keys and the
// plan that deploy hooks act on, so a writer ([Open]) refuses a directory
// that a user other than root and the running user could change, directly
// or through a directory above it ([CheckDir], *[UnsafeDirError]): each of
// them, up to /, must be owned by root or the running user and be neither
// group- nor world-writable, as OpenSSH's StrictModes requires of a home
// directory. A directory above it with the sticky bit, owned by root (/tmp),
// is accepted: nobody else can rename or remove the entry below it, which
// must be ours. Symbolic links on the way are resolved and both paths
// checked. A reader ([OpenReadOnly]: certplan check, perhaps run by a
// monitoring user) skips that check, since reading hands nobody anything;
// it cannot lock, so it cannot write.
//
// # Links
//
// Readers and writers alike open every path through an [os.Root] on the
// state directory, so that nothing outside it is read or written whatever
// links it contains, and open each file (the lock included) with
// O_NOFOLLOW, so that a state file replaced by a link is refused; files are
// replaced by renaming a new one over them, which replaces a link instead
// of writing through it (files.go). The one link the store follows is its
// own "current": it is read first and must name a version directory beside
// it (v + digits), or the certificate is [ErrCorrupt]; deploy hooks, which
// get paths through it, therefore stay inside the certificate's directory.
// Directories inside the state directory are resolved by os.Root, which
// follows a link only if it stays inside: after the ownership check only
// root or the running user can make one there.
//
// # Serving paths
//
// A server is configured once with paths that
// do not change when the plan does (certificate IDs do):
//
//	<live>/                           0700 root, or 0750 root:GROUP (--key-group)
//	  current -> gen-000007           swapped by rename(2): every entry switches at once
//	  gen-000007/                     one complete set, never modified once current
//	    default-<ip>/                 the default (no SNI) certificate of a server IP
//	      fullchain.pem               0644
//	      privkey.pem combined.pem    0600 root, or 0640 root:GROUP
//	    sni/<name>/                   the certificate of an SNI name; *.d is _.d
//	  gen-000006/                     the previous set, kept for a reader mid-open
//	  default-<ip> -> current/default-<ip>
//	  sni/<name> -> ../current/sni/<name>
//
// The live tree is a sibling of the state directory (default
// [LiveDirFor]: /var/lib/certplan-live), not inside it: the state
// directory stays 0700 and root's, and a server that reads its key itself
// as another user at each connection (Exim as Debian-exim) could not enter
// it. The entries are therefore copies, made by certplan with the owner
// and modes above, rather than links into certs/<id>/current/: a link
// would need the reader to traverse the state directory. A key is never
// world-readable; with a key group it is readable by that group only,
// and every directory on the way below the live directory is root:GROUP
// 0750. The directories above it must let the group through (/var/lib is
// 0755).
//
// A name whose planned certificate has no stored version that covers it
// (its first order failed) keeps the entry it had, if any. Entries of
// names and IPs that left the plan go: their stable links are removed
// after the switch. The live directory is checked like the state
// directory ([CheckDir]).
// apply updates the tree ([Store.UpdateLive]) after the orders and before
// the deploy hooks, whose reloads then find the new files. Postfix and
// Dovecot load keys as root before dropping privileges: they need no key
// group.
package store

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/certplan/certplan/model"
)

// DefaultDir is the state directory when none is given.
const DefaultDir = "/var/lib/certplan"

// File names inside a certificate version directory.
const (
	FileKey       = "privkey.pem"
	FileCert      = "cert.pem"
	FileChain     = "chain.pem"
	FileFullchain = "fullchain.pem"
	FileCombined  = "combined.pem"
	FileMeta      = "meta.json"
)

var (
	// ErrLocked means another process holds the state directory's lock.
	ErrLocked = errors.New("state directory is locked by another run")
	// ErrNotLocked means a write was attempted without holding the lock.
	ErrNotLocked = errors.New("state directory not locked by this run")
	// ErrNotFound means the account, certificate or plan does not exist.
	ErrNotFound = errors.New("not found")
	// ErrCorrupt means stored files disagree (key and certificate, or meta).
	ErrCorrupt = errors.New("inconsistent state")
)

// ErrReadOnly means a write was attempted on a store opened with
// [OpenReadOnly].
var ErrReadOnly = errors.New("state directory opened read-only")

// Store is an open state directory.
type Store struct {
	dir  string
	root *os.Root // every file operation goes through it (files.go)
	// writable: opened by Open, after CheckDir.
	writable bool

	mu   sync.Mutex
	lock *os.File

	// fault, when set (tests), is called at named points of a write; it may
	// kill the process to simulate a crash.
	fault func(point string)
}

// Open opens the state directory for a run that writes, creating it 0700
// if needed. It refuses (*[UnsafeDirError]) a directory that a user other
// than root and the running user could change ([CheckDir]), before it
// creates anything, and checks again what it created.
func Open(dir string) (*Store, error) {
	if dir == "" {
		dir = DefaultDir
	}
	if err := CheckDir(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if err := CheckDir(dir); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return &Store{dir: dir, root: root, writable: true}, nil
}

// OpenReadOnly opens an existing state directory for reading (certplan
// check, possibly as an unprivileged monitoring user): it creates nothing
// and does not check who owns the directory, because reading it cannot
// hand another user anything; it still never follows a link out of it,
// nor to a state file. [Store.Lock], and so every write, fails with
// ErrReadOnly.
func OpenReadOnly(dir string) (*Store, error) {
	if dir == "" {
		dir = DefaultDir
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return &Store{dir: dir, root: root}, nil
}

// Dir is the state directory's path.
func (s *Store) Dir() string { return s.dir }

// Lock takes the state directory's lock without waiting: if another process
// (or another Store in this process) holds it, it returns ErrLocked.
func (s *Store) Lock() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock != nil {
		return nil
	}
	if !s.writable {
		return fmt.Errorf("%s: %w", s.dir, ErrReadOnly)
	}
	f, err := s.openFile("lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("state dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%s: %w", s.dir, ErrLocked)
		}
		return fmt.Errorf("state dir lock: %w", err)
	}
	f.Truncate(0)
	f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	s.lock = f
	return nil
}

// Unlock releases the lock; it is a no-op without it.
func (s *Store) Unlock() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close() // closing releases the flock
	s.lock = nil
	return err
}

// Close releases the lock and the directory; the Store is unusable after.
func (s *Store) Close() error {
	err := s.Unlock()
	if s.root != nil {
		s.root.Close()
	}
	return err
}

func (s *Store) locked() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return ErrNotLocked
	}
	return nil
}

func (s *Store) hit(point string) {
	if s.fault != nil {
		s.fault(point)
	}
}

// ---- accounts

// Account is a stored ACME account.
type Account struct {
	// DirectoryURL is the CA's directory.
	DirectoryURL string `json:"directory_url"`
	Email        string `json:"email,omitempty"`
	// URI is the account URL (the "kid").
	URI       string    `json:"uri"`
	CreatedAt time.Time `json:"created_at"`
	// Registration is the CA's account object, as returned.
	Registration json.RawMessage `json:"registration,omitempty"`
	// KeyPEM is the account key; it is stored in key.pem, not account.json.
	KeyPEM []byte `json:"-"`
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// accountDir names the directory of a CA's account, relative to the state
// directory: host and path of the directory URL, made file-name safe. It
// needs no network: a caller can tell whether an account must be
// registered before contacting the CA.
func accountDir(directoryURL string) string {
	name := directoryURL
	if u, err := url.Parse(directoryURL); err == nil && u.Host != "" {
		name = u.Host + u.Path
	}
	name = strings.Trim(unsafeChars.ReplaceAllString(name, "_"), "_.")
	if name == "" {
		name = "default"
	}
	return path.Join("accounts", name)
}

// HasAccount reports whether the store has an account for the CA's
// directory URL (without reading or checking it).
func (s *Store) HasAccount(directoryURL string) (bool, error) {
	_, err := s.lstat(path.Join(accountDir(directoryURL), "account.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("account: %w", err)
	}
	return true, nil
}

// LoadAccount returns the account for a CA directory URL, or ErrNotFound.
func (s *Store) LoadAccount(directoryURL string) (*Account, error) {
	d := accountDir(directoryURL)
	b, err := s.readFile(path.Join(d, "account.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	var a Account
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("account %s: %w", s.path(d), err)
	}
	if a.KeyPEM, err = s.readFile(path.Join(d, "key.pem")); err != nil {
		return nil, fmt.Errorf("account key: %w", err)
	}
	return &a, nil
}

// SaveAccount writes the account (key 0600, then account.json).
func (s *Store) SaveAccount(a *Account) error {
	if err := s.locked(); err != nil {
		return err
	}
	d := accountDir(a.DirectoryURL)
	if err := s.writeFile(path.Join(d, "key.pem"), a.KeyPEM, 0o600); err != nil {
		return fmt.Errorf("account key: %w", err)
	}
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFile(path.Join(d, "account.json"), append(b, '\n'), 0o600)
}

// ---- certificates

// Meta describes one issued certificate version.
type Meta struct {
	ID     string   `json:"id"`
	Names  []string `json:"names"`
	PlanID string   `json:"plan_id,omitempty"`
	// Serial is lowercase hex.
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// ARICertID is the certificate's RFC 9773 identifier, sent as
	// "replaces" when it is renewed.
	ARICertID string `json:"ari_cert_id"`
	// KeyType such as "ec256" or "rsa2048".
	KeyType  string    `json:"key_type"`
	IssuedAt time.Time `json:"issued_at"`
	// Replaced is the ARI id of the certificate this one replaced, when the
	// order carried "replaces".
	Replaced string `json:"replaced,omitempty"`
	// SPKISHA256 is the hex SHA-256 of the public key (a DANE 3 1 1 value).
	SPKISHA256 string `json:"spki_sha256"`
	// Issuer is the issuing CA's common name; CA the directory URL; Profile
	// the ACME profile; CertURL where the CA serves the certificate.
	Issuer  string `json:"issuer,omitempty"`
	CA      string `json:"ca,omitempty"`
	Profile string `json:"profile,omitempty"`
	CertURL string `json:"cert_url,omitempty"`
	// Version is the version directory's name (set by the store).
	Version string `json:"version"`
}

// Cert is a stored certificate: the files of its current version.
type Cert struct {
	ID string
	// Dir is the stable path through the "current" symlink
	// (<state>/certs/<id>/current): give this to deploy hooks.
	Dir  string
	Meta Meta
	// PEM contents.
	KeyPEM, CertPEM, ChainPEM []byte
	Leaf                      *x509.Certificate
	Key                       crypto.Signer
}

// Path returns the path of one of the current version's files (FileKey, ...).
func (c *Cert) Path(file string) string { return filepath.Join(c.Dir, file) }

// Files is what SaveCert writes.
type Files struct {
	KeyPEM []byte
	// CertPEM is the leaf; ChainPEM the intermediates, leaf first order.
	CertPEM, ChainPEM []byte
}

func (s *Store) certDir(id string) (string, error) {
	if !ValidID(id) {
		return "", fmt.Errorf("certificate id %q: invalid", id)
	}
	return path.Join("certs", id), nil
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidID reports whether id is usable as a certificate directory name.
func ValidID(id string) bool { return idRE.MatchString(id) && !strings.Contains(id, "..") }

// ListCerts returns the ids of certificates that have a current version, sorted.
func (s *Store) ListCerts() ([]string, error) {
	ents, err := s.readDir("certs")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		// Listed even when the link is bad: LoadCert says why.
		if fi, err := s.lstat(path.Join("certs", e.Name(), "current")); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// LoadCert reads the current version of certificate id and checks it: the
// key matches the leaf and meta.json's serial is the leaf's. ErrNotFound
// when nothing was issued yet; ErrCorrupt when "current" names anything but
// a version directory beside it.
func (s *Store) LoadCert(id string) (*Cert, error) {
	d, err := s.certDir(id)
	if err != nil {
		return nil, err
	}
	version, err := s.currentVersion(d)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", id, err)
	}
	vdir := path.Join(d, version)
	c := &Cert{ID: id, Dir: s.path(path.Join(d, "current"))}
	read := func(name string) []byte {
		if err != nil {
			return nil
		}
		var b []byte
		b, err = s.readFile(path.Join(vdir, name))
		return b
	}
	c.KeyPEM, c.CertPEM, c.ChainPEM = read(FileKey), read(FileCert), read(FileChain)
	metaB := read(FileMeta)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w: %v", id, ErrCorrupt, err)
	}
	if err := json.Unmarshal(metaB, &c.Meta); err != nil {
		return nil, fmt.Errorf("certificate %s: meta: %w: %v", id, ErrCorrupt, err)
	}
	if c.Leaf, err = ParseLeaf(c.CertPEM); err != nil {
		return nil, fmt.Errorf("certificate %s: %w: %v", id, ErrCorrupt, err)
	}
	if c.Key, err = ParseKey(c.KeyPEM); err != nil {
		return nil, fmt.Errorf("certificate %s: %w: %v", id, ErrCorrupt, err)
	}
	if !publicKeyEqual(c.Key.Public(), c.Leaf.PublicKey) {
		return nil, fmt.Errorf("certificate %s: %w: key does not match certificate", id, ErrCorrupt)
	}
	if c.Meta.Serial != c.Leaf.SerialNumber.Text(16) {
		return nil, fmt.Errorf("certificate %s: %w: meta.json serial %s, certificate %s", id, ErrCorrupt, c.Meta.Serial, c.Leaf.SerialNumber.Text(16))
	}
	return c, nil
}

// SaveCert writes a new version of certificate id and makes it current.
// meta's Serial, NotBefore, NotAfter, SPKISHA256, ID and Version are filled
// from the certificate. The previous version is kept; older ones and debris
// of interrupted runs are removed.
func (s *Store) SaveCert(id string, f Files, meta Meta) (*Cert, error) {
	if err := s.locked(); err != nil {
		return nil, err
	}
	d, err := s.certDir(id)
	if err != nil {
		return nil, err
	}
	leaf, err := checkFiles(f)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", id, err)
	}
	version, err := s.newVersionDir(d)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", id, err)
	}
	meta.ID, meta.Version = id, version
	meta.fromLeaf(leaf)
	if err := s.writeVersion(path.Join(d, version), f, meta); err != nil {
		return nil, fmt.Errorf("certificate %s: %w", id, err)
	}
	s.hit("before-switch")
	if err := s.switchCurrent(d, version); err != nil {
		return nil, fmt.Errorf("certificate %s: %w", id, err)
	}
	s.hit("after-switch")
	s.prune(d, version)
	return s.LoadCert(id)
}

// checkFiles parses f's certificate and key and checks that they match.
func checkFiles(f Files) (*x509.Certificate, error) {
	leaf, err := ParseLeaf(f.CertPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParseKey(f.KeyPEM)
	if err != nil {
		return nil, err
	}
	if !publicKeyEqual(key.Public(), leaf.PublicKey) {
		return nil, errors.New("key does not match certificate")
	}
	return leaf, nil
}

// newVersionDir makes the next version directory of certificate directory
// d, after removing the debris of interrupted writes, and returns its name.
func (s *Store) newVersionDir(d string) (string, error) {
	if err := s.mkdirAll(d); err != nil {
		return "", err
	}
	if err := s.cleanDebris(d); err != nil {
		return "", err
	}
	version, err := s.nextVersion(d)
	if err != nil {
		return "", err
	}
	return version, s.root.Mkdir(path.Join(d, version), 0o700)
}

// fromLeaf fills in what meta says of the certificate itself.
func (meta *Meta) fromLeaf(leaf *x509.Certificate) {
	meta.Serial = leaf.SerialNumber.Text(16)
	meta.NotBefore = leaf.NotBefore.UTC()
	meta.NotAfter = leaf.NotAfter.UTC()
	meta.SPKISHA256 = SPKISHA256(leaf)
	if meta.Issuer == "" {
		meta.Issuer = leaf.Issuer.CommonName
	}
}

// writeVersion writes a version directory's files, each atomically, keys
// 0600, then syncs the directory.
func (s *Store) writeVersion(vdir string, f Files, meta Meta) error {
	metaB, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	certPEM := ensureNL(f.CertPEM)
	chainPEM := ensureNL(f.ChainPEM)
	keyPEM := ensureNL(f.KeyPEM)
	full := append(append([]byte{}, certPEM...), chainPEM...)
	combined := append(append([]byte{}, keyPEM...), full...)
	writes := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{FileKey, keyPEM, 0o600},
		{FileCert, certPEM, 0o644},
		{FileChain, chainPEM, 0o644},
		{FileFullchain, full, 0o644},
		{FileCombined, combined, 0o600},
		{FileMeta, append(metaB, '\n'), 0o644},
	}
	for _, w := range writes {
		if err := s.writeFile(path.Join(vdir, w.name), w.data, w.perm); err != nil {
			return err
		}
		s.hit("after-" + w.name)
	}
	return s.syncDir(vdir)
}

// switchCurrent points certificate directory d's "current" at version: a
// new symlink renamed over it (rename(2) is atomic, and replaces a bad link
// rather than following it).
func (s *Store) switchCurrent(d, version string) error {
	tmp := path.Join(d, ".current.tmp")
	s.root.Remove(tmp)
	if err := s.root.Symlink(version, tmp); err != nil {
		return err
	}
	if err := s.root.Rename(tmp, path.Join(d, "current")); err != nil {
		return err
	}
	return s.syncDir(d)
}

func ensureNL(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return append(append([]byte{}, b...), '\n')
	}
	return b
}

var versionRE = regexp.MustCompile(`^v(\d{6,})$`)

func (s *Store) versions(d string) ([]string, error) {
	ents, err := s.readDir(d)
	if err != nil {
		return nil, err
	}
	var vs []string
	for _, e := range ents {
		if e.IsDir() && versionRE.MatchString(e.Name()) {
			vs = append(vs, e.Name())
		}
	}
	sort.Slice(vs, func(i, j int) bool { return versionNum(vs[i]) < versionNum(vs[j]) })
	return vs, nil
}

func versionNum(v string) int { return seqNum(versionRE, v) }

// seqNum is the number re's one group finds in name ("v000003": 3), or -1.
func seqNum(re *regexp.Regexp, name string) int {
	m := re.FindStringSubmatch(name)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func (s *Store) nextVersion(d string) (string, error) {
	vs, err := s.versions(d)
	if err != nil {
		return "", err
	}
	n := 1
	if len(vs) > 0 {
		n = versionNum(vs[len(vs)-1]) + 1
	}
	return fmt.Sprintf("v%06d", n), nil
}

// currentVersion returns the version directory that certificate directory
// d's "current" link names. The link is read, not followed: it must name
// one of d's own version directories (v000001, no slash, no ..), or it is
// ErrCorrupt, so that neither the store nor a deploy hook reading through
// it leaves d. ErrNotFound when there is no link.
func (s *Store) currentVersion(d string) (string, error) {
	link := path.Join(d, "current")
	t, err := s.readlink(link)
	if errors.Is(err, fs.ErrNotExist) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("%w: %s is not a symbolic link to a version directory: %v", ErrCorrupt, s.path(link), err)
	}
	if !versionRE.MatchString(t) {
		return "", fmt.Errorf("%w: %s points to %q, not to a version directory beside it (such as v000001)", ErrCorrupt, s.path(link), t)
	}
	if fi, err := s.lstat(path.Join(d, t)); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%w: %s points to %s, which is missing or not a directory", ErrCorrupt, s.path(link), t)
	}
	return t, nil
}

// cleanDebris removes version directories newer than current: they are
// what an interrupted SaveCert left behind. With no current link every
// version is debris; with a bad one, none is removed (the next switch
// replaces the link).
func (s *Store) cleanDebris(d string) error {
	s.root.Remove(path.Join(d, ".current.tmp"))
	cur, err := s.currentVersion(d)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil
	}
	vs, err := s.versions(d)
	if err != nil {
		return err
	}
	for _, v := range vs {
		if versionNum(v) > versionNum(cur) {
			if err := s.root.RemoveAll(path.Join(d, v)); err != nil {
				return err
			}
		}
	}
	return nil
}

// prune keeps the current version and the one before it.
func (s *Store) prune(d, current string) {
	vs, err := s.versions(d)
	if err != nil {
		return
	}
	cur := versionNum(current)
	prev := -1
	for _, v := range vs {
		if n := versionNum(v); n < cur && n > prev {
			prev = n
		}
	}
	for _, v := range vs {
		if n := versionNum(v); n != cur && n != prev {
			s.root.RemoveAll(path.Join(d, v))
		}
	}
}

// RetireCert moves certificate id (all versions, renewal state and next
// key) to <dir>/retired/<id>-<unix time>, for a certificate the plan no
// longer has. Its files stay for inspection; ListCerts no longer lists it.
func (s *Store) RetireCert(id string, now time.Time) (string, error) {
	if err := s.locked(); err != nil {
		return "", err
	}
	d, err := s.certDir(id)
	if err != nil {
		return "", err
	}
	if _, err := s.root.Lstat(d); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", ErrNotFound
		}
		return "", err
	}
	if err := s.mkdirAll("retired"); err != nil {
		return "", err
	}
	to := path.Join("retired", fmt.Sprintf("%s-%d", id, now.Unix()))
	if err := s.root.Rename(d, to); err != nil {
		return "", fmt.Errorf("retire %s: %w", id, err)
	}
	return s.path(to), s.syncDir("certs")
}

// ---- renewal state

// RenewalState is what the renewal loop remembers about a certificate
// between runs. The store keeps it; the caller decides the policy.
type RenewalState struct {
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Failures counts consecutive failed attempts.
	Failures     int       `json:"failures"`
	LastError    string    `json:"last_error,omitempty"`
	BackoffUntil time.Time `json:"backoff_until,omitzero"`
	// RetryAfter is the earliest time the CA asked to be contacted again
	// (Retry-After of a rate limit or of ARI).
	RetryAfter time.Time `json:"retry_after,omitzero"`
	// ARI: the last suggested window and when it was fetched (RFC 9773).
	ARIWindowStart time.Time `json:"ari_window_start,omitzero"`
	ARIWindowEnd   time.Time `json:"ari_window_end,omitzero"`
	ARIFetchedAt   time.Time `json:"ari_fetched_at,omitzero"`
	ARIExplanation string    `json:"ari_explanation_url,omitempty"`
	// ReducedCoverageSince is when a renewal was first held back because it
	// would drop names (the guard), zero when not held back.
	ReducedCoverageSince time.Time `json:"reduced_coverage_since,omitzero"`
}

// LoadRenewal returns certificate id's renewal state (zero when none).
func (s *Store) LoadRenewal(id string) (RenewalState, error) {
	var st RenewalState
	d, err := s.certDir(id)
	if err != nil {
		return st, err
	}
	b, err := s.readFile(path.Join(d, "renewal.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("renewal state %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("renewal state %s: %w: %v", id, ErrCorrupt, err)
	}
	return st, nil
}

// SaveRenewal writes certificate id's renewal state.
func (s *Store) SaveRenewal(id string, st RenewalState) error {
	if err := s.locked(); err != nil {
		return err
	}
	d, err := s.certDir(id)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFile(path.Join(d, "renewal.json"), append(b, '\n'), 0o644)
}

// ---- next key (DANE)

// NextKey is a staged key: generated ahead of use so that its TLSA record
// (3 1 1 SPKISHA256) can be published for two TTLs before a certificate
// with it is deployed (RFC 7672, RFC 7671 section 8.1).
type NextKey struct {
	KeyPEM     []byte    `json:"-"`
	KeyType    string    `json:"key_type"`
	SPKISHA256 string    `json:"spki_sha256"`
	CreatedAt  time.Time `json:"created_at"`
	// PublishedAt is when certplan published the next key's TLSA records
	// itself (`rollover begin --dane-publish`; zero: it did not).
	PublishedAt time.Time `json:"published_at,omitzero"`
	// Names are the names whose TLSA records pin the key, found when the
	// rollover began: the next key's "3 1 1" record is wanted at
	// _25._tcp.<name> for each.
	Names []string `json:"names,omitempty"`
	// FirstSeenAt is when the next key's records were first seen validated
	// through the resolver and on every authoritative server of their
	// zones, all at once (zero: not yet, or not any more: a later
	// observation that misses one starts the wait again). The switch waits
	// two TTLs from it, so that no resolver still holds the old record set
	// (RFC 7671 section 8.1).
	FirstSeenAt time.Time `json:"first_seen_at,omitzero"`
	// TTL is the largest TTL, in seconds, of the TLSA record sets as the
	// authoritative servers give it.
	TTL uint32 `json:"ttl,omitempty"`
}

// RolledKey is what a rollover leaves once the next key is current: the
// old key's records are to be removed (`certplan rollover finish`).
type RolledKey struct {
	// OldSPKISHA256 and NewSPKISHA256 are the "3 1 1" values of the key
	// replaced and of the key now current.
	OldSPKISHA256 string    `json:"old_spki_sha256"`
	NewSPKISHA256 string    `json:"new_spki_sha256"`
	Names         []string  `json:"names,omitempty"`
	TTL           uint32    `json:"ttl,omitempty"`
	SwitchedAt    time.Time `json:"switched_at"`
}

// LoadNextKey returns the staged next key of certificate id, or ErrNotFound.
func (s *Store) LoadNextKey(id string) (*NextKey, error) {
	d, err := s.certDir(id)
	if err != nil {
		return nil, err
	}
	nd := path.Join(d, "next")
	b, err := s.readFile(path.Join(nd, "next.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var nk NextKey
	if err := json.Unmarshal(b, &nk); err != nil {
		return nil, fmt.Errorf("next key %s: %w: %v", id, ErrCorrupt, err)
	}
	if nk.KeyPEM, err = s.readFile(path.Join(nd, FileKey)); err != nil {
		return nil, fmt.Errorf("next key %s: %w: %v", id, ErrCorrupt, err)
	}
	return &nk, nil
}

// SaveNextKey stages a next key (key first, then next.json).
func (s *Store) SaveNextKey(id string, nk *NextKey) error {
	if err := s.locked(); err != nil {
		return err
	}
	d, err := s.certDir(id)
	if err != nil {
		return err
	}
	nd := path.Join(d, "next")
	if err := s.writeFile(path.Join(nd, FileKey), ensureNL(nk.KeyPEM), 0o600); err != nil {
		return err
	}
	b, err := json.MarshalIndent(nk, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFile(path.Join(nd, "next.json"), append(b, '\n'), 0o644)
}

// DropNextKey removes the staged next key (after it became current).
func (s *Store) DropNextKey(id string) error {
	if err := s.locked(); err != nil {
		return err
	}
	d, err := s.certDir(id)
	if err != nil {
		return err
	}
	return s.root.RemoveAll(path.Join(d, "next"))
}

// SaveRolledKey records a finished switch to the next key (rolled.json
// beside the versions), for `certplan rollover finish`.
func (s *Store) SaveRolledKey(id string, rk *RolledKey) error {
	if err := s.locked(); err != nil {
		return err
	}
	d, err := s.certDir(id)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(rk, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFile(path.Join(d, "rolled.json"), append(b, '\n'), 0o644)
}

// LoadRolledKey returns the switch recorded by SaveRolledKey, or ErrNotFound.
func (s *Store) LoadRolledKey(id string) (*RolledKey, error) {
	d, err := s.certDir(id)
	if err != nil {
		return nil, err
	}
	b, err := s.readFile(path.Join(d, "rolled.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var rk RolledKey
	if err := json.Unmarshal(b, &rk); err != nil {
		return nil, fmt.Errorf("rolled key %s: %w: %v", id, ErrCorrupt, err)
	}
	return &rk, nil
}

// DropRolledKey forgets the switch (the old key's records are gone).
func (s *Store) DropRolledKey(id string) error {
	if err := s.locked(); err != nil {
		return err
	}
	d, err := s.certDir(id)
	if err != nil {
		return err
	}
	err = s.root.Remove(path.Join(d, "rolled.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// ---- plan

// LoadPlan returns the applied plan, or ErrNotFound. Other errors start
// with "applied plan: ".
func (s *Store) LoadPlan() (*model.Plan, error) {
	b, err := s.readFile("plan.json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("applied plan: %w", err)
	}
	var p model.Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("applied plan: %w: %v", ErrCorrupt, err)
	}
	return &p, nil
}

// SavePlan records p as the applied plan.
func (s *Store) SavePlan(p *model.Plan) error {
	if err := s.locked(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFile("plan.json", append(b, '\n'), 0o644)
}

// ---- helpers

// ParseLeaf returns the first certificate of a PEM bundle.
func ParseLeaf(certPEM []byte) (*x509.Certificate, error) {
	rest := certPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no certificate in PEM")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// ParseKey parses a PEM private key (PKCS#8, EC or PKCS#1).
func ParseKey(keyPEM []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("no private key in PEM")
	}
	var k any
	var err error
	switch b.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	sg, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key: %T is not a signer", k)
	}
	return sg, nil
}

// SPKISHA256 is the hex SHA-256 of the certificate's SubjectPublicKeyInfo.
func SPKISHA256(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(h[:])
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	ab, err1 := x509.MarshalPKIXPublicKey(a)
	bb, err2 := x509.MarshalPKIXPublicKey(b)
	return err1 == nil && err2 == nil && bytes.Equal(ab, bb)
}
