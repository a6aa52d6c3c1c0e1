#!/usr/bin/env bash
# certplan's release build: for linux/amd64 and linux/arm64, a tarball and a
# Debian package, built reproducibly (the same commit gives the same bytes;
# https://reproducible-builds.org/).
#
#   packaging/build.sh [OUTDIR]          (default: dist/)
#
# writes OUTDIR/certplan_<debversion>_<arch>.deb,
# OUTDIR/certplan-<version>-linux-<arch>.tar.gz and OUTDIR/SHA256SUMS.
#
# Needs go, git (optional, see below), dpkg-deb, tar, gzip; runs lintian on
# the packages when it is installed (errors fail the build).
#
# Environment:
#   ARCHES             architectures to build ("amd64 arm64")
#   SOURCE_DATE_EPOCH  the date of everything built (default: the last
#                      commit's committer date, git log -1 --format=%ct)
#   VERSION            the release version (default: the v* tag on HEAD;
#                      none: not a release, and the binary says
#                      "devel (no release tag)")
#   COMMIT             the commit (default: git rev-parse HEAD)
#   MAINTAINER         the Debian Maintainer field
#
# Reproducible: CGO_ENABLED=0 (a static binary, no C toolchain involved),
# -trimpath (no build paths), -buildvcs=false (the commit, version and date
# are given with -ldflags -X instead, so the work tree's state does not leak
# into the binary), file dates from SOURCE_DATE_EPOCH, tar with sorted names
# and owner 0, gzip -n (no name or time in the header). The same Go version
# is needed for the same binary: go version is printed first.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C TZ=UTC
umask 022

die() { echo "build.sh: error: $*" >&2; exit 1; }
note() { echo "build.sh: $*" >&2; }

OUT=${1:-dist}
ARCHES=${ARCHES:-amd64 arm64}
MAINTAINER=${MAINTAINER:-certplan maintainers <certplan@users.noreply.github.com>}
in_git() { git rev-parse --is-inside-work-tree >/dev/null 2>&1; }

# The commit, its date and the release tag.
if [[ -z ${SOURCE_DATE_EPOCH-} ]]; then
	in_git || die "not a git clone: set SOURCE_DATE_EPOCH (and COMMIT, VERSION) to build"
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
fi
[[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH: want seconds since 1970"
export SOURCE_DATE_EPOCH
MODIFIED=false
if in_git; then
	COMMIT=${COMMIT:-$(git rev-parse HEAD)}
	VERSION=${VERSION-$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null || true)}
	if [[ -n $(git status --porcelain) ]]; then
		MODIFIED=true
		note "warning: the work tree has uncommitted changes: the binary says \"dirty\", and this is no release"
	fi
fi
COMMIT=${COMMIT:-unknown}
VERSION=${VERSION-}
DATE=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)

