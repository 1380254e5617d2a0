#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs (deploy/setup.sh --full),
# then lint (ruff), types (mypy) and pytest. Tests that need Kafka start the project's own
# broker (deploy/kafka/broker.sh) once per session; monitoring tests start Prometheus and
# Alertmanager from Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh --full
echo "== ruff" >&2
.venv/bin/ruff check stream_detector tests
.venv/bin/ruff format --check stream_detector tests
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
