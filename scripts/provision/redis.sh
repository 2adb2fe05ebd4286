#!/usr/bin/env bash
# Provision a throwaway redis-server for tests and local runs.
#   eval "$(bash scripts/provision/redis.sh)"
# Installs redis-server via apt if missing, starts one on a free loopback port (no persistence), data, pidfile
# and log under .tmp/redis-<port>/, and prints `export REDIS_URL=...` and `export REDIS_PIDFILE=...` on stdout.
# All logs go to stderr. Stop it with `bash scripts/provision/stop-redis.sh` (uses $REDIS_PIDFILE, or every
# .tmp/redis-*/redis.pid when called with --all).
# Optional: REDIS_PORT=<port> to pick the port (used by tests to restart a killed server on the same port).
# `bash scripts/provision/redis.sh install` only installs redis-server (if missing) and starts nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ "${1:-}" = "stop" ]; then exec bash "$ROOT/scripts/provision/stop-redis.sh" --all; fi

log() { echo "[provision/redis] $*" >&2; }

if ! command -v redis-server >/dev/null 2>&1; then
  log "redis-server missing: installing via apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends redis-server >&2
  # The Debian package may start a system instance on 6379; we do not use it.
fi
# `install`: only make sure redis-server is installed (tools that run their own, e.g. npm run chaos).
if [ "${1:-}" = "install" ]; then exit 0; fi

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

PORT="${REDIS_PORT:-$(free_port)}"
DIR="$ROOT/.tmp/redis-$PORT"
mkdir -p "$DIR"
PIDFILE="$DIR/redis.pid"
LOGFILE="$DIR/redis.log"

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  log "already running on port $PORT (pid $(cat "$PIDFILE"))"
else
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$DIR" --pidfile "$PIDFILE" --logfile "$LOGFILE" >&2
  for _ in $(seq 1 100); do
    if redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; then break; fi
    sleep 0.05
  done
  if ! redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; then
    log "redis-server did not answer on port $PORT; see $LOGFILE"
    exit 1
  fi
  log "redis-server up on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), log $LOGFILE)"
fi

echo "export REDIS_URL=redis://127.0.0.1:$PORT"
echo "export REDIS_PIDFILE=$PIDFILE"
