"""`stream-detector replay`: the detector over JSON Lines files, without Kafka.

Inputs are read in the order given (``-`` is stdin, ``.gz`` is decompressed transparently), one
event per line. Rejected lines are counted by reason (and optionally written to ``--rejects``
like the worker's dead-letter topic); they never stop the run. Analyst labels from ``--labels``
are applied when event time reaches their ``ts``, as they would arrive on Kafka. Alerts go to
``--alerts`` (default stdout) as JSON Lines; a progress line (on a terminal) and the summary go
to stderr.

Exit codes: 0 when every input was read (rejected lines included); 2 when an input or the
labels file cannot be read (the readable inputs are still processed); 1 on a usage error.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

import orjson

from stream_detector import health, metrics
from stream_detector.config import ConfigError, DetectorConfig
from stream_detector.events import Rejection
from stream_detector.features import parse_features
from stream_detector.labels import Label, parse_label
from stream_detector.pipeline import Pipeline

log = logging.getLogger(__name__)

#: Rejected lines quoted in the summary (the rest are only counted).
EXAMPLES = 5


@dataclass
class ReplaySummary:
    """What one replay did, for the stderr summary and for callers."""

    lines: int = 0
    events: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    duplicates: int = 0
    late: int = 0
    labels: int = 0
    seconds: float = 0.0

    def render(self) -> str:
        """A short human summary (stderr)."""
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        out = [
            f"replay: {self.lines} lines in {self.seconds:.1f} s ({rate:,.0f} events/s): "
            f"{self.events} processed, {sum(self.rejected.values())} rejected, "
            f"{self.duplicates} duplicates, {self.late} late, {self.labels} labels",
        ]
        for reason, count in sorted(self.rejected.items()):
            out.append(f"  rejected {reason}: {count}")
        out.extend(f"  e.g. {example}" for example in self.examples)
        total = sum(self.alerts.values())
        out.append(f"  alerts: {total}")
        for (kind, severity), count in sorted(self.alerts.items()):
            out.append(f"    {kind} {severity}: {count}")
        out.extend(f"  unreadable input: {name}" for name in self.unreadable)
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "events": self.events,
            "rejected": dict(self.rejected),
            "duplicates": self.duplicates,
            "late": self.late,
            "labels": self.labels,
            "alerts": {f"{k}/{s}": n for (k, s), n in self.alerts.items()},
            "unreadable": self.unreadable,
            "seconds": round(self.seconds, 3),
        }


def open_input(name: str) -> BinaryIO:
    """A binary line source: ``-`` is stdin; gzip is recognised by its magic bytes."""
    if name == "-":
        return sys.stdin.buffer
    raw = open(name, "rb")  # noqa: SIM115 - closed by the caller's ExitStack
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def read_labels(path: str) -> list[Label]:
    """Analyst labels, in event-time order; bad lines are logged and skipped."""
    labels: list[Label] = []
    with ExitStack() as stack:
        source = stack.enter_context(open_input(path))
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                labels.append(parse_label(line))
            except Rejection as exc:
                log.warning("label rejected", extra={"file": path, "line": number, "why": str(exc)})
    labels.sort(key=lambda label: label.ts)
    return labels


class Progress:
    """A one-line progress display on a terminal; silent otherwise."""

    def __init__(self, stream: IO[str], total_bytes: int | None) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.total = total_bytes
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, lines: int, done_bytes: int | None) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.5:
            return
        self.last = now
        rate = lines / max(now - self.started, 1e-9)
        part = f"{lines:,} events  {rate:,.0f}/s"
        if self.total and done_bytes is not None:
            share = min(done_bytes / self.total, 1.0)
            bar = "#" * int(share * 30)
            part = f"[{bar:<30}] {share:4.0%}  " + part
        self.stream.write("\r" + part)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


class MetricsPublisher:
    """Publishes a replay's progress as the worker's Prometheus metrics (`--metrics-port`):
    counters advance by what happened since the last call, every few thousand lines."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()
        self._last = time.monotonic()

    def _delta(self, name: str, value: int) -> int:
        delta = value - self._seen[name]
        self._seen[name] = value
        return delta

    def publish(self, summary: ReplaySummary, pipeline: Pipeline) -> None:
        now = time.monotonic()
        detector = pipeline.detector
        stats = detector.stats
        metrics.observe_batch(self._delta("events", stats.events), now - self._last)
        self._last = now
        metrics.count_duplicates(self._delta("duplicates", stats.duplicates))
        metrics.count_late(self._delta("late", stats.late))
        for reason, count in summary.rejected.items():
            metrics.count_rejected(reason, self._delta(f"rejected/{reason}", count))
        for (kind, severity), count in pipeline.alerts.items():
            for _ in range(self._delta(f"alerts/{kind}/{severity}", count)):
                metrics.count_alert(kind, severity)
        metrics.observe_scores(detector.take_scores())
        metrics.set_tracked(detector.accounts_tracked, pipeline.stage.campaigns_tracked)


def _lines(
    names: list[str], summary: ReplaySummary, stack: ExitStack
) -> Iterator[tuple[str, BinaryIO]]:
    for name in names:
        try:
            source = stack.enter_context(open_input(name))
        except OSError as exc:
            log.error("cannot read input", extra={"input": name, "error": str(exc)})
            summary.unreadable.append(f"{name}: {exc.strerror or exc}")
            continue
        yield name, source


