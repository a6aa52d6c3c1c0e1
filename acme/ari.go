package acme

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/go-acme/lego/v5/acme/api"
)

// ErrNoARI means the CA offers no renewal information (RFC 9773), or sent
// an invalid window: the planner then renews when a third of the lifetime
// is left (planner.RenewAt's ReasonThirdLeft).
var ErrNoARI = errors.New("the CA offers no renewal information")

// RenewalInfo is the CA's suggested renewal window for a certificate
// (RFC 9773 section 4.2).
type RenewalInfo struct {
	// CertID is the certificate's ARI identifier (base64url AKI "."
	// base64url serial), what an order's "replaces" carries.
	CertID string
	// Start and End bound the window in which the CA suggests renewing.
	Start, End time.Time
	// ExplanationURL, when set, should be shown to the operator.
	ExplanationURL string
	// RetryAfter is how long to wait before asking again.
	RetryAfter time.Duration
}

// RenewalInfo asks the CA when to renew leaf. It returns ErrNoARI when the
// CA does not support ARI.
func (c *Client) RenewalInfo(ctx context.Context, leaf *x509.Certificate) (*RenewalInfo, error) {
	id, err := api.MakeARICertID(leaf)
	if err != nil {
		return nil, fmt.Errorf("ari: %w", err)
	}
	info, err := c.core.Certificates.GetRenewalInfo(ctx, id)
	if errors.Is(err, api.ErrNoARI) {
		return nil, ErrNoARI
	}
	if err != nil {
		return nil, fmt.Errorf("ari %s: %w", id, err)
	}
	return &RenewalInfo{
		CertID:         id,
		Start:          info.SuggestedWindow.Start,
		End:            info.SuggestedWindow.End,
		ExplanationURL: info.ExplanationURL,
		RetryAfter:     info.RetryAfter,
	}, nil
}
