"""The state table's record format (keys and values of the changelog), versioned.

Keys carry their partition, so one pass over a local store finds each partition's records
whatever the store (RocksDB keeps one database per partition, the memory store one dict):

- ``<p>|b|<seq>|<i>`` → chunk i of account delta `seq`: the accounts one flush wrote, packed
  (`encode_accounts`: each dirty account's snapshot, or a tombstone for an expired one, plus
  the live accounts of the oldest deltas carried forward so those can be dropped). One flush
  writes a few records of up to CHUNK_BYTES, not one per dirty account: a standby replica
  (or a recovery) reads them through Faust's per-message path, ~30 µs a message. The
  checkpoint names the deltas that make the state, applied in order (the latest entry of an
  account wins); a delta no checkpoint names (a flush cut short, or one carried forward) is
  ignored and tombstoned;
- ``<p>|s|<slot>|<i>`` → chunk i of the detector's shared state (`Detector.export_model`:
  models, catalogue), which can outgrow one Kafka message. Two slots are
  used in turn, so a flush cut short never damages the chunks the last checkpoint names;
- ``<p>|c`` → the partition's checkpoint: next source offset, label positions, which slot,
  how many chunks and which digest the shared state has, and the account deltas (seq,
  chunks, digest) in order. Written last in each flush, it is the commit point: the state it
  names is exactly the state at its offset.

Campaign stage i (fed by partition i of the link-evidence topic) lives beside state
partition i, on whichever worker owns it, with records of its own:

- ``<i>|g|<slot>|<j>`` → chunk j of a full export of the stage's state
  (`CampaignStage.export_state`, the *base*), two slots in turn as above;
- ``<i>|d|<seq>|<j>`` → chunk j of delta `seq`: the stage's changes since the previous base
  or delta (`CampaignStage.export_changes`), so that a flush costs O(what changed), not
  O(the stage). A new base is written once the deltas since the last one outweigh it, and the
  deltas it replaces are tombstoned;
- ``<i>|h`` → the stage's checkpoint (`StageCheckpoint`): next evidence offset, the position
  of each evidence origin (to skip evidence re-sent after an account side's restart), the
  base's slot, chunks and digest, and the deltas to apply on it in order. Written last, the
  stage's commit point: records of a flush cut short are named by no checkpoint.

Format 3: the campaign stage's state is a base plus deltas. Format 5: accounts packed into
deltas named by the checkpoint (format 4 had one ``<p>|a|<account_id>`` record per account).
Format 6: account snapshots in the stage's state carry the minute mask (lock-step timing).
Format 8: ... and the counts of answers at length, of calls on a small max_tokens budget and
of calls at temperature 0.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

#: Version byte of every value written here.
FORMAT_VERSION = 8
#: Largest shared-state chunk (well under a produce batch and a message).
CHUNK_BYTES = 256 * 1024

ACCOUNT, SHARED, CHECKPOINT, STAGE, STAGE_DELTA, STAGE_CHECKPOINT = "a", "s", "c", "g", "d", "h"
ACCOUNTS = "b"
#: ACCOUNT ("a", one record per account) is format 4's; its values are refused by version.
_KINDS = (b"a", b"b", b"s", b"c", b"g", b"d", b"h")
#: An account entry's header: id length, snapshot length (TOMBSTONE: expired, no snapshot).
_ENTRY = struct.Struct("<HI")
TOMBSTONE = 0xFFFFFFFF


class RecordFormatError(ValueError):
    """A state record written by an incompatible version (or corrupted)."""


def account_key(partition: int, account_id: str) -> bytes:
    """Format 4's per-account key (recognised only to refuse its records)."""
    return b"%d|a|%s" % (partition, account_id.encode())


def accounts_key(partition: int, seq: int, index: int) -> bytes:
    return b"%d|b|%d|%d" % (partition, seq, index)


def shared_key(partition: int, slot: int, index: int) -> bytes:
    return b"%d|s|%d|%d" % (partition, slot, index)


def checkpoint_key(partition: int) -> bytes:
    return b"%d|c" % partition


def stage_key(partition: int, slot: int, index: int) -> bytes:
    return b"%d|g|%d|%d" % (partition, slot, index)


def stage_delta_key(partition: int, seq: int, index: int) -> bytes:
    return b"%d|d|%d|%d" % (partition, seq, index)


def stage_checkpoint_key(partition: int) -> bytes:
    return b"%d|h" % partition


def split_key(key: bytes) -> tuple[int, str, str]:
    """(partition, kind, rest): kind is ACCOUNTS or STAGE_DELTA (rest = "seq|index"), SHARED
    or STAGE (rest = "slot|index"), CHECKPOINT or STAGE_CHECKPOINT (rest empty), or format
    4's ACCOUNT (rest = account id)."""
    head, _, rest = key.partition(b"|")
    kind, _, name = rest.partition(b"|")
    if not head.isdigit() or kind not in _KINDS:
        raise RecordFormatError(f"not a state key: {key[:40]!r}")
    return int(head), kind.decode(), name.decode()


def encode_accounts(entries: Iterable[tuple[str, bytes | None]]) -> bytes:
    """Account entries (id, snapshot; None = expired) packed into one delta's bytes."""
    pack = _ENTRY.pack
    parts: list[bytes] = []
    append = parts.append
    for account_id, snapshot in entries:
        name = account_id.encode()
        if snapshot is None:
            append(pack(len(name), TOMBSTONE))
            append(name)
        else:
            append(pack(len(name), len(snapshot)))
            append(name)
            append(snapshot)
    return b"".join(parts)


