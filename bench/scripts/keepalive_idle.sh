#!/usr/bin/env bash
# What keepalive costs at rest: ringlink-echo (pinned to core 0) holds N idle
# links for HOLD seconds while idle_links.py (core 1) answers every ping, once
# with the default keepalive and once with it off (--ping-interval 0). Prints
# idle_links.py's line for each, the server CPU per ping answered, and the
# steady cost per 10 s: what every link's ping once per INTERVAL seconds (the
# default ping interval, 35) costs on top of the idle server. HOLD should
# span at least one interval so that a whole round of pings is measured.
#
#   INTERVAL=35 bench/scripts/keepalive_idle.sh BUILD_DIR [LINKS] [HOLD_SECONDS]
set -euo pipefail
build=${1:?usage: keepalive_idle.sh BUILD_DIR [LINKS] [HOLD_SECONDS]}
links=${2:-10000} hold=${3:-60} interval=${INTERVAL:-35}
ulimit -n 20000 2>/dev/null || true
here=$(dirname "$0")
for mode in default off; do
  work=$(mktemp -d)
  extra=(); [ $mode = off ] && extra=(--ping-interval 0)
  taskset -c 0 "$build/tools/ringlink-echo" --port 0 --port-file "$work/port" --reactors 1 "${extra[@]}" 2>/dev/null &
  spid=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
  line=$(taskset -c 1 /usr/bin/python3 "$here/idle_links.py" --port "$(cat "$work/port")" --pid $spid \
           --links "$links" --hold "$hold" --warmup 100 --answer-pings)
  kill $spid; wait $spid 2>/dev/null || true
  rm -rf "$work"
  cpu=$(sed -n 's/.*idle_cpu_s=\([0-9.]*\).*/\1/p' <<<"$line")
  pings=$(sed -n 's/.* pings=\([0-9]*\).*/\1/p' <<<"$line")
  echo "keepalive=$mode $line cpu_per_10s_of_hold=$(awk -v c="$cpu" -v h="$hold" 'BEGIN{printf "%.4f", c*10/h}')"
  eval "cpu_$mode=$cpu pings_$mode=$pings"
done
awk -v on="$cpu_default" -v off="$cpu_off" -v p="$pings_default" -v n="$links" -v h="$hold" -v i="$interval" 'BEGIN{
  if (p == 0) { print "no ping was answered: hold longer than the interval"; exit }
  per = (on - off) / p
  printf "per_ping_us=%.1f steady_cpu_per_10s=%.4f (%d links, one ping each per %d s, idle baseline %.4f)\n",
         per * 1e6, per * n * 10 / i + off * 10 / h, n, i, off * 10 / h }' 
