package cli

// This file feeds the planner's DANE and MTA-STS gates (planner.KeyState,
// planner.GateError): the keys the state directory holds, the CA's roots
// from the system's bundle, and the refusal as "error:" and "hint:" lines.

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"slices"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/planner"
	"github.com/certplan/certplan/store"
)

// caBundle is the system's PEM bundle of trusted roots (Debian's
// ca-certificates). x509.SystemCertPool cannot be iterated, so the roots
// are read from it. A var for tests.
var caBundle = "/etc/ssl/certs/ca-certificates.crt"

// caRootNames are the roots each CA (by CAA identifier) issues under.
var caRootNames = map[string][]string{
	"letsencrypt.org": {"ISRG Root X1", "ISRG Root X2"},
}

// daneKeys is the planner's KeyState: each stored certificate's current
// key and staged next key (st may be nil: none known; prev's IDs are
// asked too, for next keys staged before a first issuance), and the
// roots of the CA with CAA identifier ca.
func daneKeys(st *store.Store, prev *model.Plan, ca string) planner.KeyState {
	ks := planner.KeyState{Current: map[string]string{}, Next: map[string]string{}, CARoots: caRoots(ca)}
	if st == nil {
		return ks
	}
	ks.Known = true          // a certificate missing from Current has no key yet
	ids, _ := st.ListCerts() // unreadable: no key known, the gates refuse what they cannot check
	if prev != nil {
		for _, c := range prev.Certificates {
			ids = append(ids, c.ID)
		}
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if c, err := st.LoadCert(id); err == nil && c.Meta.SPKISHA256 != "" {
			ks.Current[id] = c.Meta.SPKISHA256
		}
		if nk, err := st.LoadNextKey(id); err == nil && nk.SPKISHA256 != "" {
			ks.Next[id] = nk.SPKISHA256
		}
	}
	return ks
}

// caRoots returns the roots of the CA with CAA identifier ca found in
// caBundle by subject common name; nil when the CA's roots are not known
// or the bundle is unreadable (the warning then says "pin the CA's root").
func caRoots(ca string) []*x509.Certificate {
	want := caRootNames[ca]
	if len(want) == 0 {
		return nil
	}
	b, err := os.ReadFile(caBundle)
	if err != nil {
		return nil
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err == nil && slices.Contains(want, c.Subject.CommonName) && c.IsCA {
			out = append(out, c)
		}
	}
	return out
}

// planError words a planner error: a refused plan (*planner.GateError)
// with its hints, exit 1; anything else is a bad policy or inventory.
func planError(err error) error {
	var ge *planner.GateError
	if errors.As(err, &ge) {
		return withHint(ge, ge.Hints()...)
	}
	return withCode(ExitUsage, err, "server IPs come from --server-ip or the inventory; names for --hostname and --include are full host names")
}
