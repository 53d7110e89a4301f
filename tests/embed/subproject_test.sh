#!/usr/bin/env bash
# ringlink as a meson subproject: a throwaway parent project with
# subprojects/ringlink pointing at this source tree asks for
# dependency('ringlink') (resolved by meson.override_dependency in
# engine/meson.build), builds tests/embed/consumer against it and runs it.
#
#   subproject_test.sh MESON SOURCE_DIR
set -euo pipefail

meson=$1 src=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ringlink-subproject.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/app/subprojects"
ln -s "$src" "$work/app/subprojects/ringlink"
cp "$src/tests/embed/consumer/main.cpp" "$work/app/main.cpp"
cat >"$work/app/meson.build" <<'MESON'
project('app', 'cpp', default_options: ['cpp_std=c++20', 'warning_level=2', 'werror=true'])
ringlink = dependency('ringlink', fallback: ['ringlink'])
executable('app', 'main.cpp', dependencies: ringlink)
MESON

"$meson" setup --wrap-mode=nodownload "$work/build" "$work/app" >"$work/setup.log" 2>&1 ||
  fail "meson setup: $(tail -20 "$work/setup.log")"
grep -q 'Dependency ringlink found: YES .*(overridden)' "$work/setup.log" || fail "ringlink was not used as a subproject: $(tail -20 "$work/setup.log")"
ninja -C "$work/build" -j2 app >"$work/build.log" 2>&1 || fail "build: $(tail -30 "$work/build.log")"
"$work/build/app" || fail "the subproject-built consumer"
echo "subproject: ok"
