"""`stream-detector simulate`: labelled synthetic gateway traffic, streamed to JSON Lines."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import datetime
from pathlib import Path

from stream_detector.simulation.benign import Source
from stream_detector.simulation.scenarios import SCENARIOS, build, describe
from stream_detector.simulation.traffic import Window, rfc3339
from stream_detector.simulation.world import World
from stream_detector.simulation.writer import Written, merge, open_output, truth_path, write_truth

log = logging.getLogger(__name__)

DEFAULT_START = "2026-11-02T00:00:00Z"  # a Monday: two working days follow

EPILOG = f"""\
{describe()}

Output: contract events as JSON Lines in event-time order (PATH ending .gz is gzip), except
~1% delivered up to 20 s late and ~0.3% delivered twice with the same event_id, as gateways do.
Ground truth beside it, PATH without .gz/.jsonl plus .truth.jsonl: one line per account
{{"account_id", "population", "campaign" (id or null), "attack", "first_ts"}}, then one per
campaign {{"campaign", "population", "start_ts", "accounts"}}. The same arguments give the
same bytes. The new model ("claude-opus-5") is released 55% of the way through the window.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `simulate` sub-command."""
    parser = subparsers.add_parser(
        "simulate",
        help="write synthetic gateway traffic with ground truth",
        description=(
            "Write realistic, seeded API-call events of benign populations (including hard "
            "look-alikes) and distillation campaigns, with ground truth for `evaluate`."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", choices=tuple(SCENARIOS), default="default")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply account counts (default 1.0)"
    )
    parser.add_argument("--hours", type=float, default=48.0, help="simulated span (default 48)")
    parser.add_argument(
        "--start", default=DEFAULT_START, help=f"RFC 3339 start time (default {DEFAULT_START})"
    )
    parser.add_argument(
        "--no-prompts", action="store_true", help="omit prompt text (a no-logging policy)"
    )
    parser.add_argument(
        "-o", "--output", required=True, type=Path, help="events file (.jsonl[.gz])"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate, write events and truth, print a summary on stderr."""
    try:
        parsed = datetime.fromisoformat(args.start)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        print(
            f"simulate: --start is not an RFC 3339 time with an offset: {args.start!r}",
            file=sys.stderr,
        )
        return 2
    start = parsed.timestamp()
    if args.hours <= 0 or args.scale <= 0:
        print("simulate: --hours and --scale must be positive", file=sys.stderr)
        return 2
    end = start + args.hours * 3600.0
    window = Window(start, end, start + 0.55 * (end - start))
    world, sources = build(SCENARIOS[args.scenario], args.seed, args.scale, window)
    if args.no_prompts:
        sources = [_without_prompts(s) for s in sources]
    began, cpu = time.perf_counter(), time.process_time()
    progress = _Progress(window) if sys.stderr.isatty() else None
    try:
        with open_output(args.output) as out:
            written = merge(sources, out, args.seed, progress)
        truth = truth_path(args.output)
        campaigns = write_truth(truth, world, written)
    except OSError as exc:
        print(f"simulate: cannot write: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu
    if progress is not None:
        print(file=sys.stderr)
    _summary(args, world, written, campaigns, truth, elapsed, cpu)
    return 0


def _without_prompts(source: Source) -> Source:
    for ts, event in source:
        event.pop("prompt", None)
        yield ts, event


class _Progress:
    """A one-line progress display on a terminal, refreshed at most twice a second."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.began = time.perf_counter()
        self.shown = 0.0

    def __call__(self, written: Written, now: float) -> None:
        wall = time.perf_counter()
        if wall - self.shown < 0.5:
            return
        self.shown = wall
        share = (now - self.window.start) / (self.window.end - self.window.start)
        rate = written.events / max(wall - self.began, 1e-9)
        sys.stderr.write(
            f"\rsimulate: {written.events:,} events, {rfc3339(now)[:16]}Z ({share:4.0%}), "
            f"{rate:,.0f} events/s "
        )
        sys.stderr.flush()


def _summary(
    args: argparse.Namespace,
    world: World,
    written: Written,
    campaigns: dict[str, list[str]],
    truth: Path,
    elapsed: float,
    cpu: float,
) -> None:
    per_population: dict[str, list[int]] = {}
    for acct in world.accounts:
        seen = written.seen.get(acct.account_id)
        if seen is not None:
            row = per_population.setdefault(acct.population, [0, 0])
            row[0] += 1
            row[1] += int(seen[1])
    attack = sum(len(m) for m in campaigns.values())
    rate = written.events / max(elapsed, 1e-9)
    lines = [
        f"simulate: scenario {args.scenario}, seed {args.seed}, scale {args.scale}, "
        f"{args.hours:g} h from {args.start}",
        f"  {written.events:,} events ({written.duplicates:,} duplicate deliveries, "
        f"{written.late:,} late), {written.bytes / 1e6:,.1f} MB uncompressed",
        f"  {len(written.seen):,} accounts: {len(written.seen) - attack:,} benign, {attack:,} "
        f"in {len(campaigns)} campaigns",
        f"  {elapsed:.1f} s, {rate:,.0f} events/s ({written.events / max(cpu, 1e-9):,.0f} per CPU "
        "second)",
        f"  events: {args.output}",
        f"  truth:  {truth}",
        "  population       accounts     events",
    ]
    lines += [f"  {name:<14} {a:>10,} {e:>10,}" for name, (a, e) in per_population.items()]
    print("\n".join(lines), file=sys.stderr)
    log.info(
        "simulated",
        extra={"events": written.events, "accounts": len(written.seen), "seconds": elapsed},
    )
