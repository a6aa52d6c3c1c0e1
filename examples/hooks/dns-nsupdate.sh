#!/bin/sh
# certplan DNS-01 script for the exec provider: publishes and removes the
# challenge's TXT record with nsupdate (RFC 2136), on a server whose DNS
# (BIND, Knot, PowerDNS) takes dynamic updates.
#
# Use:  EXEC_PATH=/etc/certplan/hooks/dns-nsupdate.sh \
#         certplan issue --challenge http-01 --dns-provider exec ...
#       (http-01 for the ordinary names, this script for wildcards), or
#       with --challenge dns-01 for every name.
#
# certplan runs it as lego's exec provider does:
#   dns-nsupdate.sh present FQDN VALUE   add the TXT record FQDN = VALUE
#   dns-nsupdate.sh cleanup FQDN VALUE   remove that record, and only it
# FQDN is _acme-challenge.<name>. with its trailing dot.
#
# ADD, do not replace: an order for "*.example.com" and "example.com" has
# two challenges at _acme-challenge.example.com, presented at once, and the
# CA must see both values. So "present" adds its value beside any others
# ("update add"), and "cleanup" deletes only the record with its value
# ("update delete FQDN TXT VALUE"); "update delete FQDN TXT" without a
# value, or a panel API call that sets the record, would remove the other
# challenge's value and fail its name. The same holds for any exec script.
#
# Settings (environment):
#   NSUPDATE_SERVER  the primary server, host or host:port (required)
#   NSUPDATE_KEY     a TSIG key file for nsupdate -k (tsig-keygen's format);
#                    empty: unsigned updates
#   NSUPDATE_ZONE    the zone to update; empty: nsupdate finds it by SOA
#   NSUPDATE_TTL     the record's TTL in seconds (60)
#   NSUPDATE         the nsupdate command (nsupdate)
set -eu

die() { echo "dns-nsupdate: error: $*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: $0 present|cleanup FQDN VALUE (run me from certplan with EXEC_PATH)"
op=$1 fqdn=$2 value=$3
: "${NSUPDATE_SERVER:?NSUPDATE_SERVER is not set: the DNS server that takes the updates}"
ttl=${NSUPDATE_TTL:-60}
case $ttl in ''|*[!0-9]*) die "NSUPDATE_TTL $ttl: want seconds" ;; esac
# The value is base64url (RFC 8555 section 8.4): nothing to quote inside.
case $value in ''|*[!A-Za-z0-9_-]*) die "value $value is not a DNS-01 digest" ;; esac
case $fqdn in *[!A-Za-z0-9._-]*) die "FQDN $fqdn: unexpected characters" ;; esac

server=$NSUPDATE_SERVER port=53
case $server in
\[*\]:*) port=${server##*:} server=${server%:*} server=${server#[} server=${server%]} ;;
*:*:*) ;; # an IPv6 address without a port
*:*) port=${server##*:} server=${server%:*} ;;
esac

case $op in
present) change="update add $fqdn $ttl IN TXT \"$value\"" ;;
cleanup) change="update delete $fqdn IN TXT \"$value\"" ;;
*) die "unknown operation $op: want present or cleanup" ;;
esac

set -- ${NSUPDATE:-nsupdate}
[ -n "${NSUPDATE_KEY:-}" ] && set -- "$@" -k "$NSUPDATE_KEY"
{
	echo "server $server $port"
	[ -n "${NSUPDATE_ZONE:-}" ] && echo "zone $NSUPDATE_ZONE"
	echo "$change"
	echo "send"
} | "$@" || die "nsupdate failed to $op $fqdn TXT at $server port $port"
echo "dns-nsupdate: $op $fqdn TXT"
