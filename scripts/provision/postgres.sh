#!/usr/bin/env bash
# Provision a throwaway PostgreSQL server for development and tests.
#
#   eval "$(bash scripts/provision/postgres.sh)"        # start (or reuse) and export DATABASE_URL
#   bash scripts/provision/postgres.sh stop             # stop every cluster this script started in this repo
#
# Installs Debian `postgresql` if initdb/pg_ctl are missing, creates a cluster under .tmp/pg-<port> in the
# repo (owned by the `postgres` system user when run as root: the server refuses to run as root), listening on
# 127.0.0.1 only with password (scram) auth, creates database `switchboard`, and prints
# `export DATABASE_URL=...` on stdout. All logs go to stderr. Running it again reuses a running cluster (or
# restarts a stopped one) instead of creating another.
set -euo pipefail

log() { printf '[provision/postgres] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BASE_DIR="$REPO_ROOT/.tmp"
DB_NAME="${SWITCHBOARD_PG_DB:-switchboard}"
DB_USER="postgres"

find_pg_bin() {
  local d
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return 0
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  done
  return 1
}

PG_BIN="$(find_pg_bin || true)"
if [ -z "$PG_BIN" ]; then
  [ "$(id -u)" -eq 0 ] || die "postgresql is not installed and this is not root; install package 'postgresql'"
  log "installing Debian package postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends postgresql >&2
  PG_BIN="$(find_pg_bin || true)"
  [ -n "$PG_BIN" ] || die "postgresql installed but initdb/pg_ctl not found under /usr/lib/postgresql/*/bin"
fi
log "using $PG_BIN"

# Run a command as the server's owner: the postgres system user when we are root, else ourselves.
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || die "no 'postgres' system user (the Debian package creates it)"
  as_owner() { runuser -u postgres -- "$@"; }
  OWNER=postgres
else
  as_owner() { "$@"; }
  OWNER="$(id -un)"
fi

# The owner must be able to reach the data dir; if the repo is not traversable for it (e.g. under /root),
# keep the data in a per-repo directory under /tmp instead.
data_base() {
  mkdir -p "$BASE_DIR"
  if as_owner test -x "$BASE_DIR" 2>/dev/null && as_owner test -r "$BASE_DIR" 2>/dev/null; then
    echo "$BASE_DIR"
  else
    local alt="/tmp/switchboard-pg-$(printf '%s' "$REPO_ROOT" | cksum | cut -d' ' -f1)"
    mkdir -p "$alt"
    chmod 755 "$alt"
    log "$BASE_DIR is not reachable by $OWNER; using $alt"
    echo "$alt"
  fi
}

cluster_url() { # dir port
  local pw
  pw="$(cat "$1/.sb-password")"
  echo "postgres://$DB_USER:$pw@127.0.0.1:$2/$DB_NAME"
}

is_running() { as_owner "$PG_BIN/pg_ctl" status -D "$1" >/dev/null 2>&1; }

start_cluster() { # dir
  as_owner "$PG_BIN/pg_ctl" start -D "$1" -w -t 60 -l "$1/server.log" >&2
}

ensure_db() { # dir port
  local pw
  pw="$(cat "$1/.sb-password")"
  if ! PGPASSWORD="$pw" "$PG_BIN/psql" -h 127.0.0.1 -p "$2" -U "$DB_USER" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
    PGPASSWORD="$pw" "$PG_BIN/createdb" -h 127.0.0.1 -p "$2" -U "$DB_USER" "$DB_NAME" >&2
    log "created database $DB_NAME"
  fi
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

BASE="$(data_base)"

if [ "${1:-}" = "stop" ]; then
  for d in "$BASE"/pg-*; do
    [ -d "$d" ] || continue
    if is_running "$d"; then
      log "stopping $d"
      as_owner "$PG_BIN/pg_ctl" stop -D "$d" -m fast -w >&2 || true
    fi
  done
  exit 0
fi

# Reuse: a running cluster, else a stopped one that starts again on its port.
for d in "$BASE"/pg-*; do
  [ -f "$d/.sb-password" ] && [ -f "$d/PG_VERSION" ] || continue
  port="${d##*/pg-}"
  if ! is_running "$d"; then
    log "restarting stopped cluster $d"
    start_cluster "$d" || { log "could not restart $d (port taken?); skipping"; continue; }
  fi
  ensure_db "$d" "$port"
  log "reusing cluster $d on 127.0.0.1:$port"
  echo "export DATABASE_URL=$(cluster_url "$d" "$port")"
  exit 0
done

port="$(free_port)"
dir="$BASE/pg-$port"
log "creating cluster $dir"
rm -rf "$dir"
mkdir -p "$dir"
chmod 700 "$dir"
pw="$(node -e "console.log(require('crypto').randomBytes(18).toString('hex'))")"
pwfile="$(mktemp)"
printf '%s\n' "$pw" >"$pwfile"
chown "$OWNER" "$dir" "$pwfile"
as_owner "$PG_BIN/initdb" -D "$dir" -U "$DB_USER" --auth=scram-sha-256 --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 >&2 \
  || as_owner "$PG_BIN/initdb" -D "$dir" -U "$DB_USER" --auth=scram-sha-256 --pwfile="$pwfile" -E UTF8 --locale=C >&2
rm -f "$pwfile"
printf '%s' "$pw" >"$dir/.sb-password"
chown "$OWNER" "$dir/.sb-password"
chmod 600 "$dir/.sb-password"
cat >>"$dir/postgresql.conf" <<EOF
# switchboard provision
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
max_connections = 100
shared_buffers = 64MB
fsync = on
log_min_messages = warning
EOF
start_cluster "$dir"
ensure_db "$dir" "$port"
log "PostgreSQL ready on 127.0.0.1:$port (data $dir); stop with: bash scripts/provision/postgres.sh stop"
echo "export DATABASE_URL=$(cluster_url "$dir" "$port")"
