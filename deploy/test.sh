#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs (deploy/setup.sh --full),
# then lint (ruff; cargo fmt and clippy for the Rust extension), types (mypy) and pytest.
# Tests that need Kafka start the project's own broker (deploy/kafka/broker.sh) once per
# session; monitoring tests start Prometheus and Alertmanager from Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh --full
echo "== ruff" >&2
.venv/bin/ruff check stream_detector tests
.venv/bin/ruff format --check stream_detector tests
echo "== mypy" >&2
.venv/bin/mypy
echo "== cargo fmt, clippy" >&2
export PATH="$HOME/.cargo/bin:$PATH"
(cd native && cargo fmt --check && cargo clippy -q -- -D warnings)
echo "== pytest" >&2
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
