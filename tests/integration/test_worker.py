"""The worker on the real broker: parity with replay, crash and broker restarts, poison
messages, labels, two workers sharing partitions, and a campaign whose accounts hash to
partitions of both workers found as one. Each test has its own topics and consumer group on
the session's broker."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from unit.builders import T0, hydra, lines  # tests/ is on sys.path (rootdir conftest)

from stream_detector.pipeline import Pipeline
from stream_detector.replay import replay

from .conftest import StartWorker
from .harness import (
    Deployment,
    alerts_by_id,
    checkpoints,
    crc32_partition,
    end_offsets,
    eventually,
    expected_alerts,
    keyed,
    produce,
    read_topic,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def expected_of(deployment: Deployment) -> dict[str, list[dict]]:
    """The alerts the deployment must have produced, from its source and evidence topics."""
    bootstrap = deployment.bootstrap
    return expected_alerts(
        await read_topic(bootstrap, deployment.events),
        await read_topic(bootstrap, deployment.evidence),
    )


async def caught_up(deployment: Deployment, total: int, stage: bool = True) -> bool:
    """Whether the checkpoints cover `total` source records, and (`stage`) the campaign
    stage's checkpoint all the link evidence sent."""
    bootstrap, changelog = deployment.bootstrap, deployment.changelog
    if sum((await checkpoints(bootstrap, changelog)).values()) < total:
        return False
    if not stage:
        return True
    stages = await checkpoints(bootstrap, changelog, kind="h")
    ends = await end_offsets(bootstrap, deployment.evidence)
    return all(stages.get(p, 0) >= end for p, end in ends.items())


def check_alerts(got: dict[str, list[dict[str, object]]], expected: dict[str, list[dict]]) -> None:
    """Every expected alert is there, nothing else, and a repeated id repeats one of the
    decisions that have that id."""
    assert set(got) == set(expected), (
        f"missing {sorted(set(expected) - set(got))}, unexpected {sorted(set(got) - set(expected))}"
    )
    for alert_id, versions in got.items():
        for version in versions:
            assert version in expected[alert_id], (
                f"{alert_id} differs: got {version}, expected one of {expected[alert_id]}"
            )


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
    replay([str(replay_input)], out, Pipeline())
    replayed = Counter(orjson.loads(line)["alert_id"] for line in out.getvalue().splitlines())
    got = alerts_by_id(await read_topic(kafka_bootstrap, dep.alerts))
    assert replayed, "the simulated traffic should raise alerts"
    assert set(got) == set(replayed)
    # A clean run emits each decision once: an id twice only where replay has it twice too
    # (an account alert decided by the account side and by the campaign stage alike).
    assert {k: len(v) for k, v in got.items()} == replayed
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
    expected = await expected_of(dep)
    worker = start_worker(dep, "w")

    async def some_alerts() -> bool:
        return len(await read_topic(kafka_bootstrap, dep.alerts)) >= len(expected) // 4

    await eventually(some_alerts, 120, "a quarter of the alerts", every=0.1)
    await eventually(lambda: caught_up(dep, 1, stage=False), 30, "a first checkpoint", every=0.1)
    worker.kill()
    assert not await caught_up(dep, len(sim_lines), stage=False), "the kill should come mid-stream"

    restarted = start_worker(dep, "w")  # same data dir: RocksDB plus the changelog's tail
    restarted.wait_ready()
    assert restarted.metric("stream_detector_state_recovered_accounts_total") > 0
    await eventually(lambda: caught_up(dep, len(sim_lines)), 120, "all events checkpointed")
    assert restarted.stop() == 0
    expected = await expected_of(dep)  # now with the campaign stage's, from the evidence
    check_alerts(alerts_by_id(await read_topic(kafka_bootstrap, dep.alerts)), expected)


