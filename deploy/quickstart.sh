#!/usr/bin/env bash
# The main job on the embedded default, no Kafka: install, simulate the default scenario
# (benign look-alikes and every campaign type, 48 h, ~330k events), replay the detector over
# it, and score the alerts against the ground truth.
# Usage: deploy/quickstart.sh [OUTDIR]   (default ./out)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out}
deploy/setup.sh
mkdir -p "$out"
sd=.venv/bin/stream-detector
export STREAM_DETECTOR_LOG_FORMAT=${STREAM_DETECTOR_LOG_FORMAT:-text}
echo "== simulate (default scenario) -> $out/traffic.jsonl.gz" >&2
"$sd" simulate --scenario default -o "$out/traffic.jsonl.gz"
echo "== replay -> $out/alerts.jsonl" >&2
"$sd" replay "$out/traffic.jsonl.gz" --alerts "$out/alerts.jsonl"
echo "== evaluate" >&2
"$sd" evaluate "$out/alerts.jsonl" --truth "$out/traffic.truth.jsonl"
