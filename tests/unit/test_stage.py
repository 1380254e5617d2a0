"""The campaign stage apart from the account side: snapshots, evidence on the wire, and
decisions that depend on the evidence sequence alone."""

from __future__ import annotations

import pickle
from types import SimpleNamespace
from typing import Any

import orjson

from stream_detector.config import DetectorConfig
from stream_detector.detector import Detector
from stream_detector.events import parse_event
from stream_detector.pipeline import Pipeline
from stream_detector.snapshot import AccountSnapshot
from stream_detector.stage import CampaignStage, LinkEvidence
from stream_detector.worker.records import StageCheckpoint, split_key
from stream_detector.worker.stage import StageState, decode_evidence, encode_evidence

from .builders import T0, event, harvester, hydra, multipath, person, run

HOUR = 3600.0


def evidence_of(events: list[dict]) -> list[LinkEvidence]:
    """The link evidence the account side emits over `events` (in time order)."""
    detector = Detector()
    out: list[LinkEvidence] = []
    for doc in sorted(events, key=lambda e: e["ts"]):
        detector.process(parse_event(orjson.dumps(doc)))
        out.extend(detector.take_evidence())
    return out


def test_snapshot_reads_like_the_account_state() -> None:
    detector = Detector()
    events = list(harvester("h1", T0, hours=5, per_hour=50))
    run(detector, events)
    state = detector._store.get("h1")
    assert state is not None
    snap = AccountSnapshot.of(state)
    back = AccountSnapshot.decode(snap.encode())
    last = events[-1]["ts"]
    for now in (last, last + HOUR, last + 5 * HOUR, last + 23.5 * HOUR, last + 30 * HOUR):
        for s in (snap, back):
            assert s.hourly_rate(now) == state.hourly_rate(now)
            assert s.recent_rate(now) == state.recent_rate(now)
    for name in AccountSnapshot.__slots__:
        if not name.startswith("_"):
            assert getattr(back, name) == getattr(snap, name), name
    assert snap.harvest and snap.n == state.n and snap.first_ts == T0


def test_evidence_survives_the_wire() -> None:
    for evidence in evidence_of(list(hydra("h", 5, T0, hours=1)))[:50]:
        key, value, partition = encode_evidence("e3", 1234, evidence, 1)
        offset, back = decode_evidence(value)
        assert (key, offset, partition) == (b"e3", 1234, 0)
        assert (back.account_id, back.ts, back.keys) == (
            evidence.account_id,
            evidence.ts,
            evidence.keys,
        )
        assert back.snapshot.encode() == evidence.snapshot.encode()


def test_stage_decisions_depend_only_on_the_evidence() -> None:
    """The stage over the evidence alone (handed over, or through the wire format) decides
    exactly what the in-process pipeline decides on the events."""
    events = list(hydra("h", 12, T0, hours=6))
    evidence = evidence_of(events)
    direct = CampaignStage()
    got = [a.to_dict() for e in evidence for a in direct.observe(e)]
    wired = StageState(0, CampaignStage(), None)
    records = [
        SimpleNamespace(key=k, value=v, offset=i, partition=0)
        for i, (k, v, _) in enumerate(
            encode_evidence("e0", i, e, 1) for i, e in enumerate(evidence)
        )
    ]
    through = [a.to_dict() for a in wired.process(records)]
    assert [strip(a) for a in got] == [strip(a) for a in through]
    from_stage = [
        strip(a.to_dict())
        for a in run(Pipeline(), events)
        if a.kind == "cluster" or a.reasons[0]["signal"] == "campaign_member"
    ]
    assert [strip(a) for a in got] == from_stage
    assert any(a["kind"] == "cluster" for a in got)


def strip(alert: dict) -> dict:
    return {k: v for k, v in alert.items() if k != "emitted_at"}


