"""Detection quality over scenarios and seeds: simulate, replay, evaluate, one table.

    python -m stream_detector.bench.quality [--scenarios default,hydra,...] [--seeds 1,7]
    python -m stream_detector.bench.quality --input EVENTS.jsonl --truth EVENTS.truth.jsonl

Each (scenario, seed) is simulated once into .cache/bench/quality/ (kept for the next run),
replayed with `stream-detector replay` and scored with `stream-detector evaluate`, exactly the
commands a user runs; `--input/--truth` scores traffic from elsewhere (e.g. a gateway's day
with analyst verdicts, or another generator) the same way. Printed per run: account recall and
precision at high/critical, critical alerts on benign accounts, the share of all campaign
accounts named at high within an hour of their own first event, the share of each campaign
population named at high or above (at all, within an hour of its campaign's start, and of
the account's own first event), the benign populations with any high/critical alert.
`--no-prompts` simulates a no-logging policy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

CACHE = Path(".cache/bench/quality")
COMMAND = [sys.executable, "-m", "stream_detector", "--log-format", "text"]


def simulated(scenario: str, seed: int, no_prompts: bool) -> tuple[Path, Path]:
    """Events and truth of one scenario and seed, simulated on first use."""
    name = f"{scenario}-{seed}{'-noprompt' if no_prompts else ''}"
    events = CACHE / f"{name}.jsonl"
    truth = CACHE / f"{name}.truth.jsonl"
    if not (events.exists() and truth.exists()):
        CACHE.mkdir(parents=True, exist_ok=True)
        extra = ["--no-prompts"] if no_prompts else []
        run([*COMMAND, "simulate", "--scenario", scenario, "--seed", str(seed), *extra,
             "-o", str(events)])  # fmt: skip
    return events, truth


def run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def score(events: Path, truth: Path) -> dict[str, Any]:
    """`replay` then `evaluate --json` of one events file."""
    alerts = events.with_name(events.name.removesuffix(".jsonl") + ".alerts.jsonl")
    run([*COMMAND, "replay", str(events), "--alerts", str(alerts)])
    report: dict[str, Any] = json.loads(
        run([*COMMAND, "evaluate", str(alerts), "--truth", str(truth), "--json"])
    )
    return report


def row(label: str, report: dict[str, Any]) -> str:
    high = report["levels"]["high"]
    campaigns = " ".join(
        f"{name}={p['recall']:.2f}/{p['recall_within_1h']:.2f}/{p['recall_within_1h_of_first_event']:.2f}"
        for name, p in sorted(high["recall_by_population"].items())
    )
    noisy = " ".join(
        f"{name}:{p['alerted']}"
        for name, p in sorted(high["fp_by_population"].items())
        if p["alerted"]
    )
    critical = report["critical_on_benign"]["accounts"]
    recall, precision, own_hour = (
        "-" if (x := high[name]) is None else f"{x:.3f}"
        for name in ("recall", "precision", "recall_within_1h_of_first_event")
    )
    return (
        f"{label:<22} recall {recall}  precision {precision}  critical-on-benign {critical}"
        f"  <=1h of own start {own_hour}\n"
        f"{'':<22} named at high (all/<=1h of campaign/<=1h of own start): {campaigns or '-'}\n"
        f"{'':<22} benign at high: {noisy or 'none'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--scenarios", default="default,hydra,multipath,reseller,swarm")
    parser.add_argument("--seeds", default="1,7")
    parser.add_argument("--no-prompts", action="store_true")
    parser.add_argument("--input", type=Path, help="score this events file instead")
    parser.add_argument("--truth", type=Path, help="its ground truth (with --input)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    if args.input is not None:
        if args.truth is None:
            parser.error("--input needs --truth")
        print(row(args.input.name, score(args.input, args.truth)))
        return 0
    runs = [
        (scenario, int(seed))
        for scenario in args.scenarios.split(",")
        for seed in args.seeds.split(",")
    ]

    def one(item: tuple[str, int]) -> str:
        scenario, seed = item
        report = score(*simulated(scenario, seed, args.no_prompts))
        return row(f"{scenario} seed {seed}", report)

    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(one, runs):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
