#!/usr/bin/env bash
# build.sh makes the release files: one self-contained binary per program
# and system, and SHA256SUMS, in dist/ (git-ignored).
#
#   tools/release/build.sh           build into dist/ and print SHA256SUMS
#   tools/release/build.sh -check    also build a second time from a copy of
#                                    the source in another directory with an
#                                    empty build cache, and fail unless every
#                                    file is byte for byte the same (CI)
#   tools/release/build.sh -o DIR    write into DIR instead of dist/
#
# The builds are reproducible: anyone with the same source and the same Go
# version (go version -m FILE prints it) gets the same bytes, so a download
# can be checked against a build of one's own. That takes CGO_ENABLED=0 (no
# C toolchain), -trimpath (no paths of the build machine), an empty linker
# build id, -buildvcs=false (the same bytes from a git clone, a dirty tree or
# a source archive) and fixed GOAMD64 and GOARM64 levels, whatever the
# environment says.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
	sed -n '2,11s/^# \{0,1\}//p' "$0"
}

check=false
out=dist
while [ $# -gt 0 ]; do
	case $1 in
	-check) check=true ;;
	-o)
		[ $# -ge 2 ] || { echo "build.sh: error: -o needs a directory" >&2; exit 2; }
		out=$2
		shift
		;;
	-h | -help | --help) usage; exit 0 ;;
	*)
		echo "build.sh: error: unknown argument \"$1\"" >&2
		echo "build.sh: hint: run tools/release/build.sh [-check] [-o DIR]" >&2
		exit 2
		;;
	esac
	shift
done

# Program, package and the systems it is built for. Caseworkers and
# reviewers use Windows, macOS and Linux laptops; the operator's server is
# Linux on amd64 or arm64.
targets="
testimony        ./tools/testimony               windows/amd64 darwin/arm64 darwin/amd64 linux/amd64
testimony-review ./tools/testimony-review        windows/amd64 darwin/arm64 darwin/amd64 linux/amd64
testimony-server ./server/cmd/testimony-server   linux/amd64 linux/arm64
"

sha256() {
	if command -v sha256sum >/dev/null; then sha256sum "$@"; else shasum -a 256 "$@"; fi
}

# build SRC DEST builds every target from the module in SRC into DEST and
# writes DEST/SHA256SUMS. The variables below override the caller's
# environment, which could otherwise change the bytes.
build() {
	local src=$1 dest=$2 name pkg sys goos goarch file
	(
		cd "$src"
		echo "$targets" | while read -r name pkg systems; do
			[ -n "$name" ] || continue
			for sys in $systems; do
				goos=${sys%/*} goarch=${sys#*/}
				file="${name}_${goos}_${goarch}"
				[ "$goos" = windows ] && file="$file.exe"
				CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch GOAMD64=v1 GOARM64=v8.0 \
					GOFLAGS=-mod=readonly GOEXPERIMENT= \
					go build -trimpath -buildvcs=false -ldflags=-buildid= -o "$dest/$file" "$pkg"
			done
		done
	)
	(cd "$dest" && sha256 testimony*_* >SHA256SUMS)
}

# verify DIR checks that every binary in DIR was built the way this script
# says, so a change to the flags above cannot quietly make the files depend
# on the build machine. go version -m records neither -ldflags nor
# -buildvcs=false under -trimpath, so the build id is read with go tool
# buildid and VCS information must be absent.
verify() {
	local dir=$1 f info want
	for f in "$dir"/testimony*_*; do
		info=$(go version -m "$f")
		for want in $'\tbuild\tCGO_ENABLED=0' $'\tbuild\t-trimpath=true'; do
			if ! grep -qF -- "$want" <<<"$info"; then
				echo "build.sh: error: $(basename "$f") lacks \"${want#$'\tbuild\t'}\" in go version -m" >&2
				exit 1
			fi
		done
		if grep -q $'^\tbuild\tvcs' <<<"$info"; then
			echo "build.sh: error: $(basename "$f") carries VCS information" >&2
			exit 1
		fi
		if [ -n "$(go tool buildid "$f")" ]; then
			echo "build.sh: error: $(basename "$f") has a build id" >&2
			exit 1
		fi
	done
}

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

start=$SECONDS
build . "$tmp/first"
verify "$tmp/first"
echo "built in $((SECONDS - start)) s"

if $check; then
	# The second build runs from a copy of the source at another path, with
	# an empty build cache, so that nothing is reused from the first: a
	# difference from a path, a timestamp, the cache or map order shows up as
	# a different hash.
	mkdir -p "$tmp/second/copy-of-source" "$tmp/second/out"
	git ls-files -z --cached --others --exclude-standard |
		tar --null --ignore-failed-read -T - -cf - 2>/dev/null |
		tar -xf - -C "$tmp/second/copy-of-source"
	GOCACHE="$tmp/second/gocache" build "$tmp/second/copy-of-source" "$tmp/second/out"
	verify "$tmp/second/out"
	echo "second build in $((SECONDS - start)) s"
	if ! diff -u "$tmp/first/SHA256SUMS" "$tmp/second/out/SHA256SUMS"; then
		echo "build.sh: error: two builds of the same source differ: the release files are not reproducible" >&2
		exit 1
	fi
	echo "two builds in different directories with different build caches are identical"
fi

mkdir -p "$out"
for f in "$tmp/first"/*; do
	mv -f "$f" "$out/"
done
echo "release files in $out/ ($((SECONDS - start)) s):"
cat "$out/SHA256SUMS"
