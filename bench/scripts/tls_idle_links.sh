#!/usr/bin/env bash
# Bytes per idle link, plain against TLS, in one run: ringlink-echo (one
# reactor, pinned to core 0) takes LINKS idle links from idle_links.py
# (core 1), once over ws:// and once over wss:// (a P-256 certificate made
# here with openssl; TLS 1.3), and idle_links.py reports the server's RSS
# growth per link after 100 warm-up links. Prints both lines and the
# difference: what TLS adds to an idle link. Then, when the build has it,
# bench/tls_idle_heap says where the TLS link's bytes go: OpenSSL's heap
# per idle server session, by call site (1,000 sessions in memory).
#
#   bench/scripts/tls_idle_links.sh BUILD_DIR [LINKS]
set -euo pipefail
build=${1:?usage: tls_idle_links.sh BUILD_DIR [LINKS]}
links=${2:-10000}
ulimit -n 20000 2>/dev/null || true
here=$(dirname "$0")
certs=$(mktemp -d)
trap 'rm -rf "$certs"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout "$certs/key.pem" \
  -out "$certs/cert.pem" -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
for mode in plain tls; do
  work=$(mktemp -d)
  server_tls=(); client_tls=()
  if [ $mode = tls ]; then
    server_tls=(--tls-cert "$certs/cert.pem" --tls-key "$certs/key.pem")
    client_tls=(--tls-ca "$certs/cert.pem")
  fi
  taskset -c 0 "$build/tools/ringlink-echo" --port 0 --port-file "$work/port" --reactors 1 --ping-interval 0 \
    "${server_tls[@]}" 2>/dev/null &
  spid=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
  line=$(taskset -c 1 /usr/bin/python3 "$here/idle_links.py" --port "$(cat "$work/port")" --pid $spid \
           --links "$links" --warmup 100 "${client_tls[@]}")
  kill $spid; wait $spid 2>/dev/null || true
  rm -rf "$work"
  echo "$mode $line"
  # " bytes_per_link=", not "burst_bytes_per_link=": the figure at rest.
  eval "per_$mode=$(sed -n 's/.* bytes_per_link=\([0-9]*\).*/\1/p' <<<"$line")"
done
echo "tls_adds_bytes_per_idle_link=$((per_tls - per_plain)) (links=$links, one reactor, $(uname -r))"
if [ -x "$build/bench/tls_idle_heap" ]; then
  taskset -c 0 "$build/bench/tls_idle_heap" 1000 --sites 25
fi
