#!/usr/bin/env bash
# certplan deploy hook for Dovecot 2.3: installs one certificate as the
# default certificate of the IPs it is planned for, and in `local_name`
# blocks for its names (SNI), then reloads Dovecot.
#
# Use:  certplan issue --deploy-hook /etc/certplan/hooks/dovecot.sh ...
#
# certplan runs it once per new, renewed or retired certificate, with:
#   CERTPLAN_CERT_DIR     directory with cert.pem, chain.pem, fullchain.pem,
#                         privkey.pem and combined.pem
#   CERTPLAN_CERT_ID      the certificate's id (letters, digits, . _ -)
#   CERTPLAN_NAMES        its DNS names, space-separated (A-labels)
#   CERTPLAN_DEFAULT_IPS  the IPs it is the default certificate for,
#                         space-separated; empty for an SNI-only certificate
#   CERTPLAN_CHANGE       new, changed, renewed, or retired
#
# Retired (the plan no longer has the certificate): its local_name blocks go
# (a block for one of its names that another certificate wrote stays),
# Dovecot reloads, and its files go. The default-<ip> files stay:
# dovecot.conf names them, and the IP's new default certificate, deployed
# after the retirement in the same run, overwrites them.
#
# Settings (environment):
#   DOVECOT_CONFIG    Dovecot's main configuration file (/etc/dovecot/dovecot.conf)
#   DOVECOT_CERT_DIR  where the hook keeps certificates and keys (/etc/dovecot/certplan)
#   DOVECOT_SNI_CONF  the file of local_name blocks this hook maintains
#                     (/etc/dovecot/conf.d/99-certplan-sni.conf; Debian's
#                     dovecot.conf includes conf.d/*.conf)
#   DOVECOT_RELOAD    1 (default) to run `doveadm reload`, 0 not to
#
# One-time Dovecot configuration this hook expects (it does not edit it):
#   ssl_cert = </etc/dovecot/certplan/default-192.0.2.10.crt
#   ssl_key = </etc/dovecot/certplan/default-192.0.2.10.key
#   !include_try /etc/dovecot/conf.d/99-certplan-sni.conf   (unless conf.d/*.conf is included)
# With several server IPs, a `local 192.0.2.11 { ssl_cert = ... }` block per
# IP does the same, but Dovecot 2.3 then refuses connections that match both
# a `local` and a `local_name` block ("Conflict in setting ssl_cert found
# from filter"): keep one default certificate, or nest the local_name blocks
# inside each `local` block.
#
# Safety: every file is written under a temporary name and renamed into
# place; the key is checked against the certificate and its dates, and the
# configuration with doveconf, before anything is replaced; the
# configuration is checked again after the change, and the previous SNI file
# restored when that check fails.
set -euo pipefail
umask 077

die() { echo "dovecot hook: error: $*" >&2; exit 1; }
warn() { echo "dovecot hook: warning: $*" >&2; }

# doveconf_problem prints what doveconf said was wrong, on one line: it
# prints its version banner ("# ..." lines) after the error, and certplan
# reports a failed hook's last line of output.
doveconf_problem() {
	local p
	p=$(grep -v '^#' <<<"$1" | tr -s '\n' ' ')
	echo "${p% }"
}

: "${CERTPLAN_CERT_ID:?CERTPLAN_CERT_ID is not set (run me from certplan --deploy-hook)}"
CERTPLAN_CHANGE="${CERTPLAN_CHANGE-}"
CERTPLAN_DEFAULT_IPS="${CERTPLAN_DEFAULT_IPS-}"
DOVECOT_CONFIG="${DOVECOT_CONFIG:-/etc/dovecot/dovecot.conf}"
DOVECOT_CERT_DIR="${DOVECOT_CERT_DIR:-/etc/dovecot/certplan}"
DOVECOT_SNI_CONF="${DOVECOT_SNI_CONF:-/etc/dovecot/conf.d/99-certplan-sni.conf}"
DOVECOT_RELOAD="${DOVECOT_RELOAD:-1}"
retire=0
[[ "$CERTPLAN_CHANGE" == retired ]] && retire=1

