#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian machine, idempotently:
#   - a Python 3.11 virtualenv in .venv with the package and its dev extra (compiles the
#     Rust extension in native/: needs cargo, looked for in ~/.cargo/bin too)
#   - with --full: the Kafka broker jars (Maven Central) and the monitoring tools
#     (Prometheus and Alertmanager from Debian, Grafana's dashboard-linter from the Go proxy)
# Usage: deploy/setup.sh [--full]
set -euo pipefail
cd "$(dirname "$0")/.."
full=${1:-}

# The package compiles a Rust extension (native/): cargo must be reachable.
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found (install Rust, e.g. https://rustup.rs, into ~/.cargo/bin)" >&2
  exit 1
fi

py=${PYTHON:-python3.11}
command -v "$py" >/dev/null || py=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($py --version)" >&2
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup: python package installed in .venv" >&2

if [ "$full" = "--full" ]; then
  [ -x deploy/kafka/broker.sh ] && deploy/kafka/broker.sh fetch
  [ -x deploy/monitoring/install.sh ] && deploy/monitoring/install.sh
fi
