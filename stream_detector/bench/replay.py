"""Replay throughput: the whole detector per event, against a bare decode loop in the same run.

    python -m stream_detector.bench.replay [--input FILE] [--rounds 3]

Without --input it simulates the default scenario (with prompt text) once into
.cache/bench/. Lines are read into memory first, so disk and gzip do not count. Each round
times (1) the baseline: `orjson.loads` of every line, and (2) the detector: parse, validate,
derive, state, scoring, campaigns and alert serialisation — exactly what `replay` does per line.
The best round of each is reported, with their ratio and the machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import orjson

from stream_detector.bench.machine import describe
from stream_detector.events import Rejection
from stream_detector.features import parse_features
from stream_detector.pipeline import Pipeline

CACHE = Path(".cache/bench")


def default_input() -> Path:
    """The default scenario (seed 1), simulated once and cached."""
    path = CACHE / "default-seed1.jsonl"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "stream_detector", "--log-format", "text"]
        subprocess.run([*command, "simulate", "--scenario", "default", "-o", str(path)], check=True)
    return path


def baseline(lines: list[bytes]) -> float:
    started = time.perf_counter()
    loads = orjson.loads
    for line in lines:
        loads(line)
    return time.perf_counter() - started


def detector(lines: list[bytes]) -> tuple[float, int]:
    started = time.perf_counter()
    det = Pipeline()
    process = det.process_features
    alerts = 0
    for line in lines:
        try:
            f = parse_features(line)
        except Rejection:
            continue
        for alert in process(f):
            alert.to_json()
            alerts += 1
    return time.perf_counter() - started, alerts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", type=Path, help="JSON Lines events (default: simulated)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = args.input or default_input()
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    Pipeline()  # start-up (River imports scipy, ~3 s here) is not per-event throughput
    base = full = float("inf")
    alerts = 0
    for round_ in range(1, args.rounds + 1):
        b = baseline(lines)
        f, alerts = detector(lines)
        base, full = min(base, b), min(full, f)
        print(
            f"round {round_}: baseline {len(lines) / b:,.0f} ev/s, "
            f"detector {len(lines) / f:,.0f} ev/s",
            file=sys.stderr,
        )
    print(
        orjson.dumps(
            {
                "input": str(path),
                "events": len(lines),
                "alerts": alerts,
                "baseline_events_per_s": round(len(lines) / base),
                "detector_events_per_s": round(len(lines) / full),
                "ratio": round(base / full, 3),
                "machine": describe(),
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
    )


if __name__ == "__main__":
    main()
