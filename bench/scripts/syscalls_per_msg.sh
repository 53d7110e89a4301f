#!/usr/bin/env bash
# System calls per echoed message of ringlink-echo, counted by the kernel's
# raw_syscalls:sys_enter tracepoint (perf stat; far lighter than strace, so the
# load shape stays the same) over a fixed window, divided by the messages the
# server received in that window (its SIGUSR1 metrics before and after).
# Server on core 0, ringlink-load on core 1.
#
#   bench/scripts/syscalls_per_msg.sh BUILD_DIR [CONNS] [SIZE] [SECONDS] [INFLIGHT]
# Prints: backend=... conns=.. size=.. inflight=.. messages=N syscalls=M per_message=X
set -euo pipefail
build=${1:?usage: syscalls_per_msg.sh BUILD_DIR [CONNS] [SIZE] [SECONDS] [INFLIGHT]}
conns=${2:-1000} size=${3:-64} window=${4:-5} inflight=${5:-1}
command -v perf >/dev/null || { echo "perf is not installed (linux-perf)" >&2; exit 2; }
work=$(mktemp -d)
trap 'kill $spid $lpid 2>/dev/null || true; rm -rf "$work"' EXIT
ulimit -n 20000 2>/dev/null || true

taskset -c 0 "$build/tools/ringlink-echo" --port 0 --port-file "$work/port" --reactors 1 2>"$work/echo.log" &
spid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
taskset -c 1 "$build/tools/ringlink-load" "ws://127.0.0.1:$port/" --conns "$conns" --size "$size" --inflight "$inflight" \
  --duration "$((window + 3))" >/dev/null 2>&1 &
lpid=$!
sleep 1.5

messages_in() {
  local before
  before=$(grep -c "messages in" "$work/echo.log" || true)
  kill -USR1 "$spid"
  for _ in $(seq 100); do
    [ "$(grep -c "messages in" "$work/echo.log" || true)" -gt "$before" ] && break
    sleep 0.01
  done
  grep "messages in" "$work/echo.log" | tail -1 | sed -E 's/.*messages in ([0-9]+).*/\1/'
}

m0=$(messages_in)
calls=$(perf stat -x, -e raw_syscalls:sys_enter -p "$spid" -- sleep "$window" 2>&1 | awk -F, '/raw_syscalls/{print $1}')
m1=$(messages_in)
wait $lpid || true
backend=$(sed -nE 's/.* on (epoll|io_uring).*/\1/p' "$work/echo.log" | head -1)
msgs=$((m1 - m0))
# The two SIGUSR1 prints happen inside the window edges: their few write calls
# are negligible against tens of thousands of messages.
awk -v b="$backend" -v c="$conns" -v s="$size" -v f="$inflight" -v m="$msgs" -v k="$calls" \
  'BEGIN { printf "backend=%s conns=%s size=%s inflight=%s messages=%d syscalls=%d per_message=%.3f\n", b, c, s, f, m, k, (m > 0 ? k / m : 0) }'