def poison_messages(valid: bytes) -> list[tuple[bytes | None, bytes | None, str]]:
    """(key, value, expected reject reason) of messages that break the contract."""
    huge = b'{"event_id":"e1","ts":1793577604,"account_id":"a","prompt":"' + b"x" * 1_100_000
    return [
        (b"acct_poison", b"not json at all", "not_json"),
        (b"acct_poison", b'{"event_id": 5, "ts": 1, "account_id": "a"}', "wrong_type"),
        (b"acct_poison", b"[1, 2, 3]", "not_object"),
        (b"acct_poison", b'{"ts": 1793577604, "account_id": "a"}', "missing_field"),
        (b"acct_poison", b'{"event_id":"e","ts":-5,"account_id":"a"}', "bad_time"),
        (
            b"acct_poison",
            b'{"event_id":"e","ts":1,"account_id":"a","output_tokens":-1}',
            "out_of_range",
        ),
        (b"acct_poison", huge + b'"}', "too_large"),
        (b"acct_poison", b'{"event_id":"\xff\xfe","ts":1,"account_id":"a"}', "not_utf8"),
        (b"\xff\xfe\xfd", valid, "not_utf8"),  # a valid event under a key that is not UTF-8
        (b"acct_poison", None, "missing_field"),  # a tombstone
    ]


