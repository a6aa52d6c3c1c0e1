#!/usr/bin/env bash
# certplan deploy hook for Postfix: installs one certificate as the default
# certificate of the IPs it is planned for, and as the SNI certificate of its
# names (tls_server_sni_maps, Postfix 3.4 and later), then reloads Postfix.
#
# Use:  certplan issue --deploy-hook /etc/certplan/hooks/postfix.sh ...
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
# Retired (the plan no longer has the certificate): the SNI table loses the
# entries that point at the certificate's file (an entry for one of its
# names that points at another certificate stays), Postfix reloads, and the
# file goes. The default-<ip>.pem files stay: main.cf or master.cf names
# them, and the IP's new default certificate, deployed after the
# retirement in the same run, overwrites them.
#
# Settings (environment):
#   POSTFIX_CONFIG_DIR  Postfix configuration directory (/etc/postfix)
#   POSTFIX_CERT_DIR    where the hook keeps its files ($POSTFIX_CONFIG_DIR/certplan)
#   POSTFIX_SNI_MAP     the SNI table, type:path ("hash:$POSTFIX_CONFIG_DIR/certplan-sni").
#                       Indexed types (hash, btree, lmdb, cdb: `postconf -m`
#                       lists what this Postfix supports; Debian has lmdb and
#                       cdb in postfix-lmdb and postfix-cdb) are built with
#                       `postmap -F`, which stores the files' contents in
#                       the table; texthash is read when smtpd starts.
#   POSTFIX_RELOAD      1 (default) to run `postfix reload`, 0 not to
#
# One-time Postfix configuration this hook expects (it does not edit main.cf):
#   main.cf, one server IP:
#     smtpd_tls_chain_files = /etc/postfix/certplan/default-192.0.2.10.pem
#     tls_server_sni_maps = hash:/etc/postfix/certplan-sni
#   master.cf, several server IPs: one smtpd service per IP, each with its default:
#     192.0.2.10:smtp inet n - y - - smtpd
#       -o smtpd_tls_chain_files=/etc/postfix/certplan/default-192.0.2.10.pem
#     192.0.2.11:smtp inet n - y - - smtpd
#       -o smtpd_tls_chain_files=/etc/postfix/certplan/default-192.0.2.11.pem
#   (and the same -o for the submission and smtps services).
#
# Safety: every file is written under a temporary name and renamed into
# place; the key is checked against the certificate and the certificate's
# dates before anything is replaced; the SNI table is rebuilt beside the old
# one and renamed over it, so Postfix never reads half a table.
set -euo pipefail
umask 077

die() { echo "postfix hook: error: $*" >&2; exit 1; }
warn() { echo "postfix hook: warning: $*" >&2; }

: "${CERTPLAN_CERT_ID:?CERTPLAN_CERT_ID is not set (run me from certplan --deploy-hook)}"
CERTPLAN_CHANGE="${CERTPLAN_CHANGE-}"
CERTPLAN_DEFAULT_IPS="${CERTPLAN_DEFAULT_IPS-}"
POSTFIX_CONFIG_DIR="${POSTFIX_CONFIG_DIR:-/etc/postfix}"
POSTFIX_CERT_DIR="${POSTFIX_CERT_DIR:-$POSTFIX_CONFIG_DIR/certplan}"
POSTFIX_SNI_MAP="${POSTFIX_SNI_MAP:-hash:$POSTFIX_CONFIG_DIR/certplan-sni}"
POSTFIX_RELOAD="${POSTFIX_RELOAD:-1}"
retire=0
[[ "$CERTPLAN_CHANGE" == retired ]] && retire=1

id="$CERTPLAN_CERT_ID"
[[ "$id" =~ ^[A-Za-z0-9._-]+$ && "$id" != .* ]] || die "certificate id \"$id\" is not a safe file name"
for ip in $CERTPLAN_DEFAULT_IPS; do
	[[ "$ip" =~ ^[0-9A-Fa-f:.]+$ ]] || die "\"$ip\" is not an IP address"
