#!/usr/bin/env bash
# CI check of the Debian package, as root on a clean Debian 12: builds it
# with packaging/build.sh (lintian errors fail), installs it with dpkg -i,
# checks what an admin relies on, purges it, and checks that nothing is
# left but the state directory /var/lib/certplan. Called from .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

fail() { echo "ci-install: FAIL: $*" >&2; exit 1; }
say() { echo "ci-install: $*"; }

[[ $(id -u) == 0 ]] || fail "run as root (dpkg -i, dpkg --purge)"
if dpkg-query -W -f '${Status}' certplan 2>/dev/null | grep -q installed; then
	fail "certplan is already installed: this check needs a machine without it"
fi

# man -w needs man-db; build.sh runs lintian when it is there; the hooks
# the package depends on need openssl.
apt-get install -y -q --no-install-recommends man-db lintian openssl >/dev/null

# CI checks out as another user: let git read the clone's commit and date
# (command-line configuration, so nothing is written to ~/.gitconfig).
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0="$PWD"
if ! git rev-parse HEAD >/dev/null 2>&1; then
	export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date +%s)}
	say "note: not a git clone: building with SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH and no commit"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
arch=$(dpkg --print-architecture)
ARCHES=$arch packaging/build.sh "$out"
deb=$(echo "$out"/certplan_*_"$arch".deb)
[[ -f $deb ]] || fail "build.sh wrote no .deb for $arch"

state_before=absent
[[ -e /var/lib/certplan ]] && state_before=present
config_before=absent
[[ -e /etc/certplan/certplan.yaml ]] && config_before=present

# snapshot: what is on the system where a package or its scripts could
# leave something (not dpkg's and apt's own records, caches and logs).
snapshot() {
	find /etc /usr /opt /srv /var/lib -xdev \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/lib/ucf \
		-o -path /var/lib/systemd -o -path /var/lib/man-db \) -prune -o -print 2>/dev/null | sort
}
snapshot >"$out/before"

# Slim images exclude man pages from installs (dpkg path-exclude): include ours.
dpkg --path-include='/usr/share/man/man1/certplan*' -i "$deb"
say "installed $(dpkg-query -W -f '${Package} ${Version} ${Architecture}' certplan)"
dpkg -L certplan >"$out/files"

# What an admin relies on.
[[ $(command -v certplan) == /usr/bin/certplan ]] || fail "certplan is not /usr/bin/certplan on PATH"
certplan version | tee "$out/version"
grep -Eq '^certplan .*, go1\.' "$out/version" || fail "certplan version: unexpected output"
certplan --version | cmp -s - "$out/version" || fail "certplan --version differs from certplan version"
certplan config check /usr/share/certplan/certplan.yaml
for hook in postfix dovecot exim cpanel; do
	[[ -x /usr/share/certplan/hooks/$hook.sh ]] || fail "hook $hook.sh missing or not executable"
done
[[ $(stat -c '%a %U' /var/lib/certplan) == "700 root" ]] || fail "/var/lib/certplan is $(stat -c '%a %U' /var/lib/certplan), want 700 root"
[[ $config_before == present || ! -e /etc/certplan/certplan.yaml ]] || fail "the package wrote /etc/certplan/certplan.yaml"
[[ ! -e /etc/systemd/system/timers.target.wants/certplan-renew.timer ]] || fail "the timer was enabled on install"
for f in /usr/share/bash-completion/completions/certplan /usr/share/zsh/vendor-completions/_certplan \
	/usr/share/fish/vendor_completions.d/certplan.fish /usr/share/doc/certplan/copyright; do
	[[ -s $f ]] || fail "$f missing"
done
units=(/usr/lib/systemd/system/certplan-renew.service /usr/lib/systemd/system/certplan-renew.timer)
if command -v systemd-analyze >/dev/null; then
	systemd-analyze verify "${units[@]}"
	say "systemd-analyze verify: ok"
else
	say "note: systemd-analyze is not installed (no systemd package): units not verified"
fi
for page in certplan certplan-renew certplan-config-init certplan-version; do
	man -w "$page" >/dev/null || fail "man -w $page: no man page"
done
say "man -w certplan: $(man -w certplan)"

# Purge: every file the package installed goes; a directory may stay only
# when another package owns it or it holds other files. The state
# directory stays (keys of certificates still in use; see postrm).
dpkg --purge certplan
if dpkg-query -W -f '${Status}' certplan 2>/dev/null | grep -q 'installed\|config-files'; then
	fail "certplan still known to dpkg after purge"
fi
left=0
while IFS= read -r path; do
	[[ $path == /. ]] && continue
	if [[ -d $path && ! -L $path ]]; then
		[[ -z $(ls -A "$path") ]] || continue
		dpkg-query -S "$path" >/dev/null 2>&1 && continue
	elif [[ ! -e $path && ! -L $path ]]; then
		continue
	fi
	echo "ci-install: left after purge: $path" >&2
	left=$((left + 1))
done <"$out/files"
[[ $left == 0 ]] || fail "$left paths left after dpkg --purge"
# And what dpkg -L does not list (made by the maintainer scripts, or
# removed when it should not have been): only the state directory differs.
snapshot | diff "$out/before" - | grep '^[<>]' | grep -v '^> /var/lib/certplan$' >"$out/diff" || true
if [[ -s $out/diff ]]; then
	sed 's/^>/ci-install: left after purge:/; s/^</ci-install: gone after purge (was there before):/' "$out/diff" >&2
	fail "the system differs from before the install"
fi
[[ -d /var/lib/certplan ]] || fail "/var/lib/certplan went on purge (documented to stay)"
[[ ! -e /etc/systemd/system/timers.target.wants/certplan-renew.timer ]] || fail "timer enable link left"
[[ $state_before == present ]] || rmdir /var/lib/certplan # leave the machine as it was
say "ok: built, installed, checked and purged $(basename "$deb"); only /var/lib/certplan was left"