# Debian version: 1.2.3-1 for tag v1.2.3; 0~git<date>.<commit>-1 otherwise
# (~ sorts before any release).
if [[ -n $VERSION ]]; then
	[[ $VERSION =~ ^v?[0-9][0-9A-Za-z.+~-]*$ ]] || die "VERSION=$VERSION: want a version such as v1.2.3"
	DEBVERSION=${VERSION#v}-1
	NAMEVERSION=${VERSION#v}
else
	NAMEVERSION=0~git$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S).${COMMIT:0:12}
	DEBVERSION=$NAMEVERSION-1
fi
[[ $MODIFIED == false ]] || { DEBVERSION=${DEBVERSION%-1}+dirty-1; NAMEVERSION+=+dirty; }

note "$(go version); version ${VERSION:-(none)}, commit $COMMIT, modified $MODIFIED, date $DATE"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

# gobuild GOARCH OUTPUT: the release binary.
gobuild() {
	local pkg=github.com/certplan/certplan/internal/cli
	CGO_ENABLED=0 GOOS=linux GOARCH=$1 GOFLAGS=-mod=readonly \
		go build -trimpath -buildvcs=false -o "$2" \
		-ldflags "-s -w -X $pkg.Version=$VERSION -X $pkg.Commit=$COMMIT -X $pkg.Date=$DATE -X $pkg.Modified=$MODIFIED" \
		./cmd/certplan
}

# notices BINARY: the licence texts of Go and of every module linked into
# BINARY (go version -m lists them), which their licences (BSD, MIT, MPL,
# Apache) ask a binary distribution to carry.
notices() {
	local mods
	mods=$(go version -m "$1" | awk '$1 == "dep" { print $2 }')
	printf 'certplan %s links these, each under its own licence:\n' "${VERSION:-$NAMEVERSION}"
	{
		echo "std(Go) $(go env GOVERSION) $(go env GOROOT)" # the standard library
		# shellcheck disable=SC2086 # one argument per module
		go list -m -f '{{.Path}} {{.Version}} {{.Dir}}' $mods
	} | while read -r mod ver dir; do
		local f
		f=$(find "$dir" -maxdepth 1 -type f \( -iname 'LICEN[CS]E*' -o -iname 'COPYING*' \) | sort | head -1)
		[[ -n $f ]] || die "no licence file for $mod $ver in $dir"
		printf '\n==== %s %s ====\n\n' "$mod" "$ver"
		cat "$f"
	done
}

# normalize DIR: the same modes and dates whatever the umask and checkout.
normalize() {
	find "$1" -type d -exec chmod 0755 {} +
	find "$1" -type f -exec chmod 0644 {} +
	find "$1" -type f \( -name certplan -o -name '*.sh' \) -path '*/bin/*' -exec chmod 0755 {} +
	find "$1" -type f -name '*.sh' -path '*/hooks/*' -exec chmod 0755 {} +
	find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

# tarball ARCH BINARY
tarball() {
	local name=certplan-$NAMEVERSION-linux-$1
	local d=$WORK/tar-$1/$name
	mkdir -p "$d/bin" "$d/man/man1" "$d/completions" "$d/examples"
	cp "$2" "$d/bin/certplan"
	cp -r examples/hooks "$d/hooks"
	cp -r examples/certplan.yaml examples/systemd examples/cron "$d/examples/"
	cp "$WORK"/docs/man/*.1 "$d/man/man1/"
	cp "$WORK"/docs/completions/* "$d/completions/"
	cp LICENSE README.md "$WORK/THIRD_PARTY_NOTICES" "$d/"
	normalize "$WORK/tar-$1"
	tar -C "$WORK/tar-$1" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
		--format=gnu -cf - "$name" | gzip -n -9 >"$OUT/$name.tar.gz"
}

# debroot ARCH BINARY: the package's files under $WORK/deb-ARCH.
debroot() {
	local r=$WORK/deb-$1
	install -D "$2" "$r/usr/bin/certplan"
	mkdir -p "$r/usr/share/certplan/hooks" "$r/usr/share/man/man1" "$r/usr/lib/systemd/system" "$r/usr/share/doc/certplan"
	cp examples/hooks/*.sh "$r/usr/share/certplan/hooks/"
	cp "$WORK/certplan.yaml" "$r/usr/share/certplan/certplan.yaml"
	cp examples/systemd/certplan-renew.service examples/systemd/certplan-renew.timer "$r/usr/lib/systemd/system/"
	for page in "$WORK"/docs/man/*.1; do
		gzip -n -9 <"$page" >"$r/usr/share/man/man1/$(basename "$page").gz"
	done
	install -D "$WORK/docs/completions/certplan.bash" "$r/usr/share/bash-completion/completions/certplan"
	install -D "$WORK/docs/completions/_certplan" "$r/usr/share/zsh/vendor-completions/_certplan"
	install -D "$WORK/docs/completions/certplan.fish" "$r/usr/share/fish/vendor_completions.d/certplan.fish"
	cp packaging/debian/copyright "$r/usr/share/doc/certplan/copyright"
	install -D -m 0644 packaging/debian/lintian-overrides "$r/usr/share/lintian/overrides/certplan"
	gzip -n -9 <README.md >"$r/usr/share/doc/certplan/README.md.gz"
	gzip -n -9 <"$WORK/THIRD_PARTY_NOTICES" >"$r/usr/share/doc/certplan/third-party-notices.gz"
	changelog | gzip -n -9 >"$r/usr/share/doc/certplan/changelog.Debian.gz"
}

# changelog: one entry for this build (the project keeps no Debian history).
changelog() {
	printf 'certplan (%s) unstable; urgency=medium\n\n' "$DEBVERSION"
	printf '  * certplan %s, commit %s.\n\n' "${VERSION:-(no release tag)}" "${COMMIT:0:12}"
	printf ' -- %s  %s\n' "$MAINTAINER" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
}

# deb ARCH BINARY
deb() {
	local r=$WORK/deb-$1
	debroot "$1" "$2"
	mkdir -p "$r/DEBIAN"
	cp packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$r/DEBIAN/"
	normalize "$r"
	chmod 0755 "$r"/DEBIAN/{postinst,prerm,postrm}
	(cd "$r" && find usr -type f | sort | xargs md5sum) >"$r/DEBIAN/md5sums"
	# Installed-Size in KiB, file by file as dpkg-gencontrol counts it
	# (not du, which depends on the file system).
	local size
	size=$(find "$r/usr" -type f -printf '%s\n' | awk '{ k += int(($1 + 1023) / 1024) } END { print k + 0 }')
	sed -e "s/@VERSION@/$DEBVERSION/" -e "s/@ARCH@/$1/" -e "s/@SIZE@/$size/" -e "s/@MAINTAINER@/$MAINTAINER/" \
		packaging/debian/control.in >"$r/DEBIAN/control"
	normalize "$r/DEBIAN"
	chmod 0755 "$r"/DEBIAN/{postinst,prerm,postrm}
	dpkg-deb --root-owner-group -Zxz --build "$r" "$OUT/certplan_${DEBVERSION}_$1.deb" >/dev/null
}

# Architecture-independent parts, made once: man pages, completions, the
# licence notices, and
# the example config, written and checked by this build's own binary.
gobuild "$(go env GOARCH)" "$WORK/host-certplan"
go run ./packaging/gendocs -out "$WORK/docs" -version "${VERSION:-$NAMEVERSION}"
notices "$WORK/host-certplan" >"$WORK/THIRD_PARTY_NOTICES"
"$WORK/host-certplan" config init >"$WORK/certplan.yaml"
"$WORK/host-certplan" config check "$WORK/certplan.yaml"

for arch in $ARCHES; do
	gobuild "$arch" "$WORK/certplan-$arch"
	tarball "$arch" "$WORK/certplan-$arch"
	deb "$arch" "$WORK/certplan-$arch"
done

if command -v lintian >/dev/null; then
	for arch in $ARCHES; do
		# --fail-on error: warnings are printed, errors stop the release.
		lintian --fail-on error "$OUT/certplan_${DEBVERSION}_$arch.deb" >&2 ||
			die "lintian found errors in certplan_${DEBVERSION}_$arch.deb"
	done
else
	note "lintian is not installed: the packages were not checked (apt-get install lintian)"
fi

(cd "$OUT" && sha256sum certplan_"${DEBVERSION}"_*.deb certplan-"$NAMEVERSION"-linux-*.tar.gz >SHA256SUMS)
note "wrote $OUT:"
sed 's/^/  /' "$OUT/SHA256SUMS" >&2
