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
from stream_detector.campaigns import SNAPSHOT_BYTES, AccountSnapshot, key_kind
from stream_detector.config import DetectorConfig
from stream_detector.stage import CampaignStage, LinkEvidence
from stream_detector.worker.records import (
    STAGE,
    STAGE_CHECKPOINT,
    StageCheckpoint,
    assemble,
    chunked,
    digest,
    encode_chunk,
    split_key,
    stage_checkpoint_key,
    stage_key,
)

log = logging.getLogger(__name__)

#: Version byte of an evidence record's value.
EVIDENCE_VERSION = 2
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
        return min(pay) % partitions
    return zlib.crc32(evidence.account_id.encode()) % partitions


class StageState:
    """Campaign stage i with its evidence position and write-behind records."""

    def __init__(
        self, partition: int, stage: CampaignStage, checkpoint: StageCheckpoint | None
    ) -> None:
        self.partition = partition
        self.stage = stage
        #: Next evidence offset to process; None until known.
        self.next_offset: int | None = checkpoint.offset if checkpoint else None
        self.committed_offset: int | None = self.next_offset
        self.positions: dict[str, int] = dict(checkpoint.positions) if checkpoint else {}
        self.changed = False
        self._slot = checkpoint.slot if checkpoint else 1

    @classmethod
    def restore(
        cls, partition: int, config: DetectorConfig, records: Iterable[tuple[bytes, bytes]]
    ) -> StageState:
        """Rebuild from the state records of partition `partition` (other kinds ignored)."""
        checkpoint: StageCheckpoint | None = None
        chunks: dict[tuple[int, int], bytes] = {}
        for key, value in records:
            _, kind, name = split_key(key)
            if kind == STAGE_CHECKPOINT:
                checkpoint = StageCheckpoint.decode(value)
            elif kind == STAGE:
                slot, _, index = name.partition("|")
                chunks[int(slot), int(index)] = value
        stage = CampaignStage(config)
        if checkpoint is not None and checkpoint.chunks:
            stage.import_state(assemble(checkpoint, chunks))
        return cls(partition, stage, checkpoint)

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
        """The stage's state in the slot the last checkpoint does not use, then its
        checkpoint. `next_offset` must be known; marks the stage clean."""
        offset = self.next_offset
        assert offset is not None, "flush before the stage's position is known"
        data = self.stage.export_state()
        self._slot = 1 - self._slot
        parts = chunked(data)
        p = self.partition
        out: list[tuple[bytes, bytes | None]] = [
            (stage_key(p, self._slot, i), encode_chunk(part)) for i, part in enumerate(parts)
        ]
        checkpoint = StageCheckpoint(
            offset, dict(self.positions), self._slot, len(parts), digest(data)
        )
        out.append((stage_checkpoint_key(p), checkpoint.encode()))
        self.changed = False
        return out
