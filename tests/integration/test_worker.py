"""The worker on the real broker: parity with replay, crash and broker restarts, poison
messages, labels, and two workers sharing partitions. Each test has its own topics and
consumer group on the session's broker."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest

from stream_detector.detector import Detector
from stream_detector.replay import replay

from .conftest import StartWorker
from .harness import (
    Deployment,
    alerts_by_id,
    checkpoints,
    eventually,
    expected_alerts,
    keyed,
    produce,
    read_topic,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def caught_up(deployment: Deployment, total: int) -> bool:
    """Whether the checkpoints cover `total` source records."""
    return sum((await checkpoints(deployment.bootstrap, deployment.changelog)).values()) >= total


def check_alerts(got: dict[str, list[dict[str, object]]], expected: dict[str, dict]) -> None:
    """Every expected alert is there, nothing else, and a repeated id repeats the same alert."""
    assert set(got) == set(expected), (
        f"missing {sorted(set(expected) - set(got))}, unexpected {sorted(set(got) - set(expected))}"
    )
    for alert_id, versions in got.items():
        assert all(v == expected[alert_id] for v in versions), alert_id


async def test_parity_with_replay(
    kafka_bootstrap: str,
    topic_suffix: str,
    start_worker: StartWorker,
    sim_lines: list[bytes],
    tmp_path: Path,
) -> None:
    """One partition, one worker: exactly the alert ids `replay` gives on the same file."""
    dep = Deployment(kafka_bootstrap, topic_suffix, partitions=1)
    worker = start_worker(dep, "w")
    worker.wait_ready()
    await produce(kafka_bootstrap, dep.events, keyed(sim_lines), 1)
    await eventually(lambda: caught_up(dep, len(sim_lines)), 120, "all events checkpointed")
    assert worker.stop() == 0

    replay_input = tmp_path / "events.jsonl"
    replay_input.write_bytes(b"\n".join(sim_lines) + b"\n")
    out = io.BytesIO()
    replay([str(replay_input)], out, Detector())
    replayed = {orjson.loads(line)["alert_id"] for line in out.getvalue().splitlines()}
    got = alerts_by_id(await read_topic(kafka_bootstrap, dep.alerts))
    assert replayed, "the simulated traffic should raise alerts"
    assert set(got) == replayed
    assert all(len(v) == 1 for v in got.values()), "a clean run emits each alert once"
    assert await read_topic(kafka_bootstrap, dep.dlq) == []


async def test_kill_9_mid_stream_and_restart(
    kafka_bootstrap: str,
    topic_suffix: str,
    start_worker: StartWorker,
    sim_lines: list[bytes],
    create_topics: Callable[[dict[str, int]], Awaitable[None]],
) -> None:
    """kill -9 while processing, restart on the same local state: state comes back, every
    alert is on the topic, and an alert emitted again (replayed events) is identical."""
    dep = Deployment(kafka_bootstrap, topic_suffix, partitions=2)
    await create_topics({dep.events: 2})
    await produce(kafka_bootstrap, dep.events, keyed(sim_lines), 2)
    expected = expected_alerts(await read_topic(kafka_bootstrap, dep.events))
    worker = start_worker(dep, "w")

    async def some_alerts() -> bool:
        return len(await read_topic(kafka_bootstrap, dep.alerts)) >= len(expected) // 4

    await eventually(some_alerts, 120, "a quarter of the alerts", every=0.1)
    await eventually(lambda: caught_up(dep, 1), 30, "a first checkpoint", every=0.1)
    worker.kill()
    assert not await caught_up(dep, len(sim_lines)), "the kill should come mid-stream"

    restarted = start_worker(dep, "w")  # same data dir: RocksDB plus the changelog's tail
    restarted.wait_ready()
    assert restarted.metric("stream_detector_state_recovered_accounts_total") > 0
    await eventually(lambda: caught_up(dep, len(sim_lines)), 120, "all events checkpointed")
    assert restarted.stop() == 0
    check_alerts(alerts_by_id(await read_topic(kafka_bootstrap, dep.alerts)), expected)
