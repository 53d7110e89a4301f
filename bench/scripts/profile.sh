#!/usr/bin/env bash
# Where ringlink-echo's time goes under a named load: `perf record -g` of the
# server (core 0) while ringlink-load (core 1) runs the shape, then the top
# entries of `perf report` as text, self time first. The summary, not the
# perf.data, is what gets committed (bench/data/profile/NAME.txt).
#
#   bench/scripts/profile.sh BUILD_DIR NAME [CONNS] [SIZE] [INFLIGHT] [SECONDS] [TOP]
#   e.g. bench/scripts/profile.sh build/native-auto-mimalloc-release echo_1000x1 1000 64 1 5 40
set -euo pipefail
build=${1:?usage: profile.sh BUILD_DIR NAME [CONNS] [SIZE] [INFLIGHT] [SECONDS] [TOP]}
name=${2:?usage: profile.sh BUILD_DIR NAME [CONNS] [SIZE] [INFLIGHT] [SECONDS] [TOP]}
conns=${3:-1000} size=${4:-64} inflight=${5:-1} window=${6:-5} top=${7:-40}
command -v perf >/dev/null || { echo "perf is not installed (make deps-bench installs linux-perf)" >&2; exit 2; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out="$repo/bench/data/profile/$name.txt"
work=$(mktemp -d)
spid="" lpid=""
trap '[ -n "$lpid" ] && kill "$lpid" 2>/dev/null; [ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n 20000 2>/dev/null || true

taskset -c 0 "$build/tools/ringlink-echo" --port 0 --port-file "$work/port" --reactors 1 2>"$work/echo.log" &
spid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "ringlink-echo did not start: $(cat "$work/echo.log")" >&2; exit 1; }
port=$(cat "$work/port")
taskset -c 1 "$build/tools/ringlink-load" "ws://127.0.0.1:$port/" --conns "$conns" --size "$size" \
  --inflight "$inflight" --duration "$((window + 3))" >"$work/load.txt" 2>&1 &
lpid=$!
sleep 1.5   # connected and warm
perf record -q -g -o "$work/perf.data" -p "$spid" -- sleep "$window" 2>/dev/null
wait "$lpid" || true
lpid=""
mkdir -p "$(dirname "$out")"
{
  echo "# perf profile of ringlink-echo: $name"
  echo "# command: bench/scripts/profile.sh $build $name $conns $size $inflight $window $top"
  echo "# date $(date -Iseconds); commit $(git -C "$repo" rev-parse --short HEAD); kernel $(uname -r)"
  echo "# load: $conns links x $size B, $inflight in flight, ${window} s sampled; server core 0, load core 1"
  grep -E "msgs/s|throughput|p99" "$work/load.txt" | head -5 | sed 's/^/# load: /' || true
  echo "# self time, top $top (perf report --no-children --sort dso,symbol):"
  perf report -i "$work/perf.data" --stdio --no-children --sort dso,symbol -g none --percent-limit 0.3 2>/dev/null |
    grep -E '^ +[0-9]' | sed -E 's/( +-)+ *$//' | head -n "$top" || true
  echo "# by object (perf report --sort dso):"
  perf report -i "$work/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null | grep -E '^ +[0-9]' | sed -E 's/( +-)+ *$//' | head -n 10 || true
} >"$out"
echo "wrote ${out#$repo/}"
