"""The detector's own Prometheus metrics, in a dedicated registry.

Why not Faust's bundled Prometheus sensor: it breaks Prometheus naming (no application prefix,
milliseconds, ``total_`` prefixes). Everything here follows the conventions instead: one prefix
(``stream_detector_``), base units (seconds, bytes), ``_total`` on counters, histograms where
aggregation across workers matters.

Cardinality is bounded by construction: the only labels are small fixed vocabularies (reject
reason, alert kind and severity, label verdict) and Kafka topic/partition. No account id, IP or
other personal or unbounded value is ever a label; the helpers below refuse unknown label values.

Drivers (the Faust worker, ``replay``) call the helper functions once per micro-batch, so the
cost per event stays a few arithmetic operations. ``stream_detector.health`` serves the registry.
"""

from __future__ import annotations

import platform
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from contextlib import suppress

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from stream_detector import __version__
from stream_detector.events import RejectReason

#: Alert kinds and severities of the contract (§2): the only values their labels may take.
ALERT_KINDS = ("account", "cluster")
ALERT_SEVERITIES = ("low", "medium", "high", "critical")
#: Analyst verdicts (contract §3) that update the model.
LABEL_VERDICTS = ("attack", "benign")

#: The registry every metric below lives in (and the one the HTTP endpoint serves), so tests and
#: other libraries' default-registry metrics never mix with the detector's.
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)


class BatchHistogram(Histogram):
    """A histogram that takes many observations in one call.

    Drivers measure a micro-batch, not each event; observing the batch's per-event average once
    per event would cost a Python loop per event. This adds ``count`` observations with one
    increment per touched bucket. It uses the client's private bucket list (pinned ``<1``); the
    unit tests compare its exposition with ``observe`` so an incompatible client fails loudly.
    """

    def observe_repeated(self, value: float, count: int) -> None:
        """Record ``count`` observations of ``value``."""
        if count <= 0:
            return
        self._raise_if_not_observable()
        self._sum.inc(value * count)
        index = bisect_left(self._upper_bounds, value)
        if index < len(self._buckets):
            self._buckets[index].inc(count)

    def observe_all(self, values: Iterable[float]) -> None:
        """Record each of ``values``, incrementing each touched bucket once: sorted (in C),
        then one bisection per bucket, not a Python step per value."""
        self._raise_if_not_observable()
        ordered = sorted(values)
        if not ordered:
            return
        self._sum.inc(sum(ordered))
        below = 0
        for bound, bucket in zip(self._upper_bounds, self._buckets, strict=True):
            upto = bisect_right(ordered, bound)  # values <= bound, as `observe` counts them
            if upto > below:
                bucket.inc(upto - below)
                below = upto


#: Latency buckets (seconds) for per-event processing time: from a microsecond to a second.
_PROCESSING_BUCKETS = (
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.1, 1.0,
)  # fmt: skip
#: Event-time lag buckets (seconds): sub-second delivery up to a day behind.
_LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 21600, 86400)
#: Flush and recovery duration buckets (seconds).
_STATE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