async def test_poison_messages_go_to_the_dead_letter_topic(
    kafka_bootstrap: str, topic_suffix: str, start_worker: StartWorker, sim_lines: list[bytes]
) -> None:
    """Rejects keep their original key and bytes, carry the reason, are counted, and the
    stream goes on around them."""
    dep = Deployment(kafka_bootstrap, topic_suffix, partitions=2)
    worker = start_worker(dep, "w")
    worker.wait_ready()
    valid = keyed(sim_lines[:6000])
    poison = poison_messages(sim_lines[0])
    mixed: list[tuple[bytes | None, bytes | None]] = []
    for i, (key, value) in enumerate(valid):
        mixed.append((key, value))
        if i % 500 == 250 and i // 500 < len(poison):
            mixed.append(poison[i // 500][:2])
    assert len(mixed) == len(valid) + len(poison)
    await produce(kafka_bootstrap, dep.events, mixed, 2)
    await eventually(lambda: caught_up(dep, len(mixed)), 120, "all messages checkpointed")

    dead = await read_topic(kafka_bootstrap, dep.dlq)
    got = sorted((r.key or b"", r.value or b"", dict(r.headers)["reason"].decode()) for r in dead)
    assert got == sorted((k or b"", v or b"", reason) for k, v, reason in poison)
    for record in dead:
        headers = dict(record.headers)
        assert headers["source.topic"] == dep.events.encode()
        assert int(headers["source.partition"]) == record.partition
        assert headers["detail"]
    for reason in {reason for _, _, reason in poison}:
        count = sum(1 for _, _, r in poison if r == reason)
        assert worker.metric("stream_detector_events_rejected_total", f'reason="{reason}"') == count
    assert worker.metric("stream_detector_dlq_messages_total") == len(poison)
    assert worker.stop() == 0
    expected = await expected_of(dep)
    check_alerts(alerts_by_id(await read_topic(kafka_bootstrap, dep.alerts)), expected)


async def test_broker_restart_mid_stream(
    kafka_bootstrap: str,
    kafka_broker: Any,
    topic_suffix: str,
    start_worker: StartWorker,
    sim_lines: list[bytes],
) -> None:
    """The broker goes away and comes back (same address): the worker reconnects and
    nothing is lost."""
    dep = Deployment(kafka_bootstrap, topic_suffix, partitions=2)
    worker = start_worker(dep, "w")
    worker.wait_ready()
    half = len(sim_lines) // 2
    await produce(kafka_bootstrap, dep.events, keyed(sim_lines[:half]), 2)
    await eventually(lambda: caught_up(dep, half), 120, "the first half checkpointed")
    kafka_broker.stop()
    kafka_broker.start()
    assert kafka_broker.bootstrap == kafka_bootstrap
    await produce(kafka_bootstrap, dep.events, keyed(sim_lines[half:]), 2)
    await eventually(lambda: caught_up(dep, len(sim_lines)), 180, "all events checkpointed")
    assert worker.proc is not None and worker.proc.poll() is None, worker.tail()
    assert worker.stop() == 0
    expected = await expected_of(dep)
    check_alerts(alerts_by_id(await read_topic(kafka_bootstrap, dep.alerts)), expected)


async def test_two_workers_share_partitions_and_survive_one_leaving(
    kafka_bootstrap: str, topic_suffix: str, start_worker: StartWorker, sim_lines: list[bytes]
) -> None:
    """Two workers on four partitions split the work; when one leaves, the other takes its
    partitions over from the changelog and the alerts stay exactly right."""
    dep = Deployment(kafka_bootstrap, topic_suffix, partitions=4)
    first = start_worker(dep, "a")
    first.wait_ready()
    second = start_worker(dep, "b")
    second.wait_ready()
    half = len(sim_lines) // 2
    await produce(kafka_bootstrap, dep.events, keyed(sim_lines[:half]), 4)
    await eventually(lambda: caught_up(dep, half), 120, "the first half checkpointed")
    shares = [w.metric("stream_detector_events_total") for w in (first, second)]
    assert all(share > 0 for share in shares), f"both workers process events: {shares}"
    assert sum(shares) >= half - 200  # duplicates in the file are counted once

    assert second.stop() == 0
    await produce(kafka_bootstrap, dep.events, keyed(sim_lines[half:]), 4)
    await eventually(lambda: caught_up(dep, len(sim_lines)), 180, "all events checkpointed")
    assert first.metric("stream_detector_state_recovered_accounts_total") > 0
    assert first.stop() == 0
    expected = await expected_of(dep)
    check_alerts(alerts_by_id(await read_topic(kafka_bootstrap, dep.alerts)), expected)


async def test_labels_apply_once_across_restarts(
    kafka_bootstrap: str, topic_suffix: str, start_worker: StartWorker, sim_lines: list[bytes]
) -> None:
    """Analyst labels reach the detector, their positions are checkpointed with the state,
    and a restarted worker does not learn the same label twice."""
    dep = Deployment(kafka_bootstrap, topic_suffix, partitions=1)
    worker = start_worker(dep, "w")
    worker.wait_ready()
    await produce(kafka_bootstrap, dep.events, keyed(sim_lines[:3000]), 1)
    account = orjson.loads(sim_lines[0])["account_id"]
    label = orjson.dumps({"account_id": account, "label": "benign", "ts": 1793577700})
    await produce(kafka_bootstrap, dep.labels, [(None, b"garbage"), (None, label)], 1)
    benign = ("stream_detector_model_updates_total", 'label="benign"')

    async def applied() -> bool:
        return worker.metric(*benign) == 1

    await eventually(applied, 60, "the label applied")
    assert worker.stop() == 0
    restarted = start_worker(dep, "w")
    restarted.wait_ready()
    await asyncio.sleep(2)  # time to (wrongly) re-read the labels topic
    assert restarted.metric(*benign) == 0
    await produce(kafka_bootstrap, dep.labels, [(None, label)], 1)

    async def applied_again() -> bool:
        return restarted.metric(*benign) == 1

    await eventually(applied_again, 60, "the new label applied")
    assert restarted.stop() == 0


async def test_campaign_across_partitions_and_workers_is_one_campaign(
    kafka_bootstrap: str, topic_suffix: str, start_worker: StartWorker
) -> None:
    """Two workers, four partitions, a hydra campaign whose accounts hash to every partition:
    the link evidence of both workers meets in one campaign stage, which names it as ONE
    campaign (one cluster subject naming members from several partitions) and flags each
    member at high; everything the workers emitted is what the account sides and a fresh
    stage over the evidence topic decide. (How many members the first high cluster alert
    names depends on how the partitions' evidence interleaves; later members are named by
    their member alerts.)"""
    dep = Deployment(kafka_bootstrap, topic_suffix, partitions=4)
    first = start_worker(dep, "a")
    first.wait_ready()
    second = start_worker(dep, "b")
    second.wait_ready()
    members = {f"xp-{k}" for k in range(12)}
    partitions = {crc32_partition(m.encode(), 4) for m in members}
    assert partitions == {0, 1, 2, 3}, "the campaign should span every partition"
    source = lines(list(hydra("xp", 12, T0, hours=6))).splitlines()
    await produce(kafka_bootstrap, dep.events, keyed(source), 4)
    await eventually(lambda: caught_up(dep, len(source)), 120, "events and evidence checkpointed")
    shares = [w.metric("stream_detector_events_total") for w in (first, second)]
    assert all(share > 0 for share in shares), f"both workers process events: {shares}"
    assert first.stop() == 0 and second.stop() == 0

    got = alerts_by_id(await read_topic(kafka_bootstrap, dep.alerts))
    alerts = [versions[0] for versions in got.values()]
    clusters = [a for a in alerts if a["kind"] == "cluster"]
    assert len({a["subject"] for a in clusters}) == 1, clusters
    top = max(clusters, key=lambda a: (a["score"], a["accounts_total"]))
    assert top["severity"] in ("high", "critical")
    # It is high as soon as the linked evidence suffices (a few members in), whatever the
    # interleaving of the partitions' evidence; later members are named by member alerts.
    # (Which members it names first, and so from which partitions, is that interleaving's:
    # the members from every partition are named by the member alerts below.)
    assert top["accounts_total"] >= 4 and set(top["accounts"]) <= members
    flagged = {
        a["subject"]
        for a in alerts
        if a["kind"] == "account"
        and a["severity"] == "high"
        and a["reasons"][0]["signal"] == "campaign_member"
    }
    assert flagged == members, "every member, on any partition, named as a campaign member"
    assert not [a for a in alerts if a["kind"] == "account" and a["severity"] == "critical"]
    check_alerts(got, await expected_of(dep))


async def test_evidence_sharded_over_two_stages(
    kafka_bootstrap: str, topic_suffix: str, start_worker: StartWorker
) -> None:
    """`STREAM_DETECTOR_EVIDENCE_PARTITIONS=2`: an account's evidence goes to the stage of its
    card's shard, so a hydra paying with two cards whose shards differ is found by both
    stages, each naming its card's accounts (the documented cost of sharding: two cluster
    subjects instead of one), and every member is flagged; what the workers emitted is what
    a fresh stage per evidence partition decides over its partition."""
    dep = Deployment(kafka_bootstrap, topic_suffix, partitions=4)
    first = start_worker(dep, "a", STREAM_DETECTOR_EVIDENCE_PARTITIONS="2")
    first.wait_ready()
    second = start_worker(dep, "b", STREAM_DETECTOR_EVIDENCE_PARTITIONS="2")
    second.wait_ready()
    members = {f"xs-{k}" for k in range(12)}
    source = lines(list(hydra("xs", 12, T0, hours=6))).splitlines()
    await produce(kafka_bootstrap, dep.events, keyed(source), 4)
    await eventually(lambda: caught_up(dep, len(source)), 120, "events and evidence checkpointed")
    assert first.stop() == 0 and second.stop() == 0

    evidence = await read_topic(kafka_bootstrap, dep.evidence)
    assert {r.partition for r in evidence} == {0, 1}, "the two cards' shards differ"
    got = alerts_by_id(await read_topic(kafka_bootstrap, dep.alerts))
    alerts = [versions[0] for versions in got.values()]
    clusters = {a["subject"]: a for a in alerts if a["kind"] == "cluster"}
    assert len(clusters) == 2, list(clusters)
    for cluster in clusters.values():  # each shard names the accounts of its card
        assert {int(m.split("-")[1]) % 2 for m in cluster["accounts"]} in ({0}, {1})
    flagged = {
        a["subject"]
        for a in alerts
        if a["kind"] == "account" and a["reasons"][0]["signal"] == "campaign_member"
    }
    assert flagged == members
    check_alerts(got, await expected_of(dep))
