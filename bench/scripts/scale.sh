#!/usr/bin/env bash
# Many idle links on one box, over several processes on both sides (a process
# here holds at most 20,000 descriptors): ringlink-echo --processes S holds
# LINKS links opened by ringlink-load --processes L at RATE connects/s, idle
# with the server's keepalive pings; then 1 % more links send 1 message/s each
# for ACTIVE seconds (a second ringlink-load: the idle one cannot be made busy
# from outside); then everything closes. Prints key=value lines:
#   connect rate achieved, handshake p50/p99/max (connect() to upgrade, from
#   the load tool's JSON), server RSS growth per link (per process and in
#   total), kernel socket memory per link (/proc/net/sockstat, both ends of
#   each link are on this box), idle CPU per 10 s (utime and stime apart),
#   the active phase's p50/p99, losses and errors of both load runs, and the
#   RSS left after the close. Socket slab memory comes from /proc/slabinfo.
#
#   bench/scripts/scale.sh BUILD_DIR [LINKS] [RATE]
#   env: PING_INTERVAL_MS=35000 (the server's default keepalive) HOLD (idle
#        seconds measured; default one ping interval, so every link is pinged
#        once inside the window and idle CPU includes the keepalive) ACTIVE=10
#        SERVER_PROCESSES, LOAD_PROCESSES (default: one per 15,000 links)
set -euo pipefail
build=${1:?usage: scale.sh BUILD_DIR [LINKS] [RATE]}
links=${2:-100000} rate=${3:-20000}
ping_ms=${PING_INTERVAL_MS:-35000}
hold=${HOLD:-$(( (ping_ms + 999) / 1000 ))} active=${ACTIVE:-10}
per=$(( (links + 14999) / 15000 ))
sprocs=${SERVER_PROCESSES:-$per} lprocs=${LOAD_PROCESSES:-$per}
active_links=$(( links / 100 > 0 ? links / 100 : 1 ))
[ "$active_links" -lt "$lprocs" ] && active_links=$lprocs
ulimit -n 20000 2>/dev/null || true
clk=$(getconf CLK_TCK) page=$(getconf PAGESIZE)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

