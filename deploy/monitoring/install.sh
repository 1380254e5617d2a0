#!/usr/bin/env bash
# Install the monitoring tools the tests need, idempotently (quick when already done):
#   - Prometheus + promtool and Alertmanager + amtool from Debian's packages, without starting
#     their services (a policy-rc.d guard: there is no systemd, and invoke-rc.d would start the
#     daemons on all interfaces) and without recommends (no node-exporter service);
#   - Grafana's dashboard-linter, built from the Go module proxy at a pinned snapshot (the tagged
#     releases do not build through the proxy), cached by version under
#     ${STREAM_DETECTOR_TOOLS_CACHE:-~/.cache/stream-detector}/dashboard-linter/<version>/ so the
#     ~6 min first build happens once per machine.
# Usage: deploy/monitoring/install.sh   (prints the linter path on the last line of stderr)
set -euo pipefail

LINTER_MODULE=github.com/grafana/dashboard-linter
LINTER_VERSION=v0.0.0-20241224134444-1765d94aec4a
cache_root=${STREAM_DETECTOR_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stream-detector}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_debian_packages() {
  if command -v promtool >/dev/null && command -v amtool >/dev/null \
    && command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null; then
    return
  fi
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
  fi
  echo "monitoring: installing prometheus and prometheus-alertmanager from Debian" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    prometheus prometheus-alertmanager >/dev/null
}

install_linter() {
  local dest="$cache_root/dashboard-linter/$LINTER_VERSION"
  if [ -x "$dest/dashboard-linter" ]; then
    echo "monitoring: dashboard-linter $LINTER_VERSION at $dest/dashboard-linter" >&2
    return
  fi
  if ! command -v go >/dev/null; then
    if [ -x /usr/local/go/bin/go ]; then
      PATH=$PATH:/usr/local/go/bin
    else
      echo "monitoring: no Go toolchain: cannot build dashboard-linter" >&2
      return 1
    fi
  fi
  echo "monitoring: building dashboard-linter $LINTER_VERSION (first time ~6 min)" >&2
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  (
    cd "$work"
    cat >go.mod <<GOMOD
module stream-detector-tools

go 1.21

require $LINTER_MODULE $LINTER_VERSION
GOMOD
    printf 'package tools\n\nimport _ "%s"\n' "$LINTER_MODULE" >tools.go
    GOFLAGS=-mod=mod GONOSUMDB=$LINTER_MODULE GOBIN="$work/bin" go install "$LINTER_MODULE"
  )
  mkdir -p "$dest"
  mv "$work/bin/dashboard-linter" "$dest/dashboard-linter"
  echo "monitoring: dashboard-linter $LINTER_VERSION at $dest/dashboard-linter" >&2
}

install_debian_packages
install_linter