def test_repeated_evidence_is_skipped() -> None:
    """An account side that resumed from its checkpoint sends evidence again: same decisions."""
    evidence = evidence_of(list(hydra("h", 12, T0, hours=6)))
    encoded = [encode_evidence("e0", i, e, 1) for i, e in enumerate(evidence)]
    once = [(k, v) for k, v, _ in encoded]
    cut = len(once) // 2
    twice = once[:cut] + once[cut - 40 : cut] + once[cut:]

    def decide(pairs: list[tuple[bytes, bytes]]) -> list[str]:
        stage = StageState(0, CampaignStage(), None)
        records = [
            SimpleNamespace(key=k, value=v, offset=i, partition=0) for i, (k, v) in enumerate(pairs)
        ]
        return [a.alert_id for a in stage.process(records)]

    assert decide(twice) == decide(once) and decide(once)


def test_incremental_checkpoints_restore_the_same_stage() -> None:
    """A full export, then changes only, replayed in order onto a fresh stage: it decides
    what the stage that never stopped decides, and holds the same state."""
    events = list(hydra("h", 12, T0, hours=6)) + list(multipath("m", 6, T0 + 600, hours=6))
    events += list(harvester("x", T0, hours=6, per_hour=40))
    evidence = evidence_of(events)
    live = CampaignStage()
    base = live.export_state()
    changes: list[bytes] = []
    cut = 2 * len(evidence) // 3
    for i, e in enumerate(evidence[:cut]):
        live.observe(e)
        if i % 10 == 9:
            delta = live.export_changes()
            assert delta is not None
            changes.append(delta)
    delta = live.export_changes()
    assert delta is not None
    changes.append(delta)
    restored = CampaignStage()
    restored.import_state(base)
    for delta in changes:
        restored.apply_changes(delta)
    full = live.export_state()
    assert canonical(restored.export_state()) == canonical(full)
    rest = evidence[cut:]
    assert [strip(a.to_dict()) for e in rest for a in live.observe(e)] == [
        strip(a.to_dict()) for e in rest for a in restored.observe(e)
    ]
    # O(changes): one more account's evidence costs a few hundred bytes, not the whole state.
    one = evidence_of(list(harvester("y", T0 + 9 * HOUR, hours=0.05, per_hour=40)))[0]
    live.export_changes()
    live.observe(one)
    step = live.export_changes()
    assert step is not None and len(step) < 1500 < len(full)


def canonical(data: bytes) -> Any:
    """A stage export with its unordered maps sorted (their order decides nothing)."""
    doc = pickle.loads(data)
    linker = doc["linker"]
    return (
        doc["snapshots"],  # order matters: expiry
        sorted(doc["member_policy"].items()),
        list(linker["pending"].items()),  # FIFO
        list(linker["keys_of"].items()),  # expiry
        sorted((k, repr(g)) for k, g in linker["groups"].items()),
        sorted(linker["campaign_of"].items()),
        sorted((k, repr(c)) for k, c in linker["campaigns"].items()),
        doc["clock"],
        doc["since_expiry"],
    )


def test_stage_write_behind_is_a_base_and_deltas_and_restores_exactly() -> None:
    """Flushes write a base, then deltas, then a new base once the deltas outweigh it (the
    old deltas tombstoned); a stage restored from the compacted records after any flush
    decides exactly what the stage that never stopped decides."""
    events = list(hydra("h", 12, T0, hours=6)) + list(multipath("m", 6, T0 + 600, hours=6))
    events += list(harvester("x", T0, hours=6, per_hour=40))
    encoded = [encode_evidence("e0", i, e, 1) for i, e in enumerate(evidence_of(events))]
    records = [
        SimpleNamespace(key=k, value=v, offset=i, partition=0)
        for i, (k, v, _) in enumerate(encoded)
    ]
    expected = [a.alert_id for a in StageState(0, CampaignStage(), None).process(records)]
    store: dict[bytes, bytes] = {}  # the compacted changelog partition
    live = StageState(0, CampaignStage(), None)
    got: list[str] = []
    kinds: list[set[str]] = []
    step = 25
    for at in range(0, len(records), step):
        got += [a.alert_id for a in live.process(records[at : at + step])]
        flushed = live.flush_records()
        kinds.append({split_key(k)[1] for k, v in flushed if v is not None})
        for key, value in flushed:
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value
        if at // step % 3 == 1:  # a restart from the store now and then
            live = StageState.restore(0, DetectorConfig(), store.items())
    assert got == expected
    assert {"g", "h"} == kinds[0] and "d" in kinds[1] and "g" not in kinds[1]
    assert sum("g" in k for k in kinds) >= 2  # the deltas outgrew the base: a new one
    deltas = [k for k in store if split_key(k)[1] == "d"]
    named = StageCheckpoint.decode(store[b"0|h"]).deltas
    assert len(deltas) == sum(count for _, count, _ in named)  # the replaced ones are gone