EVENTS = Counter(
    "stream_detector_events",
    "Valid API-call events processed (duplicates and late events included).",
    registry=REGISTRY,
)
EVENTS_REJECTED = Counter(
    "stream_detector_events_rejected",
    "Events rejected for breaking the contract, by named reason.",
    ["reason"],
    registry=REGISTRY,
)
EVENTS_LATE = Counter(
    "stream_detector_events_late",
    "Events later than the allowed lateness for their account.",
    registry=REGISTRY,
)
EVENTS_DUPLICATE = Counter(
    "stream_detector_events_duplicate",
    "Events whose event_id was already seen (redelivery, replay overlap); counted once.",
    registry=REGISTRY,
)
EVENT_PROCESSING_SECONDS = BatchHistogram(
    "stream_detector_event_processing_seconds",
    "Processing time per event: each micro-batch's time divided over its events.",
    buckets=_PROCESSING_BUCKETS,
    registry=REGISTRY,
)
EVENT_LAG_SECONDS = BatchHistogram(
    "stream_detector_event_lag_seconds",
    "Event-time lag: wall-clock time at processing minus the event's ts.",
    buckets=_LAG_BUCKETS,
    registry=REGISTRY,
)
LAST_EVENT_TIMESTAMP = Gauge(
    "stream_detector_last_event_timestamp_seconds",
    "Wall-clock Unix time at which the last event was processed (stall detection).",
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "stream_detector_consumer_lag_messages",
    "Messages between the consumer's position and the partition's high watermark.",
    ["topic", "partition"],
    registry=REGISTRY,
)
LINK_EVIDENCE_SENT = Counter(
    "stream_detector_link_evidence_sent",
    "Link evidence records the account side sent to the campaign stage's topic.",
    registry=REGISTRY,
)
LINK_EVIDENCE_PROCESSED = Counter(
    "stream_detector_link_evidence_processed",
    "Link evidence records the campaign stage has taken in (redeliveries it skipped too).",
    registry=REGISTRY,
)
DLQ_MESSAGES = Counter(
    "stream_detector_dlq_messages",
    "Rejected events written to the dead-letter topic.",
    registry=REGISTRY,
)
ALERTS = Counter(
    "stream_detector_alerts",
    "Alerts emitted, by kind (account or cluster) and severity.",
    ["kind", "severity"],
    registry=REGISTRY,
)
SCORES = BatchHistogram(
    "stream_detector_score",
    "Detector scores (0..1) computed for subjects whose evidence changed.",
    buckets=tuple(round(0.05 * i, 2) for i in range(1, 21)),
    registry=REGISTRY,
)
ACCOUNTS_TRACKED = Gauge(
    "stream_detector_accounts_tracked",
    "Accounts currently held in per-account state.",
    registry=REGISTRY,
)
CAMPAIGNS_TRACKED = Gauge(
    "stream_detector_campaigns_tracked",
    "Candidate campaigns (linked account groups) currently held in state.",
    registry=REGISTRY,
)
MODEL_UPDATES = Counter(
    "stream_detector_model_updates",
    "Online model updates from analyst labels, by verdict.",
    ["label"],
    registry=REGISTRY,
)
STATE_FLUSHES = Counter(
    "stream_detector_state_flushes",
    "Write-behind flushes of dirty per-account state to the changelog.",
    registry=REGISTRY,
)
STATE_FLUSHED_ACCOUNTS = Counter(
    "stream_detector_state_flushed_accounts",
    "Account snapshots written by state flushes.",
    registry=REGISTRY,
)
STATE_FLUSH_SECONDS = Histogram(
    "stream_detector_state_flush_seconds",
    "Duration of one state flush.",
    buckets=_STATE_BUCKETS,
    registry=REGISTRY,
)
STATE_RECOVERIES = Counter(
    "stream_detector_state_recoveries",
    "State recoveries from the changelog (at start and on partition assignment).",
    registry=REGISTRY,
)
STATE_RECOVERED_ACCOUNTS = Counter(
    "stream_detector_state_recovered_accounts",
    "Account snapshots restored from the changelog.",
    registry=REGISTRY,
)
STATE_RECOVERY_SECONDS = Histogram(
    "stream_detector_state_recovery_seconds",
    "Duration of one state recovery.",
    buckets=_STATE_BUCKETS,
    registry=REGISTRY,
)
WORKER_UP = Gauge(
    "stream_detector_worker_up",
    "1 while the worker process is running its event loop.",
    registry=REGISTRY,
)
WORKER_READY = Gauge(
    "stream_detector_worker_ready",
    "1 once state is recovered and the worker processes events (the /readyz answer).",
    registry=REGISTRY,
)
BUILD = Info(
    "stream_detector_build",
    "Version of the detector and of the Python running it.",
    registry=REGISTRY,
)
BUILD.info({"version": __version__, "python": platform.python_version()})

# Pre-create every labelled series of a fixed vocabulary at 0, so rates and ratios exist from
# the first scrape and the series count never depends on traffic.
for _reason in RejectReason:
    EVENTS_REJECTED.labels(reason=_reason.value)
for _kind in ALERT_KINDS:
    for _severity in ALERT_SEVERITIES:
        ALERTS.labels(kind=_kind, severity=_severity)
