package model

import "crypto/x509"

// Protocols a probe speaks.
const (
	ProtoSMTP       = "smtp"       // SMTP with STARTTLS (port 25)
	ProtoSubmission = "submission" // SMTP submission with STARTTLS (port 587)
	ProtoSMTPS      = "smtps"      // SMTP over implicit TLS (port 465)
	ProtoIMAP       = "imap"       // IMAP with STARTTLS (port 143)
	ProtoIMAPS      = "imaps"      // IMAP over implicit TLS (port 993)
	ProtoPOP3       = "pop3"       // POP3 with STLS (port 110)
	ProtoPOP3S      = "pop3s"      // POP3 over implicit TLS (port 995)
)

// Verdicts for one (name, IP, port) with or without SNI.
const (
	VerdictOK        = "ok"        // the certificate verifies for the name
	VerdictMismatch  = "mismatch"  // the certificate does not list the name
	VerdictExpired   = "expired"   // outside its validity period
	VerdictUntrusted = "untrusted" // the chain does not verify to a trusted root
	VerdictError     = "error"     // no certificate: connection, protocol or TLS failure
)

// Sender verdicts: what a sender that validates DANE (RFC 7672) or
// MTA-STS (RFC 8461) does with an MX host, in [Coverage.DANE] and
// [Coverage.MTASTS].
const (
	SenderOK      = "ok"      // it delivers: the served chain satisfies the records or policy
	SenderFail    = "fail"    // it refuses delivery to this host
	SenderWarn    = "warn"    // MTA-STS "testing": it would refuse under "enforce", and reports
	SenderNone    = "none"    // nothing to validate: no secure TLSA records, no policy
	SenderUnknown = "unknown" // DANE: whether senders trust the TLSA records is unknown
)

// Error kinds of an [Endpoint].
const (
	ErrorKindConnect         = "connect"          // connection refused, unreachable, reset before the greeting
	ErrorKindTimeout         = "timeout"          // a step did not finish before its deadline
	ErrorKindProtocol        = "protocol"         // unexpected or failing reply (4xx/5xx greeting, EHLO refused, garbage)
	ErrorKindNoSTARTTLS      = "no-starttls"      // the server does not offer STARTTLS (STLS for POP3)
	ErrorKindSTARTTLSRefused = "starttls-refused" // STARTTLS offered, but refused (SMTP 454, IMAP NO, POP3 -ERR)
	ErrorKindTLS             = "tls"              // the TLS handshake failed
	ErrorKindTooLong         = "too-long"         // a line or the whole dialogue exceeded its bound
)

// ProbeReport is the output of `certplan probe`.
type ProbeReport struct {
	Header
	// Hostname is the server's own name (--hostname), by which reports name
	// the certificate that covers it; empty when not given.
	Hostname string `json:"hostname,omitempty"`
	// Endpoints are the handshakes made, sorted by IP, port, SNI.
	Endpoints []Endpoint `json:"endpoints"`
	// Coverage are the verdicts per (name, IP, port), sorted by name, IP, port.
	Coverage []Coverage `json:"coverage"`
	Stats    ProbeStats `json:"stats"`
}

// Endpoint is one handshake: an IP, port and protocol, with or without SNI.
type Endpoint struct {
	IP       string `json:"ip"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	// SNI is the server name sent, empty for none.
	SNI string `json:"sni"`
	// Error is empty on success.
	Error string `json:"error"`
	// ErrorKind classifies Error: one of the ErrorKind* values.
	ErrorKind string `json:"error_kind,omitempty"`
	// Banner is the first line of the greeting, for the record.
	Banner     string `json:"banner,omitempty"`
	TLSVersion string `json:"tls_version,omitempty"`
	// Leaf is the end-entity certificate; Chain is every certificate the
	// server sent, leaf first.
	Leaf  *CertInfo  `json:"leaf"`
	Chain []CertInfo `json:"chain,omitempty"`
	// Trusted is true when the chain verifies (ignoring the name) to the
	// system roots or the extra --ca-file anchors, at the probe's time.
	Trusted    bool   `json:"trusted"`
	TrustError string `json:"trust_error,omitempty"`
	// IssuerTrusted is true when the chain leads to a trust anchor once
	// validity dates are set aside: it differs from Trusted only for a
	// certificate that is expired or not yet valid, and tells "expired"
	// from "expired and untrusted".
	IssuerTrusted bool  `json:"issuer_trusted"`
	DurationMS    int64 `json:"duration_ms"`
}

// CertInfo describes one certificate.
type CertInfo struct {
	SubjectCN  string   `json:"subject_cn"`
	Subject    string   `json:"subject"`
	Issuer     string   `json:"issuer"`
	Serial     string   `json:"serial"` // lowercase hex
	NotBefore  string   `json:"not_before"`
	NotAfter   string   `json:"not_after"`
	KeyType    string   `json:"key_type"` // "ECDSA", "RSA", "Ed25519"
	KeyBits    int      `json:"key_bits"`
	SPKISHA256 string   `json:"spki_sha256"` // lowercase hex
	DNSNames   []string `json:"dns_names"`
	// Cert is the certificate as received, for checks that need more than
	// this description (DANE matching); nil in a report read back.
	Cert *x509.Certificate `json:"-"`
}

// Coverage is what a client dialling Name at IP:Port sees.
type Coverage struct {
	Name     string `json:"name"`
	IP       string `json:"ip"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	// WithSNI and WithoutSNI are Verdict* values.
	WithSNI    string `json:"with_sni"`
	WithoutSNI string `json:"without_sni"`
	// Details name the certificate seen and why it fails, for people.
	WithSNIDetail    string `json:"with_sni_detail,omitempty"`
	WithoutSNIDetail string `json:"without_sni_detail,omitempty"`
	// DANE is what a DANE sender (RFC 7672) does with the chain served
	// with SNI, against the secure TLSA records at _25._tcp.<Name>: a
	// Sender* value (ok, fail, none, unknown), set on SMTP rows of MX
	// names when the probe was given an inventory; empty otherwise.
	DANE       string `json:"dane,omitempty"`
	DANEDetail string `json:"dane_detail,omitempty"`
	// MTASTS is what an MTA-STS sender (RFC 8461) does with this MX host
	// for the hosted domains whose MX it is, the worst over their
	// policies: a Sender* value (ok, fail under "enforce", warn under
	// "testing", none), set like DANE.
	MTASTS       string `json:"mta_sts,omitempty"`
	MTASTSDetail string `json:"mta_sts_detail,omitempty"`
}

// OK reports whether the name verifies both ways.
func (c *Coverage) OK() bool { return c.WithSNI == VerdictOK && c.WithoutSNI == VerdictOK }

// Refused reports whether a sender validating DANE or MTA-STS (under
// "enforce") refuses to deliver to the row's MX host.
func (c *Coverage) Refused() bool { return c.DANE == SenderFail || c.MTASTS == SenderFail }

// ProbeStats summarises a probe run.
type ProbeStats struct {
	Endpoints      int `json:"endpoints"`
	EndpointErrors int `json:"endpoint_errors"`
	Names          int `json:"names"`
	Broken         int `json:"broken"` // coverage rows not ok both ways
	// Refused counts the coverage rows whose MX host a validating sender
	// refuses (see [Coverage.Refused]).
	Refused int `json:"refused,omitempty"`
}
