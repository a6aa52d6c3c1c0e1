#!/usr/bin/env bash
# certplan deploy hook for cPanel & WHM: installs one certificate through
# the WHM API, as the service certificate of Exim and Dovecot when it is a
# default certificate, and on the website of each of its names otherwise
# (cPanel's Mail SNI then presents it to mail clients that send SNI).
#
# Run as root on the cPanel server; cPanel's own AutoSSL should be told to
# leave these names alone, or it replaces the certificates later.
#
#   Default certificate (CERTPLAN_DEFAULT_IPS not empty):
#     whmapi1 install_service_ssl_certificate service=exim crt=... key=... cabundle=...
#     whmapi1 install_service_ssl_certificate service=dovecot ...
#   (cPanel has one service certificate per service, not one per IP: with
#   several server IPs, plan one default certificate for all of them.)
#
#   SNI certificate:
#     whmapi1 installssl domain=<name> crt=... key=... cab=...
#     whmapi1 rebuild_mail_sni_config reload_dovecot=1
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
# Retired (the plan no longer has the certificate): nothing is done, and the
# hook exits 0. On cPanel a certificate belongs to a website: when a domain
# leaves the server, removing its account removes its websites, their
# certificates and their Mail SNI entries; a name that moved to another
# certificate got it installed on its website by that certificate's deploy,
# which replaced the old one. A default certificate stays the service
# certificate until the next default replaces it (cPanel has one per
# service, and never none).
#
# Settings (environment):
#   WHMAPI1           the whmapi1 command (/usr/local/cpanel/bin/whmapi1)
#   CPANEL_SERVICES   services for a default certificate ("exim dovecot"; also
#                     possible: cpanel, ftp)
set -euo pipefail
umask 077

die() { echo "cpanel hook: error: $*" >&2; exit 1; }
warn() { echo "cpanel hook: warning: $*" >&2; }

if [[ "${CERTPLAN_CHANGE-}" == retired ]]; then
	echo "cpanel hook: retired ${CERTPLAN_CERT_ID-}: nothing to do on cPanel (a website's certificate goes with the website, or is replaced by the next one installed for it)"
	exit 0
fi

: "${CERTPLAN_CERT_DIR:?CERTPLAN_CERT_DIR is not set (run me from certplan --deploy-hook)}"
: "${CERTPLAN_CERT_ID:?CERTPLAN_CERT_ID is not set}"
: "${CERTPLAN_NAMES:?CERTPLAN_NAMES is not set}"
CERTPLAN_DEFAULT_IPS="${CERTPLAN_DEFAULT_IPS-}"
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

# The WHM API wants its values URI-encoded (PEM has newlines, "+", "/", "=").
uri_encode() {
	local s c i out=
	s=$(cat "$1")
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case "$c" in
		[A-Za-z0-9.~_-]) out+="$c" ;;
		*) printf -v c '%%%02X' "'$c"; out+="$c" ;;
		esac
	done
	printf '%s' "$out"
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

if [[ -n "$CERTPLAN_DEFAULT_IPS" ]]; then
	for service in $CPANEL_SERVICES; do
		whm install_service_ssl_certificate "service=$service" \
			"crt=$crt_enc" "key=$key_enc" "cabundle=$cab_enc"
		echo "cpanel hook: $CERTPLAN_CERT_ID is now the $service service certificate"
	done
fi

installed=0
for name in $CERTPLAN_NAMES; do
	name="${name,,}"
	[[ "$name" =~ ^[a-z0-9.-]+$ ]] || { warn "skipping $name: installssl wants a domain on the server"; continue; }
	# installssl puts the certificate on the website that serves the name;
	# Mail SNI follows the website's certificate.
	if "$WHMAPI1" --output=json installssl "domain=$name" \
		"crt=$crt_enc" "key=$key_enc" "cab=$cab_enc" 2>&1 | tr -d '[:space:]' | grep -q '"result":1'; then
		installed=$((installed + 1))
	else
		warn "installssl domain=$name failed (no website for this name on this server?)"
	fi
done
if ((installed > 0)); then
	whm rebuild_mail_sni_config reload_dovecot=1
fi
# Exim reads the Mail SNI files per connection; nothing to reload.
echo "cpanel hook: installed $CERTPLAN_CERT_ID on $installed website(s), Mail SNI rebuilt"
