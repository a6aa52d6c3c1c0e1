#!/usr/bin/env bash
# certplan deploy hook for Exim 4 (4.80 or later, for $tls_in_sni): installs
# one certificate as the default certificate of the IPs it is planned for,
# and as the SNI certificate of its names.
#
# Exim reads its certificate when a client starts TLS, expanding
# tls_certificate again once the client's SNI is known: no reload is needed,
# the next connection gets the new files. The hook keeps, under EXIM_CERT_DIR:
#   <id>.pem                 key, then full chain (one file: renamed at once,
#                            so no connection ever sees a new certificate
#                            with an old key)
#   default-<ip>.pem         the default certificate of each server IP
#   sni/<name>.pem           symlink to ../<id>.pem, one per name
#   sni/_.<domain>.pem       for a wildcard name *.<domain>
#
# One-time Exim configuration (main section; Debian: a file in
# /etc/exim4/conf.d/main/ with split configuration, or exim4.conf.template):
#
#   CERTPLAN_DIR = /etc/exim4/certplan
#   # SNI as a file name: only a lower-case DNS name, anything else matches no file.
#   CERTPLAN_SNI = ${if match{${lc:$tls_in_sni}}{\N^[a-z0-9][a-z0-9.-]*$\N}{${lc:$tls_in_sni}}{-}}
#   CERTPLAN_WILD = _.${sg{CERTPLAN_SNI}{\N^[^.]+\.\N}{}}
#   tls_certificate = ${if exists{CERTPLAN_DIR/sni/CERTPLAN_SNI.pem}\
#                          {CERTPLAN_DIR/sni/CERTPLAN_SNI.pem}\
#                          {${if exists{CERTPLAN_DIR/sni/CERTPLAN_WILD.pem}\
#                                {CERTPLAN_DIR/sni/CERTPLAN_WILD.pem}\
#                                {CERTPLAN_DIR/default-$received_ip_address.pem}}}}
#   # tls_privatekey unset: the key is in the same file as the certificate.
#
# $received_ip_address is the server IP the client connected to, so each IP
# presents its own default certificate to clients that send no SNI.
#
# certplan runs it once per new, renewed or retired certificate, with:
#   CERTPLAN_CERT_DIR     directory with cert.pem, chain.pem, fullchain.pem,
#                         privkey.pem and combined.pem (key, then full chain)
#   CERTPLAN_CERT_ID      the certificate's id (letters, digits, . _ -)
#   CERTPLAN_NAMES        its DNS names, space-separated (A-labels)
#   CERTPLAN_DEFAULT_IPS  the IPs it is the default certificate for,
#                         space-separated; empty for an SNI-only certificate
#   CERTPLAN_CHANGE       new, changed, renewed, or retired
#
# Names the certificate does not list are not the hook's: an sni/ file it
# did not install (a link to another certificate, an admin's own file) is
# never removed or changed, so such a name keeps being served as before
# (certplan's plan says "not managed by certplan: left as served today").
# Only the links to this certificate's own file are removed.
#
# Retired (the plan no longer has the certificate): the sni/ links to its
# file go (a link for one of its names that points at another certificate
# stays), then its file; the next connection gets the default certificate
# for those names. The default-<ip>.pem files stay: tls_certificate names
# them, and the IP's new default certificate, deployed after the retirement
# in the same run, overwrites them.
#
# Settings (environment):
#   EXIM_CERT_DIR  where the files go (/etc/exim4/certplan; cPanel: /etc/exim_certplan)
#   EXIM_GROUP     group that Exim reads the files as (Debian-exim; cPanel: mail);
#                  files are root:EXIM_GROUP 0640
set -euo pipefail
umask 027

die() { echo "exim hook: error: $*" >&2; exit 1; }
warn() { echo "exim hook: warning: $*" >&2; }

: "${CERTPLAN_CERT_ID:?CERTPLAN_CERT_ID is not set (run me from certplan --deploy-hook)}"
CERTPLAN_CHANGE="${CERTPLAN_CHANGE-}"
CERTPLAN_DEFAULT_IPS="${CERTPLAN_DEFAULT_IPS-}"
EXIM_CERT_DIR="${EXIM_CERT_DIR:-/etc/exim4/certplan}"
EXIM_GROUP="${EXIM_GROUP:-Debian-exim}"

id="$CERTPLAN_CERT_ID"
[[ "$id" =~ ^[A-Za-z0-9._-]+$ && "$id" != .* ]] || die "certificate id \"$id\" is not a safe file name"

