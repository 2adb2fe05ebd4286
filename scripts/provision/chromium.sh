#!/usr/bin/env bash
# Provision a headless-capable Chromium for the client E2E tests.
# Installs Debian's `chromium` package if /usr/bin/chromium is missing (we are root, apt reaches Debian only),
# then PRINTS `export CHROMIUM_PATH=...` on stdout. All logs go to stderr.
# Usage: eval "$(bash scripts/provision/chromium.sh)"
set -euo pipefail
log() { echo "[provision/chromium] $*" >&2; }
# Nothing runs in the background: `stop` (called by scripts/test.sh on exit) has nothing to do.
if [ "${1:-}" = "stop" ]; then exit 0; fi

path="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$path" ]; then
  path=/usr/bin/chromium
  if [ ! -x "$path" ]; then
    log "installing Debian package chromium (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends chromium fonts-dejavu-core >&2
  fi
fi
if [ ! -x "$path" ]; then
  log "chromium not found at $path after install"
  exit 1
fi
log "$("$path" --version 2>/dev/null || echo 'chromium (version unknown)')"
echo "export CHROMIUM_PATH=$path"
