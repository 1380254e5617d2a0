"""The worker's state-record format and partition bookkeeping, without a broker."""

from __future__ import annotations

import pytest

from stream_detector.config import DetectorConfig
from stream_detector.worker.partition import PartitionState
from stream_detector.worker.records import (
    ACCOUNT,
    CHECKPOINT,
    CHUNK_BYTES,
    SHARED,
    Checkpoint,
    RecordFormatError,
    account_key,
    assemble,
    checkpoint_key,
    chunked,
    digest,
    encode_chunk,
    shared_key,
    split_key,
)


def test_keys_round_trip_with_any_account_id() -> None:
    assert split_key(account_key(3, "acct|with|bars")) == (3, ACCOUNT, "acct|with|bars")
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
