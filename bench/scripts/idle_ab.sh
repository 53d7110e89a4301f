#!/usr/bin/env bash
# Bytes per idle link, build A against build B in one run: ringlink-echo from
# each (pinned to core 0, one reactor) holds LINKS idle links that
# idle_links.py (core 1) opens after 100 warm-up links; RSS is read at rest
# (--settle, see idle_links.py). The builds alternate, RUNS times each; the
# last lines are the medians.
#
#   bench/scripts/idle_ab.sh BUILD_A BUILD_B [LINKS] [RUNS]
set -euo pipefail
a=${1:?usage: idle_ab.sh BUILD_A BUILD_B [LINKS] [RUNS]} b=${2:?usage: idle_ab.sh BUILD_A BUILD_B [LINKS] [RUNS]}
links=${3:-10000} runs=${4:-3}
ulimit -n 20000 2>/dev/null || true
here=$(dirname "$0")
out=$(mktemp)
one() {  # label build
  local work spid line
  work=$(mktemp -d)
  taskset -c 0 "$2/tools/ringlink-echo" --port 0 --port-file "$work/port" --reactors 1 2>/dev/null &
  spid=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
  line=$(taskset -c 1 /usr/bin/python3 "$here/idle_links.py" --port "$(cat "$work/port")" --pid $spid \
           --links "$links" --warmup 100)
  kill $spid; wait $spid 2>/dev/null || true
  rm -rf "$work"
  echo "$1 $line" | tee -a "$out"
}
echo "A=$a B=$b links=$links runs=$runs"
for i in $(seq "$runs"); do one A "$a"; one B "$b"; done
for s in A B; do
  for f in bytes_per_link burst_bytes_per_link; do
    grep "^$s " "$out" | sed -n "s/.* $f=\([0-9-]*\).*/\1/p" | sort -n |
      awk -v s=$s -v f=$f '{v[NR]=$1} END {printf "%s median %s=%s (of %d)\n", s, f, v[int((NR+1)/2)], NR}'
  done
done
rm -f "$out"
