#!/usr/bin/env bash
# make run: start ringlink-echo on a free loopback port, drive it with
# ringlink-load for DURATION seconds with live progress, print the report,
# stop the server gracefully and print its metrics. On two or more cores the
# server runs on core 0 and the load on core 1.
set -euo pipefail
build=${1:?usage: run_demo.sh BUILD_DIR}
CONNS=${CONNS:-100} SIZE=${SIZE:-64} DURATION=${DURATION:-10} INFLIGHT=${INFLIGHT:-1}
MODE=${MODE:-echo} REACTORS=${REACTORS:-1} LOAD_ARGS=${LOAD_ARGS:-}

echo_bin=$build/tools/ringlink-echo
load_bin=$build/tools/ringlink-load
[ -x "$echo_bin" ] || { echo "missing $echo_bin: run make build" >&2; exit 1; }
[ -x "$load_bin" ] || { echo "missing $load_bin: run make build" >&2; exit 1; }

server_cpu=() load_cpu=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpu=(taskset -c 0) load_cpu=(taskset -c 1)
fi

workdir=$(mktemp -d)
port_file=$workdir/port
"${server_cpu[@]}" "$echo_bin" --port 0 --port-file "$port_file" --reactors "$REACTORS" &
server_pid=$!
cleanup() { kill "$server_pid" 2>/dev/null || true; rm -rf "$workdir"; }
trap cleanup EXIT
for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.05; done
[ -s "$port_file" ] || { echo "ringlink-echo did not start" >&2; exit 1; }
port=$(cat "$port_file")

echo "== ringlink-load: $MODE, $CONNS connections, $SIZE B, ${DURATION}s against ws://127.0.0.1:$port/"
status=0
"${load_cpu[@]}" "$load_bin" "ws://127.0.0.1:$port/" --mode "$MODE" --conns "$CONNS" --size "$SIZE" \
  --inflight "$INFLIGHT" --duration "$DURATION" --progress $LOAD_ARGS || status=$?

echo "== stopping ringlink-echo"
kill -TERM "$server_pid"
wait "$server_pid" || status=$?
trap - EXIT
rm -rf "$workdir"
exit $status
