#!/usr/bin/env bash
# permessage-deflate under a 1 KiB JSON-like text echo (ringlink-load --text
# --size 1024 --payload json): ringlink-echo without and with --deflate, and
# Node ws (tests/integration/peers/node) with perMessageDeflate (window 15,
# context takeover, zlib's default level and memLevel, as ringlink) and
# without. Server pinned to core 0, load to core 1, one after the other in
# one run. Per server: messages/s, p50/p99 round trip, server CPU per message
# (from /proc/PID/stat over the measured window) and bytes the server wrote
# per message (ringlink: its bytes_out counter from /metrics, since io_uring
# writes do not show in /proc/PID/io; Node: /proc/PID/io wchar), then the
# ratios. The four servers take turns, RUNS times (default 3); the medians
# of each column and the ratios of the medians come last.
#
#   bench/scripts/deflate_echo.sh BUILD_DIR [CONNS] [DURATION] [RUNS]
set -euo pipefail
build=${1:?usage: deflate_echo.sh BUILD_DIR [CONNS] [DURATION] [RUNS]}
conns=${2:-100} duration=${3:-10} runs=${4:-3}
here=$(cd "$(dirname "$0")" && pwd)
node_peer="$here/../../tests/integration/peers/node/deflate_peer.js"
load="$build/tools/ringlink-load"
tck=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Bytes the server wrote: ringlink's own counter where it serves /metrics.
written() {
  if [ "$2" = ringlink ]; then
    /usr/bin/python3 -c 'import sys, urllib.request
t = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
print(sum(float(l.split()[-1]) for l in t.splitlines() if l.startswith("ringlink_bytes_out_total{")))' "$1"
  else
    awk '/^wchar/{print $2}' "/proc/$3/io"
  fi
}
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run NAME DEFLATE_FLAG SERVER_CMD...: one measured echo run.
run() {
  local name=$1 offer=$2; shift 2
  local port; port=$(free_port)
  PORT=$port NO_TIMEOUT=1 taskset -c 0 "${@//\{port\}/$port}" >/dev/null 2>&1 < <(sleep $((duration + 30))) &
  local spid=$!
  for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  local json; json=$(mktemp)
  taskset -c 1 "$load" "ws://127.0.0.1:$port/" --conns "$conns" --text --size 1024 --payload json $offer \
    --duration "$duration" --warmup 1 --json "$json" >/dev/null 2>&1 &
  local lpid=$!
  sleep 1.5
  local s0 w0 t0 s1 w1 t1
  local kind=node; [ "${name#ringlink}" != "$name" ] && kind=ringlink
  s0=$(cpu_ticks $spid); w0=$(written $port $kind $spid); t0=$(date +%s.%N)
  sleep "$((duration - 1))"
  s1=$(cpu_ticks $spid); w1=$(written $port $kind $spid); t1=$(date +%s.%N)
  wait $lpid || echo "$name: load exited with errors" >&2
  kill $spid 2>/dev/null; wait $spid 2>/dev/null || true
  /usr/bin/python3 - "$name" "$json" "$s0" "$s1" "$w0" "$w1" "$t0" "$t1" "$tck" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
s0, s1, w0, w1, t0, t1, tck = map(float, sys.argv[3:10])
j = json.load(open(path))
wall = t1 - t0
mps = j["throughput"]["msgs_per_s"]
msgs = mps * wall
cpu_us = (s1 - s0) / tck * 1e6 / msgs if msgs else 0
wire = (w1 - w0) / msgs if msgs else 0
print(f"{name:<22} {mps:>9.0f} {j['latency']['p50_us']:>8} {j['latency']['p99_us']:>8} {cpu_us:>10.2f} {wire:>10.1f}  {j.get('deflate', '-')}  errors={j['errors']}")
PY
  rm -f "$json"
}

echo "1 KiB JSON text echo, $conns connections, 1 in flight each, ${duration}s, $runs runs; server core 0, load core 1"
echo "server                    msgs/s   p50_us   p99_us  cpu_us/msg  wire_B/msg  agreed"
out=$(mktemp)
for _ in $(seq "$runs"); do
  run "ringlink" "" "$build/tools/ringlink-echo" --port "{port}" --reactors 1 --metrics-endpoint
  run "ringlink --deflate" "--deflate" "$build/tools/ringlink-echo" --port "{port}" --reactors 1 --metrics-endpoint --deflate
  run "node ws" "" node "$node_peer" server none 15
  run "node ws deflate" "--deflate" node "$node_peer" server on 15
done | tee "$out"
/usr/bin/python3 - "$out" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name = line[:22].strip()
    f = line[22:].split()
    runs.setdefault(name, []).append((float(f[0]), float(f[3]), float(f[4])))
rows = {k: tuple(statistics.median(r[i] for r in v) for i in range(3)) for k, v in runs.items()}
print("medians                   msgs/s  cpu_us/msg  wire_B/msg  runs")
for k, (mps, cpu, wire) in rows.items():
    print(f"{k:<22} {mps:>9.0f} {cpu:>11.2f} {wire:>11.1f}  {len(runs[k])}")
r, n, p = rows.get("ringlink --deflate"), rows.get("node ws deflate"), rows.get("ringlink")
if r and n:
    print(f"server CPU per compressed message, ringlink/node ws: {r[1] / n[1]:.2f}")
    print(f"msgs/s with deflate, ringlink/node ws: {r[0] / n[0]:.2f}")
if r and p:
    print(f"bytes written per message, ringlink with/without deflate: {r[2] / p[2]:.3f}")
    print(f"server CPU per message, ringlink with/without deflate: {r[1] / p[1]:.2f}")
PY
rm -f "$out"
