#!/usr/bin/env bash
# Stop redis-server(s) started by scripts/provision/redis.sh.
#   bash scripts/provision/stop-redis.sh          # the one named by $REDIS_PIDFILE
#   bash scripts/provision/stop-redis.sh --all    # every .tmp/redis-*/redis.pid of this repo
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

stop_one() {
  local pidfile="$1"
  [ -f "$pidfile" ] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    echo "[provision/redis] stopped pid $pid ($pidfile)" >&2
  fi
  rm -f "$pidfile"
}

if [ "${1:-}" = "--all" ]; then
  for f in "$ROOT"/.tmp/redis-*/redis.pid; do [ -e "$f" ] && stop_one "$f"; done
else
  : "${REDIS_PIDFILE:?REDIS_PIDFILE is not set (eval the output of scripts/provision/redis.sh, or pass --all)}"
  stop_one "$REDIS_PIDFILE"
fi
