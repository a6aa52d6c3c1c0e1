#!/usr/bin/env bash
# certplan deploy hook for cPanel & WHM: installs a default certificate as
# the service certificate of Exim and Dovecot through the WHM API, and
# restarts them. That is all certplan manages on cPanel.
#
# cPanel serves mail with one service certificate per service for every IP
# of the server (what clients without SNI get), plus per-domain "Mail SNI"
# certificates that AutoSSL issues and renews for each website (always on
# since cPanel 60). So the plan must have one default certificate for all
# the server's IPs (certplan --default-cert shared; issue and renew refuse a
# per-ip plan for several IPs with --source cpanel, as each IP's
# certificate would replace the last); the names beyond the CA's limit stay
# with AutoSSL's Mail SNI certificates, which this hook leaves alone. A certificate that is no default certificate
# (CERTPLAN_DEFAULT_IPS empty) is not installed: the hook says so and exits
# 0.
#
# For a default certificate, per service in CPANEL_SERVICES:
#   whmapi1 --output=json install_service_ssl_certificate service=exim \
#       crt=<cert.pem> key=<privkey.pem> cabundle=<chain.pem>   (URI-encoded)
#   whmapi1 --output=json restartservice service=exim
# and the same for dovecot. cPanel's documentation asks for URI-encoded
# values and for the service to be restarted to present the new
# certificate; a call whose metadata.result is not 1 fails the hook, and
# nothing is restarted for a service whose install failed.
#
# The private key travels on whmapi1's command line, as cPanel documents the
# call: while it runs, /proc/<pid>/cmdline shows it to local users unless
# /proc is mounted with hidepid=2 (CloudLinux and hardened cPanel servers do
# this); on a server where customers have shells, make sure it is.
#
# Tested against a stand-in whmapi1 (internal/realmail/testdata/whmapi1)
# that checks these calls and their values as cPanel's documentation
# describes them; no real cPanel server was available to test on.
#
# certplan runs it once per new, renewed or retired certificate, with:
#   CERTPLAN_CERT_DIR     directory with cert.pem, chain.pem, fullchain.pem,
#                         privkey.pem and combined.pem
#   CERTPLAN_CERT_ID      the certificate's id
#   CERTPLAN_NAMES        its DNS names, space-separated (A-labels)
#   CERTPLAN_DEFAULT_IPS  the IPs it is the default certificate for,
#                         space-separated; empty for an SNI-only certificate
#   CERTPLAN_CHANGE       new, changed, renewed, or retired
#
# Retired: nothing is done (cPanel has one service certificate per service,
# never none; the next default certificate replaces it), and the hook exits
# 0.
#
# Settings (environment):
#   WHMAPI1           the whmapi1 command (/usr/local/cpanel/bin/whmapi1)
#   CPANEL_SERVICES   services for a default certificate ("exim dovecot"; also
#                     possible: cpanel, ftp)
#
# Undo: WHM >> Service Configuration >> Manage Service SSL Certificates
# ("Reset Certificate"), or whmapi1 reset_service_ssl_certificate
# service=exim (and dovecot), lets cPanel manage them again.
set -euo pipefail
umask 077

die() { echo "cpanel hook: error: $*" >&2; exit 1; }
warn() { echo "cpanel hook: warning: $*" >&2; }

if [[ "${CERTPLAN_CHANGE-}" == retired ]]; then
	echo "cpanel hook: retired ${CERTPLAN_CERT_ID-}: nothing to do on cPanel (a service certificate stays until the next default certificate replaces it)"
	exit 0
fi

: "${CERTPLAN_CERT_DIR:?CERTPLAN_CERT_DIR is not set (run me from certplan --deploy-hook)}"
: "${CERTPLAN_CERT_ID:?CERTPLAN_CERT_ID is not set}"
: "${CERTPLAN_NAMES:?CERTPLAN_NAMES is not set}"
CERTPLAN_DEFAULT_IPS="${CERTPLAN_DEFAULT_IPS-}"
if [[ -z "$CERTPLAN_DEFAULT_IPS" ]]; then
	echo "cpanel hook: $CERTPLAN_CERT_ID is no default certificate: not installed (on cPanel, names beyond the service certificate are served by AutoSSL's Mail SNI certificates)"
	exit 0
fi
WHMAPI1="${WHMAPI1:-/usr/local/cpanel/bin/whmapi1}"
CPANEL_SERVICES="${CPANEL_SERVICES:-exim dovecot}"

cert="$CERTPLAN_CERT_DIR/cert.pem"
chain="$CERTPLAN_CERT_DIR/chain.pem"
key="$CERTPLAN_CERT_DIR/privkey.pem"
for f in "$cert" "$chain" "$key"; do
	[[ -r "$f" ]] || die "$f: not readable"
done
[[ -x "$WHMAPI1" ]] || die "$WHMAPI1: not found (is this a cPanel server? set WHMAPI1)"

# --- validate before touching the server ------------------------------------
key_pub=$(openssl pkey -in "$key" -pubout 2>/dev/null) || die "$key: no private key"
cert_pub=$(openssl x509 -in "$cert" -noout -pubkey 2>/dev/null) || die "$cert: no certificate"
[[ "$key_pub" == "$cert_pub" ]] || die "$key does not match $cert"
openssl x509 -in "$cert" -noout -checkend 0 >/dev/null || die "$cert: the certificate has expired"

# The WHM API wants its values URI-encoded (PEM has newlines, "+", "/",
# "="): every byte as %XX, which is valid percent-encoding and needs no
# per-character shell loop.
uri_encode() {
	od -An -v -tx1 <"$1" | tr -d ' \n' | sed 's/../%&/g'
}

# whm CALL ARGS...: run one WHM API 1 call, fail unless metadata.result is 1.
whm() {
	local out
	out=$("$WHMAPI1" --output=json "$@" 2>&1) || die "whmapi1 $1 failed: $out"
	if ! grep -q '"result":1' <<<"${out//[[:space:]]/}"; then
		die "whmapi1 $1: $(grep -o '"reason":"[^"]*"' <<<"$out" | head -n1)"
	fi
}

crt_enc=$(uri_encode "$cert")
key_enc=$(uri_encode "$key")
cab_enc=$(uri_encode "$chain")

for service in $CPANEL_SERVICES; do
	[[ "$service" =~ ^[a-z]+$ ]] || die "CPANEL_SERVICES: \"$service\" is not a service name"
	whm install_service_ssl_certificate "service=$service" \
		"crt=$crt_enc" "key=$key_enc" "cabundle=$cab_enc"
	whm restartservice "service=$service"
	echo "cpanel hook: $CERTPLAN_CERT_ID is now the $service service certificate ($service restarted)"
done

echo "cpanel hook: $CERTPLAN_CERT_ID installed as the service certificate of: $CPANEL_SERVICES"