if [[ "$CERTPLAN_CHANGE" == retired ]]; then
	# Only what points at this certificate's file goes. Exim reads the
	# files per connection: nothing to reload.
	removed=0
	for link in "$EXIM_CERT_DIR"/sni/*.pem; do
		[[ -L "$link" && "$(readlink "$link")" == "../$id.pem" ]] || continue
		rm -f "$link"
		removed=$((removed + 1))
	done
	rm -f "$EXIM_CERT_DIR/$id.pem"
	kept=
	if [[ -n "$CERTPLAN_DEFAULT_IPS" ]]; then
		kept="; kept default-<ip>.pem for $CERTPLAN_DEFAULT_IPS (tls_certificate names them; the next default certificate of an IP replaces its file)"
	fi
	echo "exim hook: retired $id: removed $removed sni links$kept"
	exit 0
fi

: "${CERTPLAN_CERT_DIR:?CERTPLAN_CERT_DIR is not set (run me from certplan --deploy-hook)}"
: "${CERTPLAN_NAMES:?CERTPLAN_NAMES is not set}"
combined="$CERTPLAN_CERT_DIR/combined.pem"
[[ -r "$combined" ]] || die "$combined: not readable"

# --- validate --------------------------------------------------------------
key_pub=$(openssl pkey -in "$combined" -pubout 2>/dev/null) || die "$combined: no private key"
cert_pub=$(openssl x509 -in "$combined" -noout -pubkey 2>/dev/null) || die "$combined: no certificate"
[[ "$key_pub" == "$cert_pub" ]] || die "$combined: the private key does not match the certificate"
openssl x509 -in "$combined" -noout -checkend 0 >/dev/null || die "$combined: the certificate has expired"

# The certificate's DNS names (subjectAltName), lower-case.
declare -A san=()
while IFS= read -r entry; do
	entry="${entry#"${entry%%[![:space:]]*}"}"
	entry="${entry,,}"
	[[ "$entry" == dns:* ]] && san["${entry#dns:}"]=1
done < <(openssl x509 -in "$combined" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr ',' '\n')

files=() # sni/ file names, one per name
for name in $CERTPLAN_NAMES; do
	name="${name,,}"
	[[ "$name" =~ ^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$ ]] ||
		die "\"$name\" is not a DNS name in A-label form"
	# The certificate must list every name it is deployed for, or a
	# wildcard over it.
	[[ -n "${san[$name]-}" || ("$name" == *.*.* && -n "${san[*.${name#*.}]-}") ]] || die "$combined does not cover $name"
	if [[ "$name" == \*.* ]]; then
		files+=("_.${name#\*.}.pem")
	else
		files+=("$name.pem")
	fi
done
((${#files[@]} > 0)) || die "CERTPLAN_NAMES is empty"
for ip in $CERTPLAN_DEFAULT_IPS; do
	[[ "$ip" =~ ^[0-9A-Fa-f:.]+$ ]] || die "\"$ip\" is not an IP address"
done

group_ok=1
getent group "$EXIM_GROUP" >/dev/null || {
	warn "group $EXIM_GROUP does not exist: files stay root-only (set EXIM_GROUP)"
	group_ok=0
}

# --- stage, then rename ----------------------------------------------------
mkdir -p "$EXIM_CERT_DIR/sni"
staged=()
cleanup() {
	local f
	for f in "${staged[@]}"; do rm -f "$f"; done
	return 0
}
trap cleanup EXIT

install_file() { # install_file SRC DEST: atomic copy, root:EXIM_GROUP 0640
	local tmp
	tmp=$(mktemp "$(dirname "$2")/.$(basename "$2").XXXXXX")
	staged+=("$tmp")
	cat "$1" >"$tmp"
	chmod 640 "$tmp"
	((group_ok)) && chgrp "$EXIM_GROUP" "$tmp"
	sync "$tmp" 2>/dev/null || true
	mv -f "$tmp" "$2"
}

install_link() { # install_link TARGET LINK: atomic symlink replacement
	local tmp
	tmp=$(mktemp -u "$(dirname "$2")/.$(basename "$2").XXXXXX")
	staged+=("$tmp")
	ln -s "$1" "$tmp"
	mv -Tf "$tmp" "$2"
}

install_file "$combined" "$EXIM_CERT_DIR/$id.pem"
for f in "${files[@]}"; do
	install_link "../$id.pem" "$EXIM_CERT_DIR/sni/$f"
done
for ip in $CERTPLAN_DEFAULT_IPS; do
	install_file "$combined" "$EXIM_CERT_DIR/default-$ip.pem"
done
staged=()

# Names this certificate no longer has keep their links to its file: they
# would present a certificate that does not list them. Remove them.
for link in "$EXIM_CERT_DIR"/sni/*.pem; do
	[[ -L "$link" && "$(readlink "$link")" == "../$id.pem" ]] || continue
	keep=0
	for f in "${files[@]}"; do
		[[ "$(basename "$link")" == "$f" ]] && keep=1
	done
	((keep)) || rm -f "$link"
done

((group_ok)) && chgrp "$EXIM_GROUP" "$EXIM_CERT_DIR" "$EXIM_CERT_DIR/sni"
chmod 750 "$EXIM_CERT_DIR" "$EXIM_CERT_DIR/sni"
echo "exim hook: installed $id for $CERTPLAN_NAMES${CERTPLAN_DEFAULT_IPS:+ (default on $CERTPLAN_DEFAULT_IPS)}"
