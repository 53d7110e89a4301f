#!/usr/bin/env bash
# User-space cost per echoed message of ringlink-echo, two ways. Server on
# core 0, load (ringlink-load) on core 1; messages counted from the server's
# own metrics (printed on SIGUSR1) at the start and end of a fixed window.
#
#   instructions: the figure that a busy machine does not move. These VMs
#     have no PMU (perf stat instructions:u / cycles:u answer <not
#     supported>), so callgrind counts them: the server runs under valgrind
#     with instrumentation off, it is switched on for the window, and the
#     window's Ir (user-space instructions) is divided by the messages. The
#     server is slower under valgrind, so more messages share each read and
#     write than at full speed; per-message work is what the figure shows.
#   user us/msg: at full speed, utime from /proc over the window (10 ms
#     ticks); moves with the neighbours on a busy machine.
#
#   bench/scripts/user_insns.sh BUILD_DIR [RUNS] [CONNS] [SIZE] [INFLIGHT] [SECONDS]
#   e.g. bench/scripts/user_insns.sh build/rel 3 100 64 16 5
# Prints one line per run and the medians. NO_URING=1 runs the server under
# bench/scripts/no_uring.c (io_uring_setup refused), so an io_backend=auto
# build gives its epoll figure; the server's log line naming its backend is
# printed either way.
set -euo pipefail
build=${1:?usage: user_insns.sh BUILD_DIR [RUNS] [CONNS] [SIZE] [INFLIGHT] [SECONDS]}
runs=${2:-3} conns=${3:-100} size=${4:-64} inflight=${5:-16} window=${6:-5}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
spid="" lpid=""
cleanup() {
  [ -n "$lpid" ] && kill "$lpid" 2>/dev/null
  [ -n "$spid" ] && kill "$spid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true
wrap=()
if [ "${NO_URING:-0}" = 1 ]; then
  cc -O2 -o "$work/no_uring" "$repo/bench/scripts/no_uring.c"
  wrap=("$work/no_uring")
fi
hz=$(getconf CLK_TCK)

# messages in, from the last metrics block the server printed
messages_in() { sed -nE 's/^ +messages in ([0-9]+),.*/\1/p' "$work/echo.log" | tail -1; }

# start_server LOAD_SECONDS [WRAPPER...]: server on core 0, load on core 1
start_server() {
  local duration=$1
  shift
  taskset -c 0 "${wrap[@]}" "$@" "$build/tools/ringlink-echo" --port 0 --reactors 1 \
    >/dev/null 2>"$work/echo.log" &
  spid=$!
  # The port from the log line: under valgrind the port file has been seen
  # to stay empty while the server was listening.
  local port=""
  for _ in $(seq 600); do
    port=$(sed -nE 's|.*listening on ws://[^ ]*:([0-9]+)/.*|\1|p' "$work/echo.log" | head -1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  if [ -z "$port" ]; then
    echo "ringlink-echo did not start: $(cat "$work/echo.log")" >&2
    kill -9 "$spid" 2>/dev/null || true   # a stalled valgrind ignores SIGTERM
    wait "$spid" 2>/dev/null || true
    spid=""
    return 1
  fi
  grep -iE -m1 "epoll|io_uring" "$work/echo.log" | sed 's/^/# server: /' >&2 || true
  taskset -c 1 "$build/tools/ringlink-load" "ws://127.0.0.1:$port/" --conns "$conns" --size "$size" \
    --inflight "$inflight" --duration "$duration" >"$work/load.txt" 2>&1 &
  lpid=$!
}

stop_server() {
  kill "$lpid" 2>/dev/null || true
  wait "$lpid" 2>/dev/null || true
  lpid=""
  kill "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  spid=""
}

snapshot() {  # prints messages in after a SIGUSR1
  local before
  before=$(grep -c "messages in" "$work/echo.log" || true)
  kill -USR1 "$spid"
  for _ in $(seq 200); do
    [ "$(grep -c "messages in" "$work/echo.log" || true)" -gt "$before" ] && break
    sleep 0.05
  done
  messages_in
}

insns_run() {
  # io_uring under valgrind sometimes stalls before listening: a retry.
  start_server "$((window + 60))" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.out" \
    --log-file="$work/valgrind.log" || return 1
  sleep 6   # valgrind start-up, links connected
  local m0 m1 ir
  m0=$(snapshot)
  callgrind_control -i on "$spid" >/dev/null 2>&1
  sleep "$window"
  callgrind_control -i off "$spid" >/dev/null 2>&1
  m1=$(snapshot)
  callgrind_control -d "$spid" >/dev/null 2>&1
  kill -9 "$spid" 2>/dev/null || true   # under valgrind a graceful stop can hang
  stop_server
  ir=$(cat "$work"/cg.out* | sed -nE 's/^totals: ([0-9]+).*/\1/p' | sort -n | tail -1)
  rm -f "$work"/cg.out*
  [ -n "$ir" ] && [ "$m1" -gt "$m0" ] || { echo "no figures (Ir '$ir', messages $m0 -> $m1)" >&2; exit 1; }
  awk -v i="$ir" -v m="$((m1 - m0))" 'BEGIN { printf "%.1f %d\n", i / m, m }'
}

utime_run() {
  start_server "$((window + 4))" || return 1
  sleep 1.5   # connected and warm
  local m0 m1 u0 u1 s0 s1
  m0=$(snapshot)
  read -r u0 s0 < <(awk '{ print $14, $15 }' "/proc/$spid/stat")
  sleep "$window"
  read -r u1 s1 < <(awk '{ print $14, $15 }' "/proc/$spid/stat")
  m1=$(snapshot)
  stop_server
  awk -v u="$((u1 - u0))" -v s="$((s1 - s0))" -v hz="$hz" -v m="$((m1 - m0))" \
    'BEGIN { printf "%.4f %.4f %d\n", u / hz * 1e6 / m, s / hz * 1e6 / m, m }'
}

: >"$work/insns"
: >"$work/utime"
: >"$work/stime"
for n in $(seq "$runs"); do
  i="" im=""
  for _ in 1 2 3 4; do
    read -r i im <<<"$(insns_run || true)"
    [ -n "$i" ] && break
  done
  [ -n "$i" ] || { echo "callgrind run failed four times" >&2; exit 1; }
  echo "$i" >>"$work/insns"
  read -r u k um <<<"$(utime_run)"
  echo "$u" >>"$work/utime"
  echo "$k" >>"$work/stime"
  echo "run $n: instructions/msg $i ($im msgs under callgrind)  user us/msg $u  kernel us/msg $k  ($um msgs in ${window} s)"
done
median() { sort -n "$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "median instructions/msg $(median "$work/insns")"
echo "median user us/msg $(median "$work/utime")  kernel us/msg $(median "$work/stime")"
