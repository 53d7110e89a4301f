#!/usr/bin/env bash
# Builds the Go echo peers (the seed's Link designs) into
# BUILD_DIR/bench/peers/go_{dual,v2,v3,v4,v5}, and gocyclo (the Go half of
# bench/scripts/complexity.py) beside them, offline, from Debian packages only:
# golang-go, golang-github-gorilla-websocket-dev, golang-golang-x-time-dev.
# GOPATH mode against /usr/share/gocode; the Go build cache lives in
# BUILD_DIR/bench/peers/go-cache. Safe to run again: unchanged sources are
# not recompiled.
#
# usage: bench/scripts/build_peers.sh BUILD_DIR
set -euo pipefail

die() {
  echo "build_peers.sh: $*" >&2
  exit 1
}

[ $# -eq 1 ] || die "usage: build_peers.sh BUILD_DIR"
mkdir -p "$1/bench/peers"
out=$(cd "$1/bench/peers" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
gopath=/usr/share/gocode

command -v go >/dev/null 2>&1 || die "go not found: install the Debian package golang-go"
# atomic.Int64 and atomic.Pointer[T] need Go 1.19.
version=$(go env GOVERSION)
minor=$(echo "$version" | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [ -z "$minor" ] || [ "$minor" -lt 19 ]; then
  die "$version is too old: the peers need go >= 1.19 (golang-go)"
fi
[ -f "$gopath/src/github.com/gorilla/websocket/conn.go" ] ||
  die "gorilla/websocket missing from $gopath: install the Debian package golang-github-gorilla-websocket-dev"
[ -f "$gopath/src/golang.org/x/time/rate/rate.go" ] ||
  die "golang.org/x/time/rate missing from $gopath: install the Debian package golang-golang-x-time-dev"

# The peers' shared package (bench/peers/go_peer) is "ringlink/peer" on a
# GOPATH entry of our own, ahead of Debian's.
own="$out/gopath"
mkdir -p "$own/src/ringlink"
ln -sfn "$repo/bench/peers/go_peer" "$own/src/ringlink/peer"

# Nothing from the user's Go environment, and never the network.
export GOENV=off GOFLAGS='' GO111MODULE=off GOPATH="$own:$gopath" GOPROXY=off GOCACHE="$out/go-cache"

# No -trimpath: it makes go compile the whole standard library again (Debian
# ships it compiled for the default flags only): 25 s of CPU on an empty
# cache instead of 4, which tests/integration/test_go_peers.cpp pays once
# per build directory.
for design in dual v2 v3 v4 v5; do
  src="$repo/bench/peers/go_$design"
  [ -f "$src/main.go" ] || die "missing $src/main.go"
  (cd "$src" && go build -o "$out/go_$design" .) || die "go build of go_$design failed"
  echo "built $out/go_$design"
done

# Standard library only; built here so it gets the same offline environment.
(cd "$repo/bench/peers/gocyclo" && go build -o "$out/gocyclo" .) || die "go build of gocyclo failed"
echo "built $out/gocyclo"