id="$CERTPLAN_CERT_ID"
[[ "$id" =~ ^[A-Za-z0-9._-]+$ && "$id" != .* ]] || die "certificate id \"$id\" is not a safe file name"
for ip in $CERTPLAN_DEFAULT_IPS; do
	[[ "$ip" =~ ^[0-9A-Fa-f:.]+$ ]] || die "\"$ip\" is not an IP address"
done
cert_file="$DOVECOT_CERT_DIR/$id.crt"
key_file="$DOVECOT_CERT_DIR/$id.key"
names=()

if ((!retire)); then
	: "${CERTPLAN_CERT_DIR:?CERTPLAN_CERT_DIR is not set (run me from certplan --deploy-hook)}"
	: "${CERTPLAN_NAMES:?CERTPLAN_NAMES is not set}"
	fullchain="$CERTPLAN_CERT_DIR/fullchain.pem"
	privkey="$CERTPLAN_CERT_DIR/privkey.pem"
	[[ -r "$fullchain" ]] || die "$fullchain: not readable"
	[[ -r "$privkey" ]] || die "$privkey: not readable"

	# --- validate --------------------------------------------------------------
	key_pub=$(openssl pkey -in "$privkey" -pubout 2>/dev/null) || die "$privkey: no private key"
	cert_pub=$(openssl x509 -in "$fullchain" -noout -pubkey 2>/dev/null) || die "$fullchain: no certificate"
	[[ "$key_pub" == "$cert_pub" ]] || die "$privkey does not match the certificate in $fullchain"
	openssl x509 -in "$fullchain" -noout -checkend 0 >/dev/null || die "$fullchain: the certificate has expired"
	now=$(date +%s)
	not_before=$(date -d "$(openssl x509 -in "$fullchain" -noout -startdate | cut -d= -f2)" +%s)
	((not_before <= now + 300)) || die "$fullchain: the certificate is not valid yet"

	# The certificate's DNS names (subjectAltName), lower-case.
	declare -A san=()
	while IFS= read -r entry; do
		entry="${entry#"${entry%%[![:space:]]*}"}"
		entry="${entry,,}"
		[[ "$entry" == dns:* ]] && san["${entry#dns:}"]=1
	done < <(openssl x509 -in "$fullchain" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr ',' '\n')

	names=()
	for name in $CERTPLAN_NAMES; do
		name="${name,,}"
		[[ "$name" =~ ^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$ ]] ||
			die "\"$name\" is not a DNS name in A-label form"
		# The certificate must list every name it is deployed for, or a
		# wildcard over it.
		[[ -n "${san[$name]-}" || ("$name" == *.*.* && -n "${san[*.${name#*.}]-}") ]] || die "$fullchain does not cover $name"
		names+=("$name") # Dovecot 2.3 matches "*.example.com" in local_name itself
	done
	((${#names[@]} > 0)) || die "CERTPLAN_NAMES is empty"
fi

# The configuration must load before the change: otherwise the reload
# below could not happen, and the new files would wait for whoever fixes it.
if ! conf=$(doveconf -c "$DOVECOT_CONFIG" -n 2>&1); then
	die "doveconf rejects $DOVECOT_CONFIG before any change (nothing changed): $(doveconf_problem "$conf")"
fi

# --- stage, then rename ----------------------------------------------------
mkdir -p "$DOVECOT_CERT_DIR" "$(dirname "$DOVECOT_SNI_CONF")"
chmod 700 "$DOVECOT_CERT_DIR" # Dovecot's master reads the files as root
staged=()
targets=()
backup=
cleanup() {
	local f
	for f in "${staged[@]}"; do rm -f "$f"; done
	[[ -z "$backup" ]] || rm -f "$backup"
	return 0
}
trap cleanup EXIT

stage() { # stage SRC DEST MODE
	local tmp
	tmp=$(mktemp "$(dirname "$2")/.$(basename "$2").XXXXXX")
	staged+=("$tmp")
	targets+=("$2")
	cat "$1" >"$tmp"
	chmod "$3" "$tmp"
}

# Keys before certificates: whoever reads a new certificate must find its key.
if ((!retire)); then
	stage "$privkey" "$key_file" 600
	stage "$fullchain" "$cert_file" 644
	for ip in $CERTPLAN_DEFAULT_IPS; do
		stage "$privkey" "$DOVECOT_CERT_DIR/default-$ip.key" 600
		stage "$fullchain" "$DOVECOT_CERT_DIR/default-$ip.crt" 644
	done
fi

# The new SNI file: the blocks of the old one, except those for this
# certificate's names or this certificate, plus one block per name (retired:
# except this certificate's blocks, and none added). Each block is
# introduced by a "# certplan <id> <name>" line.
removed=0
if ((retire)) && [[ -f "$DOVECOT_SNI_CONF" ]]; then
	removed=$(awk -v id="$id" '/^# certplan / && $3 == id { n++ } END { print n + 0 }' "$DOVECOT_SNI_CONF")
fi
sni_tmp=$(mktemp "$(dirname "$DOVECOT_SNI_CONF")/.$(basename "$DOVECOT_SNI_CONF").XXXXXX")
staged+=("$sni_tmp")
targets+=("$DOVECOT_SNI_CONF")
{
	echo "# Maintained by certplan's dovecot.sh deploy hook: do not edit."
	if [[ -f "$DOVECOT_SNI_CONF" ]]; then
		awk -v id="$id" -v names="${names[*]}" '
			BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) drop[a[i]] = 1 }
			/^# certplan / { skip = ($3 == id) || ($4 in drop) }
			/^# certplan / || inblock { if (!skip) print; inblock = ($0 !~ /^}/); next }
		' "$DOVECOT_SNI_CONF"
	fi
	for name in "${names[@]}"; do
		printf '# certplan %s %s\nlocal_name %s {\n  ssl_cert = <%s\n  ssl_key = <%s\n}\n' \
			"$id" "$name" "$name" "$cert_file" "$key_file"
	done
} >"$sni_tmp"
chmod 644 "$sni_tmp"

if [[ -f "$DOVECOT_SNI_CONF" ]]; then
	backup=$(mktemp "$(dirname "$DOVECOT_SNI_CONF")/.$(basename "$DOVECOT_SNI_CONF").old.XXXXXX")
	cp -p "$DOVECOT_SNI_CONF" "$backup"
fi
sync "${staged[@]}" 2>/dev/null || true
for i in "${!targets[@]}"; do
	mv -f "${staged[$i]}" "${targets[$i]}"
done
staged=()

# --- check, then tell Dovecot ------------------------------------------------
if ! conf=$(doveconf -c "$DOVECOT_CONFIG" -n 2>&1); then
	if [[ -n "$backup" ]]; then
		mv -f "$backup" "$DOVECOT_SNI_CONF"
		backup=
	else
		rm -f "$DOVECOT_SNI_CONF"
	fi
	die "doveconf rejects the configuration, previous $DOVECOT_SNI_CONF restored: $(doveconf_problem "$conf")"
fi
if ((!retire)) && ! grep -qF "$cert_file" <<<"$conf"; then
	warn "$DOVECOT_CONFIG does not include $DOVECOT_SNI_CONF: add !include_try $DOVECOT_SNI_CONF"
fi
if [[ "$DOVECOT_RELOAD" == 1 ]]; then
	base_dir=$(doveconf -c "$DOVECOT_CONFIG" -h base_dir)
	pid=$(head -n1 "$base_dir/master.pid" 2>/dev/null || true)
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		out=$(doveadm -c "$DOVECOT_CONFIG" reload 2>&1) || die "doveadm reload failed: $out"
	else
		warn "Dovecot ($DOVECOT_CONFIG) is not running: the certificate is in place for its next start"
	fi
fi
if ((retire)); then
	# No block names the files any more, and Dovecot has reloaded.
	rm -f "$cert_file" "$key_file"
	kept=
	if [[ -n "$CERTPLAN_DEFAULT_IPS" ]]; then
		kept="; kept default-<ip>.crt and .key for $CERTPLAN_DEFAULT_IPS (dovecot.conf names them; the next default certificate of an IP replaces its files)"
	fi
	echo "dovecot hook: retired $id: removed $removed local_name blocks$kept"
	exit 0
fi
echo "dovecot hook: installed $id for ${names[*]}${CERTPLAN_DEFAULT_IPS:+ (default on $CERTPLAN_DEFAULT_IPS)}"
