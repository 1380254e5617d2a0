#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian machine, idempotently:
#   - a Python 3.11 virtualenv in .venv with the package and its dev extra
#   - with --full: the Kafka broker jars (Maven Central) and the monitoring tools
#     (Prometheus and Alertmanager from Debian, Grafana's dashboard-linter from the Go proxy)
# Usage: deploy/setup.sh [--full]
set -euo pipefail
cd "$(dirname "$0")/.."
full=${1:-}

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
