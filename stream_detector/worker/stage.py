"""The campaign stage on Kafka: link evidence through an internal topic to one stage instance.

Every partition's account side (`PartitionState`) sends its `LinkEvidence` to the link-evidence
topic (``<app_id>-link-evidence``, `STREAM_DETECTOR_TOPIC_EVIDENCE`). Partition i of that topic
feeds campaign stage i, which runs on whichever worker owns state partition i: Faust's group
assignment gives it one owner at a time, its standby replicas and its failover, and its state
is written behind to the same changelog (records ``<i>|g|…`` and ``<i>|h``, see `records`).

With the default single evidence partition (`STREAM_DETECTOR_EVIDENCE_PARTITIONS=1`) all the
evidence of the deployment meets in one stage: a campaign is found whatever partitions and
workers its accounts hash to, and a one-partition deployment sees the evidence in exactly the
order `replay` hands it over. More evidence partitions shard the stage by the account's
payment key (else its id): only for evidence rates beyond one stage, since a campaign whose
accounts pay with cards of different shards is then split (see deploy/kafka/README.md).

At-least-once, replay-exact: a record carries its origin (the source partition, or the labels
partition applied on it) and source offset. An account side that restarts from its checkpoint
sends the evidence after it again; the stage skips evidence at or below the position it has
seen of that origin (positions are part of its checkpoint), so its state and decisions are the
same as if nothing had been repeated. The stage's checkpoint (next evidence offset, positions,
state) is written only after its alerts are acknowledged; after a crash it resumes there and
repeats the same decisions, with the same `alert_id`s.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterable
from typing import Any

from stream_detector.alerts import Alert
from stream_detector.campaigns import key_kind
from stream_detector.config import DetectorConfig
from stream_detector.snapshot import SNAPSHOT_BYTES, AccountSnapshot
from stream_detector.stage import CampaignStage, LinkEvidence
from stream_detector.worker.records import (
    STAGE,
    STAGE_CHECKPOINT,
    STAGE_DELTA,
    StageCheckpoint,
    assemble,
    assemble_parts,
    chunked,
    digest,
    encode_chunk,
    split_key,
    stage_checkpoint_key,
    stage_delta_key,
    stage_key,
)

log = logging.getLogger(__name__)

#: Version byte of an evidence record's value (5: snapshots carry the count of answers at
#: the max_tokens ceiling; 6: of answers at length, on a small budget and at temperature 0).
EVIDENCE_VERSION = 6
#: Version, source offset, event time, number of keys.
_HEAD = struct.Struct("<BqdH")
_KEY_BYTES = 9  # a link key is a 64-bit digest shifted left 3 bits, plus its kind

#: (Kafka key = origin, value, evidence partition).
EvidenceRecord = tuple[bytes, bytes, int]


class EvidenceFormatError(ValueError):
    """An evidence record this worker cannot read."""


def encode_evidence(
    origin: str, offset: int, evidence: LinkEvidence, partitions: int
) -> EvidenceRecord:
    """The evidence topic's record of `evidence` (~230 bytes with two keys)."""
    keys = evidence.keys
    value = b"".join(
        (
            _HEAD.pack(EVIDENCE_VERSION, offset, evidence.ts, len(keys)),
            *(key.to_bytes(_KEY_BYTES, "little") for key in keys),
            evidence.snapshot.encode(),
            evidence.account_id.encode(),
        )
    )
    return origin.encode(), value, route(evidence, partitions)


def decode_evidence(value: bytes) -> tuple[int, LinkEvidence]:
    """(source offset, evidence) of an evidence record's value."""
    if len(value) < _HEAD.size or value[0] != EVIDENCE_VERSION:
        raise EvidenceFormatError(f"evidence record version {value[:1]!r}")
    _, offset, ts, count = _HEAD.unpack_from(value)
    at = _HEAD.size
    keys = []
    for _ in range(count):
        keys.append(int.from_bytes(value[at : at + _KEY_BYTES], "little"))
        at += _KEY_BYTES
    snapshot = AccountSnapshot.decode(value[at : at + SNAPSHOT_BYTES])
    account_id = value[at + SNAPSHOT_BYTES :].decode()
    return offset, LinkEvidence(account_id, ts, keys, snapshot)


def route(evidence: LinkEvidence, partitions: int) -> int:
    """The evidence partition (stage instance) of an account's evidence."""
    if partitions == 1:
        return 0
    pay = [key for key in evidence.keys if key_kind(key) == "pay"]
    if pay:
        return (min(pay) >> 3) % partitions  # the digest, not its kind bits
    return zlib.crc32(evidence.account_id.encode()) % partitions


#: Deltas a base carries at most before the next flush writes a new base (restore time).
MAX_DELTAS = 100