done

map_type="${POSTFIX_SNI_MAP%%:*}"
map_src="${POSTFIX_SNI_MAP#*:}"
[[ "$map_type" != "$POSTFIX_SNI_MAP" && "$map_src" == /* ]] ||
	die "POSTFIX_SNI_MAP=\"$POSTFIX_SNI_MAP\": want type:/absolute/path"
cert_file="$POSTFIX_CERT_DIR/$id.pem"
names=()

if ((!retire)); then
	: "${CERTPLAN_CERT_DIR:?CERTPLAN_CERT_DIR is not set (run me from certplan --deploy-hook)}"
	: "${CERTPLAN_NAMES:?CERTPLAN_NAMES is not set}"
	combined="$CERTPLAN_CERT_DIR/combined.pem"
	[[ -r "$combined" ]] || die "$combined: not readable"

	# --- validate: what Postfix will load must be a key and its certificate ----
	# Postfix reads combined.pem (key first, then the chain, leaf first); check
	# that very file: the first key and the first certificate must match.
	key_pub=$(openssl pkey -in "$combined" -pubout 2>/dev/null) || die "$combined: no private key"
	cert_pub=$(openssl x509 -in "$combined" -noout -pubkey 2>/dev/null) || die "$combined: no certificate"
	[[ "$key_pub" == "$cert_pub" ]] || die "$combined: the private key does not match the certificate"
	openssl x509 -in "$combined" -noout -checkend 0 >/dev/null || die "$combined: the certificate has expired"
	now=$(date +%s)
	not_before=$(date -d "$(openssl x509 -in "$combined" -noout -startdate | cut -d= -f2)" +%s)
	((not_before <= now + 300)) || die "$combined: the certificate is not valid yet"

	# The certificate's DNS names (subjectAltName), lower-case.
	declare -A san=()
	while IFS= read -r entry; do
		entry="${entry#"${entry%%[![:space:]]*}"}"
		entry="${entry,,}"
		[[ "$entry" == dns:* ]] && san["${entry#dns:}"]=1
	done < <(openssl x509 -in "$combined" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr ',' '\n')

	names=()
	for name in $CERTPLAN_NAMES; do
		name="${name,,}"
		[[ "$name" =~ ^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$ ]] ||
			die "\"$name\" is not a DNS name in A-label form"
		# The certificate must list every name it is deployed for, or a
		# wildcard over it.
		[[ -n "${san[$name]-}" || ("$name" == *.*.* && -n "${san[*.${name#*.}]-}") ]] || die "$combined does not cover $name"
		# A table key ".example.com" matches every name under example.com.
		[[ "$name" == \*.* ]] && name=".${name#\*.}"
		names+=("$name")
	done
	((${#names[@]} > 0)) || die "CERTPLAN_NAMES is empty"
fi

# --- stage everything beside its target, then rename ----------------------
mkdir -p "$POSTFIX_CERT_DIR"
chmod 700 "$POSTFIX_CERT_DIR"
staged=()
staged_src=
cleanup() {
	local f
	for f in "${staged[@]}" $staged_src ${staged_src:+$staged_src.*}; do rm -f "$f"; done
	return 0
}
trap cleanup EXIT

# stage SRC DEST: copy SRC to a temporary file beside DEST (same file
# system, so the rename is atomic) and remember to rename it.
targets=()
stage() {
	local tmp
	tmp=$(mktemp "$(dirname "$2")/.$(basename "$2").XXXXXX")
	staged+=("$tmp")
	targets+=("$2")
	cat "$1" >"$tmp"
	chmod 600 "$tmp"
}

if ((!retire)); then
	stage "$combined" "$cert_file"
	for ip in $CERTPLAN_DEFAULT_IPS; do
		stage "$combined" "$POSTFIX_CERT_DIR/default-$ip.pem"
	done
	sync "${staged[@]}" 2>/dev/null || true
fi

# The new SNI table: every line of the old one except those for this
# certificate's names or pointing at this certificate's file, plus one line
# per name. Retired: every line except those pointing at its file.
map_dir=$(dirname "$map_src")
mkdir -p "$map_dir"
new_src=$(mktemp "$map_dir/.$(basename "$map_src").XXXXXX")
staged_src=$new_src
{
	if [[ -f "$map_src" ]]; then
		awk -v file="$cert_file" -v names="${names[*]}" '
			BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) drop[a[i]] = 1 }
			/^[ \t]*(#|$)/ { next }
			($1 in drop) || $2 == file { next }
			{ print }
		' "$map_src"
	fi
	for name in "${names[@]}"; do
		printf '%s %s\n' "$name" "$cert_file"
	done
} | sort -u >"$new_src"
removed=0
if ((retire)) && [[ -f "$map_src" ]]; then
	removed=$(awk -v file="$cert_file" '!/^[ \t]*(#|$)/ && $2 == file { n++ } END { print n + 0 }' "$map_src")
fi

# Rename the certificate files first: `postmap -F` reads the files the
# table names, so they must hold the new certificate when it runs. Postfix
# reads them only through main.cf or master.cf (the default certificates) or
# through the table, which stays as it was until it is renamed below.
for i in "${!targets[@]}"; do
	mv -f "${staged[$i]}" "${targets[$i]}"
done
staged=()

case "$map_type" in
texthash | inline | regexp | pcre | static)
	# Read when smtpd starts; nothing to build.
	mv -f "$new_src" "$map_src"
	;;
*)
	# postmap writes the index beside its source: build it from the staged
	# source, then rename the index, then the source, over the old ones.
	postmap -c "$POSTFIX_CONFIG_DIR" -F "$map_type:$new_src" || die "postmap -F $map_type:$new_src failed"
	case "$map_type" in
	hash | btree) suffix=db ;;
	*) suffix="$map_type" ;;
	esac
	[[ -f "$new_src.$suffix" ]] || die "postmap made no $new_src.$suffix"
	chmod 600 "$new_src.$suffix" # the table holds private keys
	mv -f "$new_src.$suffix" "$map_src.$suffix"
	mv -f "$new_src" "$map_src"
	;;
esac
staged_src=

# --- tell Postfix -----------------------------------------------------------
if ! postconf -c "$POSTFIX_CONFIG_DIR" -h tls_server_sni_maps | grep -qF "$map_src"; then
	warn "tls_server_sni_maps in $POSTFIX_CONFIG_DIR/main.cf does not name $map_src: set tls_server_sni_maps = $POSTFIX_SNI_MAP"
fi
if [[ "$POSTFIX_RELOAD" == 1 ]]; then
	if postfix -c "$POSTFIX_CONFIG_DIR" status >/dev/null 2>&1; then
		out=$(postfix -c "$POSTFIX_CONFIG_DIR" reload 2>&1) || die "postfix reload failed: $out"
	else
		warn "Postfix ($POSTFIX_CONFIG_DIR) is not running: the certificate is in place for its next start"
	fi
fi
if ((retire)); then
	# Nothing reads the file any more: the table no longer names it (an
	# indexed table held a copy of its contents), and Postfix has reloaded.
	rm -f "$cert_file"
	kept=
	if [[ -n "$CERTPLAN_DEFAULT_IPS" ]]; then
		kept="; kept default-<ip>.pem for $CERTPLAN_DEFAULT_IPS (main.cf names them; the next default certificate of an IP replaces its file)"
	fi
	echo "postfix hook: retired $id: removed $removed SNI table entries$kept"
	exit 0
fi
echo "postfix hook: installed $id for ${names[*]}${CERTPLAN_DEFAULT_IPS:+ (default on $CERTPLAN_DEFAULT_IPS)}"
