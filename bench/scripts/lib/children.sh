# Sourced by the bench scripts that start servers of their own: a work
# directory, the PIDs of every child started (stopped and waited for on exit,
# by PID), a free loopback port, and a redis-server child.
#
#   . "$here/lib/children.sh"
#   port=$(free_port); start_redis "$port" 0     # pinned to core 0
#   some-server ... & pids+=($!)
ulimit -n 20000 2>/dev/null || true
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_redis PORT CORE: no persistence; returns once it accepts connections.
start_redis() {
  taskset -c "$2" redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
  pids+=($!)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "redis-server did not come up on port $1" >&2
  return 1
}
