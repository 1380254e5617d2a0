"""The worker's state-record format and partition bookkeeping, without a broker."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import pytest
from unit.builders import T0, event, harvester  # tests/ is on sys.path (rootdir conftest)

from stream_detector.config import DetectorConfig
from stream_detector.worker.partition import PartitionState
from stream_detector.worker.records import (
    ACCOUNT,
    ACCOUNTS,
    CHECKPOINT,
    CHUNK_BYTES,
    FORMAT_VERSION,
    SHARED,
    Checkpoint,
    RecordFormatError,
    account_key,
    accounts_key,
    assemble,
    checkpoint_key,
    chunked,
    decode_accounts,
    digest,
    encode_accounts,
    encode_chunk,
    shared_key,
    split_key,
)


@dataclass
class Record:
    """The fields of a consumer record `PartitionState.process` reads."""

    offset: int
    key: bytes | None
    value: bytes | None
    topic: str = "api-calls"
    partition: int = 0


def records(docs: Iterable[dict[str, object]], start: int = 0) -> list[Record]:
    out = []
    for i, doc in enumerate(docs, start):
        out.append(Record(i, str(doc["account_id"]).encode(), orjson.dumps(doc)))
    return out


def traffic(n: int, accounts: int) -> list[dict[str, object]]:
    """`n` events over `accounts` accounts in turn, a second apart."""
    return [event(i, f"acct-{i % accounts}", T0 + i) for i in range(n)]


class Store(dict[bytes, bytes]):
    """A local store as the engine leaves it: records applied in order, None deletes."""

    def apply(self, written: list[tuple[bytes, bytes | None]]) -> None:
        for key, value in written:
            if value is None:
                self.pop(key, None)
            else:
                self[key] = value


def exports(state: PartitionState, accounts: Iterable[str]) -> dict[str, bytes | None]:
    return {a: state.detector.export_account(a) for a in accounts}


def test_keys_round_trip_with_any_account_id() -> None:
    assert split_key(account_key(3, "acct|with|bars")) == (3, ACCOUNT, "acct|with|bars")
    assert split_key(accounts_key(3, 17, 2)) == (3, ACCOUNTS, "17|2")
    assert split_key(shared_key(12, 1, 7)) == (12, SHARED, "1|7")
    assert split_key(checkpoint_key(0)) == (0, CHECKPOINT, "")
    with pytest.raises(RecordFormatError):
        split_key(b"x|a|y")


def test_shared_state_chunks_reassemble_and_are_verified() -> None:
    data = bytes(range(256)) * (CHUNK_BYTES // 100)
    parts = chunked(data)
    assert len(parts) == 3 and all(len(p) <= CHUNK_BYTES for p in parts)
    checkpoint = Checkpoint(10, {0: 4}, slot=1, chunks=len(parts), digest=digest(data))
    decoded = Checkpoint.decode(checkpoint.encode())
    assert decoded == checkpoint
    stored = {(1, i): encode_chunk(p) for i, p in enumerate(parts)}
    stored[0, 0] = encode_chunk(b"an older slot")
    assert assemble(decoded, stored) == data
    stored[1, 2] = encode_chunk(b"overwritten by a flush cut short")
    with pytest.raises(RecordFormatError, match="digest"):
        assemble(decoded, stored)


def test_unknown_version_is_refused_with_advice() -> None:
    with pytest.raises(RecordFormatError, match="APP_ID"):
        Checkpoint.decode(b"\x09{}")


def test_a_flush_restores_to_an_equal_partition() -> None:
    """flush_records → restore gives the same offset, labels and (verified) shared state."""
    config = DetectorConfig()
    state = PartitionState.restore(2, config, [])
    state.next_offset = 41
    state.labels = {0: 5}
    first = dict(state.flush_records()[0])
    second = dict(state.flush_records()[0])
    assert split_key(list(first)[-1])[1] == CHECKPOINT
    slots = {Checkpoint.decode(f[checkpoint_key(2)] or b"").slot for f in (first, second)}
    assert slots == {0, 1}, "consecutive flushes alternate slots"
    stored = {k: v for k, v in {**first, **second}.items() if v is not None}  # as the store
    restored = PartitionState.restore(2, config, stored.items())
    assert restored.next_offset == restored.committed_offset == 41
    assert restored.labels == {0: 5}  # and `assemble` checked the shared state's digest


def test_account_entries_round_trip_and_corruption_is_refused() -> None:
    entries: list[tuple[str, bytes | None]] = [
        ("acct|with|bars", b"\x00snapshot"),
        ("gone", None),
        ("\u00e9t\u00e9-\u4e2d", b""),
        ("x" * 256, bytes(range(256)) * 4),
    ]
    data = encode_accounts(entries)
    assert list(decode_accounts(data)) == entries
    with pytest.raises(RecordFormatError, match="account delta"):
        list(decode_accounts(data[:-1]))  # the last snapshot cut short
    with pytest.raises(RecordFormatError, match="account delta"):
        list(decode_accounts(data[:3]))  # a header cut short


def test_accounts_restore_exactly_and_the_log_stays_bounded() -> None:
    """Several flushes of packed account deltas (some accounts dirty again, some expired,
    the oldest deltas carried forward and dropped) restore the same accounts as the live
    partition's, from the records left in the store; a restore of the restored one too."""
    config = DetectorConfig(max_accounts=150)  # past the cap the longest idle expire
    state = PartitionState.restore(0, config, [])
    state.LOG_SLACK = 100  # carry forward well before 2 x 150 + 20,000 entries
    store = Store()
    seen: set[str] = set()
    flushes = []
    offset = 0
    for round_ in range(12):
        docs = traffic(400, 60 + 30 * round_)
        docs = [
            {**d, "ts": T0 + 400 * round_ + i, "event_id": f"r{round_}-{i}"}
            for i, d in enumerate(docs)
        ]
        seen.update(str(d["account_id"]) for d in docs)
        state.process(records(docs, offset))
        offset += len(docs)
        written, count = state.flush_records()
        assert count > 0
        assert sum(1 for k, _ in written if split_key(k)[1] == ACCOUNTS) < 10, "packed"
        store.apply(written)
        flushes.append(written)
        logged = sum(len(ids) for ids in state._log_ids.values())
        assert logged <= 2 * state.accounts + 100 + 2 * 400, "the log stays O(state)"
    dropped = {k for w in flushes for k, v in w if v is None and split_key(k)[1] == ACCOUNTS}
    assert dropped, "the oldest deltas were carried forward and tombstoned"
    assert all(k not in store for k in dropped)
    assert state.detector.stats.expired > 0, "some accounts expired (tombstones)"
    restored = PartitionState.restore(0, config, store.items())
    assert restored.next_offset == restored.committed_offset == offset
    assert restored.accounts == state.accounts
    assert exports(restored, seen) == exports(state, seen)
    # and the restored partition's own flushes carry on from the same log
    restored.process(records(traffic(50, 10), offset))
    state.process(records(traffic(50, 10), offset))
    store.apply(restored.flush_records()[0])
    again = PartitionState.restore(0, config, store.items())
    assert exports(again, seen) == exports(state, seen)