class StageState:
    """Campaign stage i with its evidence position and write-behind records: a full export
    (the base) now and then, and in between only what changed (deltas), so that a flush costs
    O(what changed since the last one) and a restore O(state)."""

    def __init__(
        self,
        partition: int,
        stage: CampaignStage,
        checkpoint: StageCheckpoint | None,
        stale: list[bytes] | None = None,
        next_seq: int = 0,
        base_bytes: int = 0,
        delta_bytes: int = 0,
    ) -> None:
        self.partition = partition
        self.stage = stage
        #: Next evidence offset to process; None until known.
        self.next_offset: int | None = checkpoint.offset if checkpoint else None
        self.committed_offset: int | None = self.next_offset
        self.positions: dict[str, int] = dict(checkpoint.positions) if checkpoint else {}
        self.changed = False
        self._checkpoint = checkpoint
        #: Keys of delta chunks no checkpoint names any more, to tombstone.
        self._stale = stale or []
        self._next_seq = next_seq
        self._base_bytes = base_bytes
        self._delta_bytes = delta_bytes

    @classmethod
    def restore(
        cls, partition: int, config: DetectorConfig, records: Iterable[tuple[bytes, bytes]]
    ) -> StageState:
        """Rebuild from the state records of partition `partition` (other kinds ignored): the
        base its checkpoint names, then its deltas in order."""
        checkpoint: StageCheckpoint | None = None
        chunks: dict[tuple[int, int], bytes] = {}
        deltas: dict[tuple[int, int], bytes] = {}
        for key, value in records:
            _, kind, name = split_key(key)
            if kind == STAGE_CHECKPOINT:
                checkpoint = StageCheckpoint.decode(value)
            elif kind in (STAGE, STAGE_DELTA):
                group, _, index = name.partition("|")
                (chunks if kind == STAGE else deltas)[int(group), int(index)] = value
        stage = CampaignStage(config)
        base = delta = 0
        named: set[tuple[int, int]] = set()
        if checkpoint is not None and checkpoint.chunks:
            data = assemble(checkpoint, chunks)
            stage.import_state(data)
            base = len(data)
            for seq, count, expected in checkpoint.deltas:
                change = assemble_parts(seq, count, expected, deltas)
                stage.apply_changes(change)
                delta += len(change)
                named.update((seq, index) for index in range(count))
        stale = [stage_delta_key(partition, *part) for part in sorted(set(deltas) - named)]
        next_seq = 1 + max((seq for seq, _ in deltas), default=-1)
        return cls(partition, stage, checkpoint, stale, next_seq, base, delta)

    def process(self, records: Iterable[Any]) -> list[Alert]:
        """Evidence records of this stage's partition, in offset order: the alerts decided."""
        alerts: list[Alert] = []
        positions = self.positions
        observe = self.stage.observe
        last = None
        for record in records:
            last = record
            try:
                origin = (record.key or b"").decode()
                offset, evidence = decode_evidence(record.value or b"")
            except (EvidenceFormatError, UnicodeDecodeError, struct.error) as exc:
                log.warning(
                    "unreadable link evidence skipped",
                    extra={"offset": record.offset, "error": str(exc)},
                )
                continue
            if offset < positions.get(origin, -1):
                continue  # sent again by an account side that resumed from its checkpoint
            positions[origin] = offset + 1
            found = observe(evidence)
            if found:
                alerts.extend(found)
        if last is not None:
            self.next_offset = last.offset + 1
            self.changed = True
        return alerts

    def flush_records(self) -> list[tuple[bytes, bytes | None]]:
        """The stage's changes since the last flush as a delta — or a new base, in the slot
        the last checkpoint does not use, when there is none yet or the deltas since have
        outgrown it — then its checkpoint, then tombstones for deltas no longer named.
        `next_offset` must be known; marks the stage clean."""
        offset = self.next_offset
        assert offset is not None, "flush before the stage's position is known"
        p = self.partition
        last = self._checkpoint
        out: list[tuple[bytes, bytes | None]] = []
        change = None
        if (
            last is not None
            and last.chunks
            and len(last.deltas) < MAX_DELTAS
            and self._delta_bytes <= self._base_bytes
        ):
            change = self.stage.export_changes()
        if change is not None and last is not None:
            seq = self._next_seq
            self._next_seq += 1
            parts = chunked(change)
            out += [
                (stage_delta_key(p, seq, i), encode_chunk(part)) for i, part in enumerate(parts)
            ]
            self._delta_bytes += len(change)
            checkpoint = StageCheckpoint(
                offset,
                dict(self.positions),
                last.slot,
                last.chunks,
                last.digest,
                [*last.deltas, (seq, len(parts), digest(change))],
            )
        else:
            data = self.stage.export_state()
            slot = 1 - last.slot if last is not None else 1
            parts = chunked(data)
            out += [(stage_key(p, slot, i), encode_chunk(part)) for i, part in enumerate(parts)]
            if last is not None:
                self._stale += [
                    stage_delta_key(p, seq, i)
                    for seq, count, _ in last.deltas
                    for i in range(count)
                ]
            self._base_bytes, self._delta_bytes = len(data), 0
            checkpoint = StageCheckpoint(
                offset, dict(self.positions), slot, len(parts), digest(data)
            )
        out.append((stage_checkpoint_key(p), checkpoint.encode()))
        out += [(key, None) for key in self._stale]
        self._stale = []
        self._checkpoint = checkpoint
        self.changed = False
        return out