def replay(
    inputs: list[str],
    alerts_out: BinaryIO,
    detector: Pipeline,
    labels: list[Label] | None = None,
    rejects_out: BinaryIO | None = None,
    progress: Progress | None = None,
    publisher: MetricsPublisher | None = None,
) -> ReplaySummary:
    """Run `detector` (the account side and the campaign stage, evidence handed over in
    order) over `inputs` in order, writing alerts as JSON Lines to `alerts_out`."""
    summary = ReplaySummary()
    started = time.monotonic()
    pending = labels or []
    next_label = 0
    process = detector.process_features
    write = alerts_out.write
    with ExitStack() as stack:
        for name, source in _lines(inputs, summary, stack):
            raw = getattr(source, "raw", None) or getattr(source, "fileobj", None)
            number = 0
            try:
                for number, line in enumerate(source, 1):
                    if not line.strip():
                        continue
                    summary.lines += 1
                    try:
                        f = parse_features(line)
                    except Rejection as exc:
                        _reject(summary, rejects_out, name, number, exc, line)
                        continue
                    while next_label < len(pending) and pending[next_label].ts <= f.ts:
                        detector.apply_label(pending[next_label])
                        next_label += 1
                    for alert in process(f):
                        write(alert.to_json() + b"\n")
                    if summary.lines % 8192 == 0:
                        if progress is not None:
                            progress.update(summary.lines, raw.tell() if raw is not None else None)
                        if publisher is not None:
                            publisher.publish(summary, detector)
            except (OSError, EOFError) as exc:  # truncated or corrupt gzip, I/O error mid-file
                log.error(
                    "input ended abruptly", extra={"input": name, "line": number, "error": str(exc)}
                )
                summary.unreadable.append(f"{name}: unreadable after line {number}: {exc}")
    for label in pending[next_label:]:
        detector.apply_label(label)
    alerts_out.flush()
    stats = detector.detector.stats
    summary.events = stats.events
    summary.duplicates = stats.duplicates
    summary.late = stats.late
    summary.labels = stats.labels
    summary.alerts = Counter(detector.alerts)
    summary.seconds = time.monotonic() - started
    if progress is not None:
        progress.close()
    if publisher is not None:
        publisher.publish(summary, detector)
    return summary


def _reject(
    summary: ReplaySummary,
    rejects_out: BinaryIO | None,
    name: str,
    number: int,
    exc: Rejection,
    line: bytes,
) -> None:
    """Count a rejected line, quote the first few, and keep it like a dead-letter record."""
    summary.rejected[exc.reason.value] += 1
    if len(summary.examples) < EXAMPLES:
        summary.examples.append(f"{name}:{number}: {exc}")
    if rejects_out is not None:
        record = {
            "source": name,
            "line": number,
            "reason": exc.reason.value,
            "detail": exc.detail,
            "raw": line.decode("utf-8", "replace"),
        }
        rejects_out.write(orjson.dumps(record) + b"\n")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="run the detector over JSON Lines files (no Kafka)",
        description=(
            "Run the detector over API-call events in JSON Lines files, in input order, with "
            "no Kafka: the same decisions as the worker. '-' reads stdin; .gz is read "
            "transparently. Alerts are written as JSON Lines; a summary goes to stderr. Exit "
            "0 when all inputs were read (even with rejected lines), 2 when one was unreadable."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="JSON Lines file, .gz, or -")
    parser.add_argument("--alerts", metavar="PATH", help="write alerts here (default stdout)")
    parser.add_argument("--labels", metavar="PATH", help="analyst labels (JSON Lines) to apply")
    parser.add_argument("--rejects", metavar="PATH", help="write rejected lines with reasons")
    parser.add_argument(
        "--summary-json", metavar="PATH", help="also write the summary as JSON to PATH"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus /metrics (the worker's metrics) on 127.0.0.1:PORT while running",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = DetectorConfig.from_env()
    except ConfigError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 1
    labels: list[Label] = []
    unreadable_labels = None
    if args.labels:
        try:
            labels = read_labels(args.labels)
        except OSError as exc:
            unreadable_labels = f"{args.labels}: {exc.strerror or exc}"
    with ExitStack() as stack:
        try:
            alerts_out: BinaryIO = (
                stack.enter_context(open(args.alerts, "wb")) if args.alerts else sys.stdout.buffer
            )
            rejects_out = stack.enter_context(open(args.rejects, "wb")) if args.rejects else None
        except OSError as exc:
            print(f"replay: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
            return 2
        total = sum(os.path.getsize(n) for n in args.inputs if n != "-" and os.path.isfile(n))
        progress = Progress(sys.stderr, total or None)
        publisher = None
        if args.metrics_port is not None:
            server = health.serve(port=args.metrics_port)
            stack.callback(server.stop)
            health.set_ready(True)
            publisher = MetricsPublisher()
        summary = replay(
            args.inputs,
            alerts_out,
            Pipeline(config),
            labels,
            rejects_out,
            progress,
            publisher,
        )
    if unreadable_labels:
        summary.unreadable.append(unreadable_labels)
    print(summary.render(), file=sys.stderr)
    if args.summary_json:
        with open(args.summary_json, "wb") as out:
            out.write(orjson.dumps(summary.to_dict()))
    if summary.unreadable:
        for name in summary.unreadable:
            print(f"replay: error: cannot read {name}", file=sys.stderr)
        return 2
    return 0