def test_a_flush_cut_short_restores_the_last_checkpoint() -> None:
    """A crash after part of a flush reached the changelog: the state is the last
    checkpoint's (its events are replayed from its offset), and the records no checkpoint
    names are tombstoned by the next flush."""
    config = DetectorConfig()
    state = PartitionState.restore(1, config, [])
    store = Store()
    first = records(harvester("h1", T0, 1, 60))
    state.process(first)
    store.apply(state.flush_records()[0])
    before = {k: v for k, v in store.items()}
    reference = PartitionState.restore(1, config, before.items())
    more = records(traffic(200, 40), len(first))
    state.process(more)
    written, _ = state.flush_records()
    cut = [kv for kv in written if split_key(kv[0])[1] == ACCOUNTS]  # no checkpoint
    store.apply(cut)
    restored = PartitionState.restore(1, config, store.items())
    assert restored.next_offset == len(first)
    names = {"h1"} | {f"acct-{i}" for i in range(40)}
    assert exports(restored, names) == exports(reference, names)
    assert exports(restored, ["acct-0"]) == {"acct-0": None}
    restored.process(more)  # replayed from the checkpoint
    store.apply(restored.flush_records()[0])
    again = PartitionState.restore(1, config, store.items())
    assert exports(again, names) == exports(state, names)
    named = {
        accounts_key(1, seq, i)
        for seq, count, _ in Checkpoint.decode(store[checkpoint_key(1)]).accounts
        for i in range(count)
    }
    assert {k for k in store if split_key(k)[1] == ACCOUNTS} == named, "no stale chunk left"


def test_state_of_format_4_is_refused_with_advice() -> None:
    old = [(account_key(0, "a"), bytes((FORMAT_VERSION - 1,)) + b"\x00" * 8 + b"snapshot")]
    with pytest.raises(RecordFormatError, match="APP_ID"):
        PartitionState.restore(0, DetectorConfig(), old)
