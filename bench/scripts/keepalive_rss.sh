#!/usr/bin/env bash
# Server RSS through rounds of keepalive pings over many idle links: before
# the links, with them open, during the first round of pings and after it.
# A round takes a send queue per pinged link until the kernel has the ping;
# the reactor keeps its queues in whole pages and hands them back once quiet
# (docs/architecture.md, "Memory at rest"), so the last figure should come
# back near the second. One ringlink-echo process, server on core 0, the
# idle links (ringlink-load --mode idle, no pings of its own) on core 1.
#
#   bench/scripts/keepalive_rss.sh BUILD_DIR [LINKS] [PING_INTERVAL_MS]
set -euo pipefail
build=${1:?usage: keepalive_rss.sh BUILD_DIR [LINKS] [PING_INTERVAL_MS]}
links=${2:-15000} ping_ms=${3:-4000}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/children.sh"
echo "# bench/scripts/keepalive_rss.sh $*"
echo "# commit $(git -C "$here" rev-parse --short HEAD); $(date -u +%FT%TZ); $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
taskset -c 0 "$build/tools/ringlink-echo" --port 0 --port-file "$work/port" --ping-interval "$ping_ms" 2>"$work/err" &
spid=$!; pids+=("$spid")
for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$spid/status"; }
before=$(rss)
s=$(( ping_ms / 1000 ))
taskset -c 1 "$build/tools/ringlink-load" "ws://127.0.0.1:$(cat "$work/port")/" --mode idle --ping-interval 0 \
  --conns "$links" --connect-rate 20000 --duration $(( 3 * s + 4 )) >"$work/load.out" 2>&1 &
lpid=$!; pids+=("$lpid")
line="links=$links ping_interval_ms=$ping_ms rss_kb: before=$before"
# Links open within the first second; the first round is due ping_ms later.
for t in 2 $(( s + 1 )) $(( 2 * s - 1 )) $(( 3 * s - 1 )); do
  sleep $(( t - ${prev:-0} )); prev=$t
  line="$line t${t}s=$(rss)"
done
wait "$lpid" || true
echo "$line"
echo "# t2s: links open, no ping yet; t$(( s + 1 ))s: the first round; later: between and after rounds"
grep -E "^  (measured|errors)" "$work/load.out" || true
