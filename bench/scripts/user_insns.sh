#!/usr/bin/env bash
# User-space instructions and cycles per echoed message of ringlink-echo: a
# figure that stays put on a busy machine, where wall time and even CPU time
# per message swing with the neighbours. `perf stat -e instructions:u,cycles:u`
# counts the server (core 0) over a fixed window while ringlink-load (core 1)
# runs the shape; the count is divided by the messages echoed in that window
# (the load tool's received msgs/s times the window, both steady by then).
#
#   bench/scripts/user_insns.sh BUILD_DIR [RUNS] [CONNS] [SIZE] [INFLIGHT] [SECONDS]
#   e.g. bench/scripts/user_insns.sh build/rel 3 100 64 16 5
# Prints one line per run and the median of each figure. NO_URING=1 runs the
# server under bench/scripts/no_uring.c (io_uring_setup refused), so a build
# with io_backend=auto gives its epoll figure; the server's log line naming
# its backend is printed either way.
set -euo pipefail
build=${1:?usage: user_insns.sh BUILD_DIR [RUNS] [CONNS] [SIZE] [INFLIGHT] [SECONDS]}
runs=${2:-3} conns=${3:-100} size=${4:-64} inflight=${5:-16} window=${6:-5}
command -v perf >/dev/null || { echo "perf is not installed (make deps-bench installs linux-perf)" >&2; exit 2; }
work=$(mktemp -d)
spid="" lpid=""
cleanup() {
  [ -n "$lpid" ] && kill "$lpid" 2>/dev/null
  [ -n "$spid" ] && kill "$spid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
wrap=()
if [ "${NO_URING:-0}" = 1 ]; then
  cc -O2 -o "$work/no_uring" "$repo/bench/scripts/no_uring.c"
  wrap=("$work/no_uring")
fi

one_run() {
  rm -f "$work/port"
  taskset -c 0 "${wrap[@]}" "$build/tools/ringlink-echo" --port 0 --port-file "$work/port" --reactors 1 2>"$work/echo.log" &
  spid=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
  [ -s "$work/port" ] || { echo "ringlink-echo did not start: $(cat "$work/echo.log")" >&2; exit 1; }
  local port
  port=$(cat "$work/port")
  taskset -c 1 "$build/tools/ringlink-load" "ws://127.0.0.1:$port/" --conns "$conns" --size "$size" \
    --inflight "$inflight" --duration "$((window + 3))" >"$work/load.txt" 2>&1 &
  lpid=$!
  sleep 1.5   # connected and warm
  perf stat -x, -e instructions:u,cycles:u -p "$spid" -o "$work/stat.csv" -- sleep "$window" 2>/dev/null
  wait "$lpid" || true
  lpid=""
  kill "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  spid=""
  local rate insns cycles
  grep -iE -m1 "epoll|io_uring" "$work/echo.log" | sed 's/^/# server: /' >&2 || true
  rate=$(sed -nE 's/.*received [0-9]+ msgs \(([0-9.]+) msgs\/s.*/\1/p' "$work/load.txt" | head -1)
  insns=$(awk -F, '$3 ~ /^instructions/ {print $1}' "$work/stat.csv")
  cycles=$(awk -F, '$3 ~ /^cycles/ {print $1}' "$work/stat.csv")
  [ -n "$rate" ] && [ -n "$insns" ] && [ -n "$cycles" ] ||
    { echo "no figures: $(cat "$work/load.txt" "$work/stat.csv")" >&2; exit 1; }
  awk -v r="$rate" -v w="$window" -v i="$insns" -v c="$cycles" \
    'BEGIN { m = r * w; printf "%.1f %.1f %.0f\n", i / m, c / m, r }'
}

: >"$work/runs"
for n in $(seq "$runs"); do
  line=$(one_run)
  echo "$line" >>"$work/runs"
  read -r i c r <<<"$line"
  echo "run $n: instructions:u/msg $i  cycles:u/msg $c  ($r msgs/s)"
done
sort -n -k1 "$work/runs" | awk '{ a[NR] = $1 } END { printf "median instructions:u/msg %s\n", a[int((NR + 1) / 2)] }'
sort -n -k2 "$work/runs" | awk '{ a[NR] = $2 } END { printf "median cycles:u/msg %s\n", a[int((NR + 1) / 2)] }'