def _newcomers(count: int, card: str | None = None, tokens: int = 200) -> list[dict[str, Any]]:
    """One call each of `count` new accounts without an org, each on its own card (or all on
    `card`), with answers of `tokens`."""
    return [
        event(
            0,
            f"new-{k}",
            T0 + k,
            account_created_ts=T0 - 60,
            payment_fingerprint=card or f"card-{k}",
            ip=f"10.{k // 250}.{k % 250}.1",
            output_tokens=tokens,
            prompt=f"what is a good name for a cat? ({k})",
        )
        for k in range(count)
    ]


def test_a_newcomers_card_alone_reaches_the_linker_only_if_a_campaign_pays_with_it() -> None:
    """Every new account without an org tells the stage its card at its first call. One that
    neither counts in its card's group nor could be drawn in by it leaves no trace: it would
    only thin out the group's share of harvesters, and at a million accounts cost memory."""
    pipeline = Pipeline()
    run(pipeline, _newcomers(3000))
    stage = pipeline.stage
    assert stage.stats.evidence == 3000
    state = stage.linker.export_state()
    assert not state["keys_of"] and not state["pending"]
    # On a campaign's own card, the same first call draws the account in.
    hydra_run = Pipeline()
    run(hydra_run, list(hydra("h", 12, T0, hours=3)))
    late = T0 + 3 * 3600.0
    run(hydra_run, [{**_newcomers(1, card="h-card-1")[0], "ts": late}])
    campaign_of = hydra_run.stage.linker.campaign_of
    assert campaign_of.get("new-0") == campaign_of["h-0"]


def test_replay_drops_the_change_record_the_worker_exports() -> None:
    """Without changes tracked (`replay`) the stage's record of what changed is dropped as it
    goes; with them (the worker's write-behind) nothing is dropped between exports."""
    newcomers = _newcomers(3000, tokens=900)  # substantial answers: full evidence, unique keys
    replayed, worker = Pipeline(), Pipeline(track_dirty=True)
    run(replayed, newcomers)
    run(worker, newcomers)
    dropped = pickle.loads(replayed.stage.export_changes() or b"")
    kept = pickle.loads(worker.stage.export_changes() or b"")
    assert len(dropped["linker"]["pending"]) < 1024 * 4
    assert len(kept["linker"]["pending"]) >= 3000


def test_a_harvesting_account_refreshes_its_snapshot_between_early_scorings() -> None:
    """At its 6th and 12th calls a harvest-like account sends its snapshot alone (no keys, so
    no group is evaluated on it): the minute masks that lock-step timing compares must span
    more than its first four calls; a person chatting sends only at its scorings."""
    harvesting = {e.snapshot.n: e.keys for e in evidence_of(list(harvester("h", T0, 1, 12)))}
    assert harvesting[6] == [] and harvesting[12] == []
    assert harvesting[4] and harvesting[8]  # its scorings send its keys
    chatting = {e.snapshot.n for e in evidence_of(list(person("p", T0, 2)))}
    assert 6 not in chatting and {4, 8} <= chatting


def test_a_harvesting_account_tells_its_groups_again_once_its_minute_mask_fills() -> None:
    """A call every five minutes: keys at its first calls and scorings (1-4, 8, 24), its
    snapshot alone at the 6th and 12th, and its keys once more at its first call 50 minutes
    after its first (the 11th), when its minute mask spans enough for lock-step; never again
    in between. The same calls as conversations do not send at 50 minutes."""
    calls = [{**c, "ip": "198.51.100.7"} for c in harvester("h", T0, 2, 12)]
    keyed = [e.snapshot.n for e in evidence_of(calls) if e.keys]
    assert keyed == [1, 2, 3, 4, 8, 11, 24]
    talking = [{**c, "conversation_turns": 3} for c in calls]
    assert [e.snapshot.n for e in evidence_of(talking) if e.keys] == [1, 2, 3, 4, 8, 24]