sockstat_mem() { awk '$1 == "TCP:" { for (i = 2; i < NF; i += 2) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat; }
# Socket objects live in slab caches, not in sockstat's mem (buffer pages):
# the TCP socks, their inodes, bind buckets and files (root can read slabinfo).
slab_bytes() { awk '$1 == "TCP" || $1 == "sock_inode_cache" || $1 == "tcp_bind_bucket" || $1 == "filp" { b += $3 * $4 }
                    END { print b + 0 }' /proc/slabinfo 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# Pages the allocator freed with MADV_FREE still count in RSS until the kernel needs them.
lazyfree_kb() { awk '/^LazyFree:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
# TcpExt counters: SYNs dropped on a full accept queue, and SYNs the clients sent again.
tcpext() { awk -v k="$1" '$1 == "TcpExt:" { if (!n) { for (i = 2; i <= NF; i++) if ($i == k) c = i; n = 1 } else print $c }' /proc/net/netstat; }
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12, $13 }' "/proc/$1/stat"; }  # utime stime
server_children() { pgrep -P "$1" | sort -n; }

# What the run was and the limits a larger one meets: the report's
# extrapolation to 1,000,000 links reads them from this output.
echo "run links=$links rate=$rate server_processes=$sprocs load_processes=$lprocs hold_s=$hold active_s=$active" \
  "ping_interval_ms=$ping_ms commit=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  "date=$(date -u +%Y-%m-%dT%H:%M:%SZ) loadavg=$(cut -d' ' -f1 /proc/loadavg) cores=$(nproc)"
read -r port_lo port_hi < /proc/sys/net/ipv4/ip_local_port_range
echo "limits fd_per_process=$(ulimit -Hn) file_max=$(cat /proc/sys/fs/file-max) nr_open=$(cat /proc/sys/fs/nr_open)" \
  "ephemeral_ports=$(( port_hi - port_lo + 1 )) mem_total_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)" \
  "tcp_mem_max_pages=$(awk '{ print $3 }' /proc/sys/net/ipv4/tcp_mem) page_b=$page"

"$build/tools/ringlink-echo" --processes "$sprocs" --port 0 --port-file "$work/port" \
  --ping-interval "$ping_ms" 2>"$work/echo.err" &
spid=$!; pids+=("$spid")
for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
mapfile -t kids < <(server_children "$spid")
declare -A rss0 rss1 rss2 cpu0 cpu1
for k in "${kids[@]}"; do rss0[$k]=$(rss_kb "$k"); done
mem0=$(sockstat_mem) slab0=$(slab_bytes)
overflows0=$(tcpext ListenOverflows) synretrans0=$(tcpext TCPSynRetrans)

# The idle links: held past the idle and active phases, pinging never (the
# server's keepalive does), closed with 1000 at the end.
idle_s=$(awk -v l="$links" -v r="$rate" -v h="$hold" -v a="$active" 'BEGIN { print int(h + a + 20 + (r > 0 ? l / r : 0)) }')
"$build/tools/ringlink-load" "ws://127.0.0.1:$port/" --mode idle --ping-interval 0 --conns "$links" \
  --processes "$lprocs" --connect-rate "$rate" --duration "$idle_s" --progress --json "$work/idle.json" \
  >"$work/idle.out" 2>"$work/idle.err" &
lpid=$!; pids+=("$lpid")
up_deadline=$(( $(date +%s) + 60 + links / (rate > 0 ? rate : links) ))
until grep -q "conns $links/$links" "$work/idle.err" 2>/dev/null; do
  if [ "$(date +%s)" -gt "$up_deadline" ] || ! kill -0 "$lpid" 2>/dev/null; then
    echo "not every link opened:"; tail -5 "$work/idle.err"; exit 1
  fi
  sleep 0.2
done
sleep 2  # the last handshakes' buffers settle
mem1=$(sockstat_mem) slab1=$(slab_bytes)
echo "connect_storm listen_overflows=$(( $(tcpext ListenOverflows) - overflows0 )) syn_retransmits=$(( $(tcpext TCPSynRetrans) - synretrans0 ))" \
  "(over the ramp, whole box: SYNs dropped on a full accept queue, SYNs sent again after 1 s)"
total0=0 total1=0
for k in "${kids[@]}"; do
  rss1[$k]=$(rss_kb "$k"); cpu0[$k]=$(cpu_ticks "$k")
  total0=$(( total0 + rss0[$k] )); total1=$(( total1 + rss1[$k] ))
  echo "server_process pid=$k rss_kb_before=${rss0[$k]} rss_kb_held=${rss1[$k]} growth_b_per_link=$(awk -v a="${rss0[$k]}" -v b="${rss1[$k]}" -v n="$links" -v s="$sprocs" 'BEGIN { printf "%.0f", (b - a) * 1024 / (n / s) }') lazyfree_kb=$(lazyfree_kb "$k") (links/processes assumed)"
done
echo "server_rss_total_b_per_link=$(awk -v a="$total0" -v b="$total1" -v n="$links" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')"
echo "kernel_tcp_mem_b_per_link=$(awk -v a="$mem0" -v b="$mem1" -v p="$page" -v n="$links" 'BEGIN { printf "%.0f", (b - a) * p / n }') (buffer pages, both ends, /proc/net/sockstat)"
echo "kernel_slab_b_per_link=$(awk -v a="$slab0" -v b="$slab1" -v n="$links" 'BEGIN { printf "%.0f", (b - a) / n }') (TCP, sock_inode_cache, tcp_bind_bucket, filp; both ends, /proc/slabinfo)"
grep -E '^(TCP|sockets):' /proc/net/sockstat | tr '\n' ' '; echo

sleep "$hold"
ut=0 st=0
for k in "${kids[@]}"; do
  read -r u0 s0 <<<"${cpu0[$k]}"; read -r u1 s1 <<<"$(cpu_ticks "$k")"
  ut=$(( ut + u1 - u0 )); st=$(( st + s1 - s0 ))
done
awk -v u="$ut" -v s="$st" -v c="$clk" -v h="$hold" -v p="$ping_ms" 'BEGIN {
  printf "idle_cpu_per_10s utime_s=%.3f stime_s=%.3f (all server processes, keepalive every %d ms)\n", u / c * 10 / h, s / c * 10 / h, p }'

"$build/tools/ringlink-load" "ws://127.0.0.1:$port/" --mode rate --rate "$active_links" --conns "$active_links" \
  --processes "$lprocs" --duration "$active" --json "$work/active.json" >"$work/active.out" 2>&1 || true
python3 - "$work/active.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
c, l = d["checks"], d["latency"]
print(f"active links={d['connections']['opened']} msgs={d['throughput']['msgs_received']} p50_us={l['p50_us']:.1f} p99_us={l['p99_us']:.1f} "
      f"lost={c['lost']} unanswered={c['unanswered']} errors={d['errors']}")
PY

wait "$lpid" || true
python3 - "$work/idle.json" "$links" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[2])
c = d["connections"]
print(f"idle links={c['opened']}/{c['requested']} ramp_s={d['ramp_s']:.2f} connect_rate_achieved={c['opened'] / max(d['ramp_s'], 1e-9):.0f}/s "
      f"open_at_end={c['open_at_end']} errors={d['errors']} unexpected_closes={c['unexpected_closes_by_code']} connect_errors={c['connect_errors_by_errno']}")
h = d.get("handshake", {}).get("latency", {})  # connect() to completed upgrade, every link
if h.get("count"):
    print(f"handshake links={h['count']} p50_us={h['p50_us']:.1f} p99_us={h['p99_us']:.1f} max_us={h['max_us']:.1f}")
PY
sleep 2
total2=0
for k in "${kids[@]}"; do rss2[$k]=$(rss_kb "$k"); total2=$(( total2 + rss2[$k] )); done
echo "server_rss_after_close_kb=$total2 before_links_kb=$total0 held_kb=$total1 (all server processes)"
kill -TERM "$spid"; wait "$spid" || echo "ringlink-echo exited non-zero"
grep -E "accepted|closes|per process" "$work/echo.err"
