package acme

// This file revokes a certificate (RFC 8555 §7.6): the request carries the
// certificate and a reason code (RFC 5280 §5.3.1) and is signed by the
// account key, which the CA accepts from the account that ordered it.

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	legoacme "github.com/go-acme/lego/v5/acme"
)

// Revocation reasons an ACME client may give (RFC 5280 §5.3.1; Let's
// Encrypt accepts these five from subscribers).
var revocationReasons = map[string]uint{
	"unspecified":          legoacme.CRLReasonUnspecified,
	"keyCompromise":        legoacme.CRLReasonKeyCompromise,
	"affiliationChanged":   legoacme.CRLReasonAffiliationChanged,
	"superseded":           legoacme.CRLReasonSuperseded,
	"cessationOfOperation": legoacme.CRLReasonCessationOfOperation,
}

// RevocationReasons are the names ParseRevocationReason accepts, sorted.
func RevocationReasons() []string {
	var out []string
	for k := range revocationReasons {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ParseRevocationReason maps a reason's RFC 5280 name (case-insensitive,
// such as keyCompromise) to its code.
func ParseRevocationReason(s string) (uint, error) {
	for k, v := range revocationReasons {
		if strings.EqualFold(k, s) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("revocation reason %q: want one of %s", s, strings.Join(RevocationReasons(), ", "))
}

// ErrAlreadyRevoked is the CA's answer for a certificate it has revoked
// already (an earlier run that stopped before recording it).
var ErrAlreadyRevoked = errors.New("the CA has revoked this certificate already")

// ErrNoAccount means the store has no account for the CA: the revocation
// could not be signed by the account that ordered the certificate.
var ErrNoAccount = errors.New("no ACME account for this CA in the state directory")

// Revoke asks the CA to revoke leaf with reason (a code from
// ParseRevocationReason), signed by the store's account for the CA. It
// returns ErrNoAccount without an account, ErrAlreadyRevoked when the CA
// says so, and the CA's problem otherwise.
func (c *Client) Revoke(ctx context.Context, leaf *x509.Certificate, reason uint) error {
	if !c.HasAccount() {
		return fmt.Errorf("acme: revoke: %w (%s)", ErrNoAccount, c.dirURL)
	}
	msg := legoacme.RevokeCertMessage{
		Certificate: base64.RawURLEncoding.EncodeToString(leaf.Raw),
		Reason:      &reason,
	}
	err := c.core.Certificates.Revoke(ctx, msg)
	var pd *legoacme.ProblemDetails
	switch {
	case err == nil:
		c.log.Info("certificate revoked", "serial", fmt.Sprintf("%x", leaf.SerialNumber), "reason", reason)
		return nil
	case errors.As(err, &pd) && pd.Type == legoacme.AlreadyRevokedErrorType:
		return fmt.Errorf("acme: revoke: %w", ErrAlreadyRevoked)
	}
	return fmt.Errorf("acme: revoke: %w", err)
}
