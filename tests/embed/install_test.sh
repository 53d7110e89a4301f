#!/usr/bin/env bash
# Installs the build into a temporary DESTDIR and builds an application outside
# the tree against it with nothing but pkg-config: what a user of the installed
# library does. Checks the installed layout, then links tests/embed/consumer
# twice (shared library, static library), runs each and checks it echoes.
#
#   install_test.sh MESON BUILD_DIR SOURCE_DIR CXX [EXTRA_CXXFLAGS...]
#
# EXTRA_CXXFLAGS carry the build's sanitizer flags: a library built with them
# links only into programs built with them.
set -euo pipefail

meson=$1 build=$2 src=$3 cxx=$4
shift 4
extra=("$@")

fail() { echo "FAIL: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ringlink-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest=$work/dest

"$meson" install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$work/install.log" 2>&1 ||
  fail "meson install: $(cat "$work/install.log")"

mapfile -t pcs < <(find "$dest" -name ringlink.pc)
[ "${#pcs[@]}" -eq 1 ] || fail "expected one installed ringlink.pc, found ${#pcs[@]}"
pc=${pcs[0]}
prefix=$(sed -n 's/^prefix=//p' "$pc")
[ -n "$prefix" ] || fail "ringlink.pc has no prefix"
# The .pc names the configured prefix; under DESTDIR the files are below it.
pkgconf=(pkg-config --define-variable=prefix="$dest$prefix")
# Searched before the system's directories (where nettle.pc, a private
# requirement, is found).
export PKG_CONFIG_PATH=$(dirname "$pc")

includedir=$("${pkgconf[@]}" --variable=includedir ringlink)
libdir=$("${pkgconf[@]}" --variable=libdir ringlink)
for f in "$includedir/ringlink/engine/ringlink.hpp" "$includedir/ringlink/engine/server.hpp" \
         "$includedir/ringlink/protocol/frame.hpp" "$includedir/ringlink/ringlink_config.hpp" \
         "$libdir/libringlink.a" "$libdir/libringlink.so"; do
  [ -e "$f" ] || fail "not installed: ${f#"$dest"}"
done

cflags=$("${pkgconf[@]}" --cflags ringlink)
libs=$("${pkgconf[@]}" --libs ringlink)
[[ "$cflags" == *"-I$includedir/ringlink"* ]] || fail "pkg-config --cflags gave '$cflags'"
echo "pkg-config --cflags --libs ringlink: $cflags $libs"

consumer=$src/tests/embed/consumer/main.cpp
# Shared: the default link, found through the loader path at run time.
# shellcheck disable=SC2086  # pkg-config output is a list of words
"$cxx" -std=c++20 "${extra[@]}" "$consumer" $cflags $libs -o "$work/consumer_shared" ||
  fail "building against the installed shared library"
ldd_out=$(LD_LIBRARY_PATH=$libdir ldd "$work/consumer_shared")
grep -q "libringlink.so.* => $libdir/" <<<"$ldd_out" || fail "consumer_shared does not load the installed libringlink.so: $ldd_out"
LD_LIBRARY_PATH=$libdir "$work/consumer_shared" || fail "consumer_shared"

# Static: the archive by name, plus its private dependencies from --static.
static_libs=$("${pkgconf[@]}" --static --libs ringlink)
# shellcheck disable=SC2086
"$cxx" -std=c++20 "${extra[@]}" "$consumer" $cflags ${static_libs/-lringlink/-l:libringlink.a} \
  -o "$work/consumer_static" || fail "building against the installed static library"
if ldd "$work/consumer_static" | grep -q libringlink; then fail "consumer_static still needs libringlink.so"; fi
"$work/consumer_static" || fail "consumer_static"
echo "install: ok"
