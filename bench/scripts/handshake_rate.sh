#!/usr/bin/env bash
# Handshakes per second and their latency: ringlink-load --handshakes (each
# connection connects, upgrades, closes 1000, again) against ringlink-echo
# with one reactor, over ws:// and over wss:// (TLS 1.3, ECDSA P-256
# certificate made here with openssl). The load tool's handshake time runs
# from its connect() call to the completed upgrade, TLS included for wss://.
#
#   bench/scripts/handshake_rate.sh BUILD_DIR [CONNS] [DURATION]
set -euo pipefail
build=${1:?usage: handshake_rate.sh BUILD_DIR [CONNS] [DURATION]}
conns=${2:-8} duration=${3:-5s}
work=$(mktemp -d)
spid=
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout "$work/key.pem" \
  -out "$work/cert.pem" -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1
tls_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/tools/ringlink-echo" --reactors 1 --port 0 --port-file "$work/port" --tls-cert "$work/cert.pem" \
  --tls-key "$work/key.pem" --tls-port "$tls_port" 2>"$work/echo.err" &
spid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")

echo "commit $(git -C "$(dirname "$0")" rev-parse --short HEAD), build $(meson introspect "$build" --buildoptions | python3 -c "import json,sys; print(next(o['value'] for o in json.load(sys.stdin) if o['name'] == 'buildtype'))"), $(nproc) cores shared, $conns connections, $duration each"
for url in "ws://127.0.0.1:$port/" "wss://127.0.0.1:$tls_port/"; do
  extra=()
  [[ $url == wss* ]] && extra=(--ca "$work/cert.pem")
  "$build/tools/ringlink-load" "$url" --handshakes --conns "$conns" --duration "$duration" "${extra[@]}" \
    --json "$work/out.json" 2>/dev/null || echo "ringlink-load exited non-zero"
  python3 - "$work/out.json" "$url" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))["handshake"]
l = h["latency"]
print(f"{sys.argv[2].split(':')[0]} handshakes_per_s={h['per_s']:.0f} completed={h['completed']} failed={h['failed']} "
      f"p50_us={l['p50_us']:.1f} p90_us={l['p90_us']:.1f} p99_us={l['p99_us']:.1f} max_us={l['max_us']:.1f}")
PY
done