def decode_accounts(data: bytes) -> Iterator[tuple[str, bytes | None]]:
    """The entries `encode_accounts` packed, in order."""
    unpack = _ENTRY.unpack_from
    size = _ENTRY.size
    at, end = 0, len(data)
    with _corrupt("account delta"):
        while at < end:
            length, count = unpack(data, at)
            at += size
            account_id = data[at : at + length].decode()
            at += length
            if count == TOMBSTONE:
                yield account_id, None
                continue
            if at + count > end:
                raise ValueError("entry runs past the end")
            yield account_id, data[at : at + count]
            at += count


@dataclass
class Checkpoint:
    """What a partition's state is consistent with."""

    #: Next source offset to process (everything before it is in the state).
    offset: int
    #: Next offset to apply of each `extraction-labels` partition.
    labels: dict[int, int] = field(default_factory=dict)
    #: Where the shared state is: slot, number of chunks, and blake2b digest (hex).
    slot: int = 0
    chunks: int = 0
    digest: str = ""
    #: The account deltas that make the state, in order: (seq, chunks, digest).
    accounts: list[tuple[int, int, str]] = field(default_factory=list)
    #: Sequence number of the next account delta.
    next_seq: int = 0

    def encode(self) -> bytes:
        return _dump_json(asdict(self))

    @classmethod
    def decode(cls, value: bytes) -> Checkpoint:
        _check_version(value)
        with _corrupt("checkpoint"):
            doc = _load_json(value)
            return cls(
                labels={int(k): int(v) for k, v in doc["labels"].items()},
                accounts=[(int(q), int(n), str(d)) for q, n, d in doc["accounts"]],
                next_seq=int(doc["next_seq"]),
                **_position(doc),
            )


@dataclass
class StageCheckpoint:
    """What a campaign stage's state is consistent with."""

    #: Next offset to process of its link-evidence partition.
    offset: int
    #: Next source offset of each evidence origin ("e<p>": events of partition p,
    #: "l<p>.<q>": labels partition q applied on partition p); evidence below is a repeat.
    positions: dict[str, int] = field(default_factory=dict)
    slot: int = 0
    chunks: int = 0
    digest: str = ""
    #: The deltas to apply on the base, in order: (seq, chunks, digest).
    deltas: list[tuple[int, int, str]] = field(default_factory=list)

    def encode(self) -> bytes:
        return _dump_json(asdict(self))

    @classmethod
    def decode(cls, value: bytes) -> StageCheckpoint:
        _check_version(value)
        with _corrupt("stage checkpoint"):
            doc = _load_json(value)
            return cls(
                positions={str(k): int(v) for k, v in doc["positions"].items()},
                deltas=[(int(q), int(n), str(d)) for q, n, d in doc["deltas"]],
                **_position(doc),
            )


def _dump_json(doc: dict[str, Any]) -> bytes:
    """A versioned JSON record (the checkpoints)."""
    return bytes((FORMAT_VERSION,)) + orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)


def _load_json(value: bytes) -> dict[str, Any]:
    """The object of a versioned JSON record (its version already checked)."""
    doc = orjson.loads(value[1:])
    if not isinstance(doc, dict):
        raise TypeError("not an object")
    return doc


def _position(doc: dict[str, Any]) -> dict[str, Any]:
    """The fields every checkpoint has: its offset and where its shared state is."""
    return {
        "offset": int(doc["offset"]),
        "slot": int(doc["slot"]),
        "chunks": int(doc["chunks"]),
        "digest": str(doc["digest"]),
    }


@contextmanager
def _corrupt(what: str) -> Iterator[None]:
    """Any decoding error of a checkpoint, as one `RecordFormatError`."""
    try:
        yield
    except (
        orjson.JSONDecodeError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        struct.error,
    ) as exc:
        raise RecordFormatError(f"corrupt {what}: {exc}") from None


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def chunked(data: bytes) -> list[bytes]:
    """`data` in CHUNK_BYTES pieces (at least one, possibly empty)."""
    return [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]


def assemble(
    checkpoint: Checkpoint | StageCheckpoint, chunks: Mapping[tuple[int, int], bytes]
) -> bytes:
    """The shared state a checkpoint names, from chunks keyed (slot, index); verified."""
    return assemble_parts(checkpoint.slot, checkpoint.chunks, checkpoint.digest, chunks)


def assemble_parts(
    group: int, count: int, expected: str, chunks: Mapping[tuple[int, int], bytes]
) -> bytes:
    """`count` chunks keyed (group, index) joined and checked against their digest."""
    parts = []
    for index in range(count):
        part = chunks.get((group, index))
        if part is None:
            raise RecordFormatError(f"state chunk {group}/{index} missing")
        _check_version(part)
        parts.append(part[1:])
    data = b"".join(parts)
    if digest(data) != expected:
        raise RecordFormatError("state does not match its checkpoint digest")
    return data


def encode_chunk(part: bytes) -> bytes:
    return bytes((FORMAT_VERSION,)) + part


def _check_version(value: bytes) -> None:
    if not value or value[0] != FORMAT_VERSION:
        raise RecordFormatError(
            f"state record version {value[:1]!r}, this worker reads {FORMAT_VERSION}: "
            "start with a new STREAM_DETECTOR_APP_ID or run the matching version"
        )