for _verdict in LABEL_VERDICTS:
    MODEL_UPDATES.labels(label=_verdict)


def observe_batch(n_events: int, seconds: float, now: float | None = None) -> None:
    """Count a processed micro-batch of ``n_events`` that took ``seconds`` in all."""
    if n_events <= 0:
        return
    EVENTS.inc(n_events)
    EVENT_PROCESSING_SECONDS.observe_repeated(seconds / n_events, n_events)
    LAST_EVENT_TIMESTAMP.set(time.time() if now is None else now)


def observe_event_times(event_ts: Iterable[float], now: float | None = None) -> None:
    """Record the event-time lag (``now`` − ``ts``) of each processed event."""
    wall = time.time() if now is None else now
    EVENT_LAG_SECONDS.observe_all([wall - ts for ts in event_ts])


def count_rejected(reason: RejectReason | str, n: int = 1) -> None:
    """Count ``n`` events rejected for ``reason`` (a `RejectReason` value; others are refused)."""
    EVENTS_REJECTED.labels(reason=RejectReason(reason).value).inc(n)


def count_late(n: int = 1) -> None:
    """Count ``n`` events later than the allowed lateness."""
    EVENTS_LATE.inc(n)


def count_duplicates(n: int = 1) -> None:
    """Count ``n`` events whose ``event_id`` was already seen."""
    EVENTS_DUPLICATE.inc(n)


def count_dlq(n: int = 1) -> None:
    """Count ``n`` messages written to the dead-letter topic."""
    DLQ_MESSAGES.inc(n)


def count_alert(kind: str, severity: str) -> None:
    """Count one emitted alert; ``kind`` and ``severity`` must be the contract's values."""
    if kind not in ALERT_KINDS or severity not in ALERT_SEVERITIES:
        raise ValueError(f"unknown alert kind/severity: {kind!r}/{severity!r}")
    ALERTS.labels(kind=kind, severity=severity).inc()


def observe_scores(scores: Iterable[float]) -> None:
    """Record detector scores (each in [0, 1])."""
    SCORES.observe_all(scores)


def set_tracked(accounts: int, campaigns: int | None = None) -> None:
    """Publish how many accounts (and, when known, campaigns) are held in state."""
    ACCOUNTS_TRACKED.set(accounts)
    if campaigns is not None:
        CAMPAIGNS_TRACKED.set(campaigns)


def set_consumer_lag(topic: str, partition: int, lag: int) -> None:
    """Publish the consumer lag of one assigned partition (messages)."""
    CONSUMER_LAG.labels(topic=topic, partition=str(partition)).set(max(lag, 0))


def forget_partition(topic: str, partition: int) -> None:
    """Drop a revoked partition's lag series so a rebalance does not leave a stale value."""
    with suppress(KeyError):
        CONSUMER_LAG.remove(topic, str(partition))


def count_evidence(sent: int = 0, processed: int = 0) -> None:
    """Count link evidence sent by the account side and taken in by the campaign stage (their
    difference, summed over workers, is the stage's backlog)."""
    if sent:
        LINK_EVIDENCE_SENT.inc(sent)
    if processed:
        LINK_EVIDENCE_PROCESSED.inc(processed)


def count_model_update(label: str) -> None:
    """Count one model update from an analyst label (``attack`` or ``benign``)."""
    if label not in LABEL_VERDICTS:
        raise ValueError(f"unknown label verdict: {label!r}")
    MODEL_UPDATES.labels(label=label).inc()


def observe_flush(n_accounts: int, seconds: float) -> None:
    """Count one write-behind flush of ``n_accounts`` snapshots taking ``seconds``."""
    STATE_FLUSHES.inc()
    STATE_FLUSHED_ACCOUNTS.inc(n_accounts)
    STATE_FLUSH_SECONDS.observe(seconds)


def observe_recovery(n_accounts: int, seconds: float) -> None:
    """Count one changelog recovery restoring ``n_accounts`` snapshots in ``seconds``."""
    STATE_RECOVERIES.inc()
    STATE_RECOVERED_ACCOUNTS.inc(n_accounts)
    STATE_RECOVERY_SECONDS.observe(seconds)
