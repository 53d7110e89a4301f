#!/usr/bin/env bash
# Bytes per idle link with permessage-deflate: ringlink-echo --deflate (one
# reactor, core 0) holds LINKS links that idle_links.py (core 1, another
# process: the descriptor limit is per process) opens after 100 warm-up
# links, RSS read at rest. Rows: no offer; deflate with context takeover
# (a budget large enough for every link); the shared fallback (budget 0:
# every link is answered no context takeover). Each once idle from the
# upgrade, and once after every link sent one 1 KiB JSON-like message
# (compressed when agreed) and read its echo, so that a link with context
# takeover has made its zlib contexts. RUNS runs of each; medians.
#
#   bench/scripts/deflate_idle.sh BUILD_DIR [LINKS] [RUNS]
set -euo pipefail
build=${1:?usage: deflate_idle.sh BUILD_DIR [LINKS] [RUNS]}
links=${2:-10000} runs=${3:-3}
ulimit -n 20000 2>/dev/null || true
here=$(dirname "$0")
out=$(mktemp)
one() {  # label budget offer message_bytes
  local work spid line
  work=$(mktemp -d)
  taskset -c 0 "$build/tools/ringlink-echo" --port 0 --port-file "$work/port" --reactors 1 \
    --deflate --deflate-budget "$2" 2>/dev/null &
  spid=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
  line=$(taskset -c 1 /usr/bin/python3 "$here/idle_links.py" --port "$(cat "$work/port")" --pid $spid \
           --links "$links" --warmup 100 ${3:+--offer "$3"} --message-bytes "$4")
  kill $spid; wait $spid 2>/dev/null || true
  rm -rf "$work"
  echo "$1 $line" | tee -a "$out"
}
big=$((8 << 30))
offer="permessage-deflate; client_max_window_bits"
labels="plain_idle plain_1msg takeover_idle takeover_1msg shared_idle shared_1msg"
echo "ringlink-echo --deflate, links=$links runs=$runs, server core 0, client core 1"
for i in $(seq "$runs"); do
  one plain_idle "$big" "" 0
  one plain_1msg "$big" "" 1024
  one takeover_idle "$big" "$offer" 0
  one takeover_1msg "$big" "$offer" 1024
  one shared_idle 0 "$offer" 0
  one shared_1msg 0 "$offer" 1024
done
for s in $labels; do
  grep "^$s " "$out" | sed -n "s/.* bytes_per_link=\([0-9-]*\).*/\1/p" | sort -n |
    awk -v s=$s '{v[NR]=$1} END {printf "%-14s median bytes_per_link=%s (of %d)\n", s, v[int((NR+1)/2)], NR}'
done
rm -f "$out"
