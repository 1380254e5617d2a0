"""The detector's metrics: names, units, bounded labels and the batch API's arithmetic."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream_detector import metrics
from stream_detector.events import RejectReason


def sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def series_count() -> int:
    return sum(len(family.samples) for family in metrics.REGISTRY.collect())


def test_every_detector_metric_has_the_prefix_and_counters_end_in_total() -> None:
    text = generate_latest(metrics.REGISTRY).decode()
    families = list(text_string_to_metric_families(text))
    ours = [f for f in families if not f.name.startswith(("process_", "python_"))]
    assert len(ours) >= 20
    for family in ours:
        assert family.name.startswith("stream_detector_"), family.name
        if family.type == "counter":
            assert any(s.name == family.name + "_total" for s in family.samples), family.name
        assert "millis" not in family.name


def test_reject_reasons_are_precreated_and_unknown_reasons_refused() -> None:
    text = generate_latest(metrics.REGISTRY).decode()
    for reason in RejectReason:
        assert f'stream_detector_events_rejected_total{{reason="{reason.value}"}}' in text
    before = sample("stream_detector_events_rejected_total", reason="not_json")
    metrics.count_rejected(RejectReason.NOT_JSON, 3)
    metrics.count_rejected("not_json")
    assert sample("stream_detector_events_rejected_total", reason="not_json") == before + 4
    with pytest.raises(ValueError):
        metrics.count_rejected("acct-123")


def test_alert_labels_are_the_contract_vocabulary() -> None:
    before = sample("stream_detector_alerts_total", kind="cluster", severity="critical")
    metrics.count_alert("cluster", "critical")
    assert sample("stream_detector_alerts_total", kind="cluster", severity="critical") == before + 1
    with pytest.raises(ValueError):
        metrics.count_alert("account", "urgent")
    with pytest.raises(ValueError):
        metrics.count_model_update("maybe")


@pytest.mark.parametrize("n_events", [1, 7, 250])
def test_batch_histogram_matches_repeated_observe(n_events: int) -> None:
    """observe_repeated/observe_all must equal the client's own observe, bucket for bucket."""
    registry = CollectorRegistry()
    buckets = (0.001, 0.01, 0.1, 1.0)
    fast = metrics.BatchHistogram("fast_seconds", "x", buckets=buckets, registry=registry)
    slow = Histogram("slow_seconds", "x", buckets=buckets, registry=registry)
    rng = random.Random(n_events)
    values = [rng.choice([0.0005, 0.001, 0.002, 0.01, 0.5, 1.0, 3.0]) for _ in range(n_events)]
    fast.observe_all(values)
    fast.observe_repeated(0.01, n_events)
    for value in [*values, *[0.01] * n_events]:
        slow.observe(value)
    for le in ("0.001", "0.01", "0.1", "1.0", "+Inf"):
        assert registry.get_sample_value("fast_seconds_bucket", {"le": le}) == (
            registry.get_sample_value("slow_seconds_bucket", {"le": le})
        ), le
    assert registry.get_sample_value("fast_seconds_sum") == pytest.approx(
        registry.get_sample_value("slow_seconds_sum")
    )


def test_observe_batch_spreads_time_over_events() -> None:
    events = sample("stream_detector_events_total")
    count = sample("stream_detector_event_processing_seconds_count")
    total = sample("stream_detector_event_processing_seconds_sum")
    metrics.observe_batch(100, 0.002, now=1_800_000_000.0)
    assert sample("stream_detector_events_total") == events + 100
    assert sample("stream_detector_event_processing_seconds_count") == count + 100
    assert sample("stream_detector_event_processing_seconds_sum") == pytest.approx(total + 0.002)
    assert sample("stream_detector_last_event_timestamp_seconds") == 1_800_000_000.0
    metrics.observe_batch(0, 1.0)  # an empty batch is not an event
    assert sample("stream_detector_events_total") == events + 100


def test_event_lag_is_now_minus_ts() -> None:
    le_10 = sample("stream_detector_event_lag_seconds_bucket", le="10.0")
    le_60 = sample("stream_detector_event_lag_seconds_bucket", le="60.0")
    metrics.observe_event_times([995.0, 990.0, 950.0], now=1000.0)
    assert sample("stream_detector_event_lag_seconds_bucket", le="10.0") == le_10 + 2
    assert sample("stream_detector_event_lag_seconds_bucket", le="60.0") == le_60 + 3


def test_consumer_lag_per_partition_and_forgotten_on_revoke() -> None:
    metrics.set_consumer_lag("api-calls", 3, 42)
    assert sample("stream_detector_consumer_lag_messages", topic="api-calls", partition="3") == 42
    metrics.forget_partition("api-calls", 3)
    metrics.forget_partition("api-calls", 3)  # idempotent
    value = metrics.REGISTRY.get_sample_value(
        "stream_detector_consumer_lag_messages", {"topic": "api-calls", "partition": "3"}
    )
    assert value is None


def test_state_flush_and_recovery_counters() -> None:
    flushes = sample("stream_detector_state_flushes_total")
    accounts = sample("stream_detector_state_recovered_accounts_total")
    metrics.observe_flush(12, 0.03)
    metrics.observe_recovery(500, 1.5)
    assert sample("stream_detector_state_flushes_total") == flushes + 1
    assert sample("stream_detector_state_recovered_accounts_total") == accounts + 500


def test_build_info() -> None:
    info = metrics.REGISTRY.get_sample_value(
        "stream_detector_build_info",
        {"version": metrics.__version__, "python": metrics.platform.python_version()},
    )
    assert info == 1


def test_100k_distinct_accounts_do_not_grow_the_series_count() -> None:
    """Every metrics call a driver makes per account, for 100,000 accounts: no new series."""
    rng = random.Random(3)
    metrics.set_consumer_lag("api-calls", 0, 0)
    baseline = series_count()
    kinds_severities = [(k, s) for k in metrics.ALERT_KINDS for s in metrics.ALERT_SEVERITIES]
    now = 1_800_000_000.0
    for start in range(0, 100_000, 1_000):
        accounts = [f"acct-{i:06d}" for i in range(start, start + 1_000)]
        metrics.observe_batch(len(accounts), 0.01, now=now)
        metrics.observe_event_times([now - rng.random() * 30 for _ in accounts], now=now)
        metrics.observe_scores(rng.random() for _ in accounts)
        for _account in accounts[:50]:
            metrics.count_alert(*rng.choice(kinds_severities))
        metrics.count_rejected(rng.choice(list(RejectReason)))
        metrics.count_duplicates(3)
        metrics.count_late(1)
        metrics.set_tracked(start + len(accounts), start // 100)
        metrics.set_consumer_lag("api-calls", 0, rng.randrange(1000))
    assert series_count() == baseline
    text = generate_latest(metrics.REGISTRY).decode()
    assert "acct-" not in text
    assert sample("stream_detector_accounts_tracked") == 100_000
