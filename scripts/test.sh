#!/usr/bin/env bash
# The whole test suite: install, build, provision real services where missing, run node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
# Each provision script starts its service and prints `export VAR=...`; called with `stop` it stops it.
provisioners() { for p in scripts/provision/*.sh; do case "$p" in */stop-*) ;; *) echo "$p" ;; esac; done; }
cleanup() { for p in $(provisioners); do bash "$p" stop >&2 || true; done; }
trap cleanup EXIT
for p in $(provisioners); do
  exports=$(bash "$p")
  eval "$exports"
done
mapfile -t suites < <(find packages/*/dist/test chaos/dist/test -name '*.test.js' 2>/dev/null | sort)
node --test --test-concurrency=1 --test-timeout=120000 "${suites[@]}"
# Fault run, short form (under a minute, hard timeout 100 s): its own redis-server and three server processes
# on free loopback ports; fails on any unflagged loss, duplicate or reorder (docs/operations.md, "Chaos run").
node chaos/dist/src/chaos.js --short
