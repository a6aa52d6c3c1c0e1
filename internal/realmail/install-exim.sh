#!/usr/bin/env bash
# install-exim.sh: makes Debian's Exim runnable for the integration tests
# (internal/realmail) on a machine that has Postfix installed. Run as root,
# after apt-get update; .ci/run calls it.
#
# exim4-daemon-light conflicts with postfix as a package, so its files are
# unpacked, not installed: the .debs of exim4-daemon-light, exim4-base and
# exim4-config are downloaded and extracted under DEST (default
# /usr/local/lib/certplan-exim4, where realmail.EximBinary looks); the one
# shared library the binary needs beyond postfix's dependencies (libidn12)
# is installed as a package, and the Debian-exim user that Exim drops to is
# added. Nothing else on the system changes, and running it again is
# harmless.
set -euo pipefail
DEST="${1:-/usr/local/lib/certplan-exim4}"
export DEBIAN_FRONTEND=noninteractive

apt-get install -y -q --no-install-recommends libidn12 >/dev/null
if ! getent passwd Debian-exim >/dev/null; then
	useradd --system --user-group --no-create-home --home-dir /var/spool/exim4 \
		--shell /usr/sbin/nologin Debian-exim
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt-get download writes to the current directory as _apt when it can.
chown _apt "$work" 2>/dev/null || chmod 777 "$work"
(cd "$work" && apt-get download -q exim4-daemon-light exim4-base exim4-config >/dev/null)
rm -rf "$DEST.new"
mkdir -p "$DEST.new"
for deb in "$work"/*.deb; do
	dpkg-deb -x "$deb" "$DEST.new"
done
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
"$DEST/usr/sbin/exim4" -C /dev/null -bV | head -1
