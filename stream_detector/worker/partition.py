"""One source partition's detector, its position, and its write-behind records.

Partition p of `api-calls` feeds exactly one `Detector` at a time (on whichever worker owns
p), so an account's events reach one state in order, whatever partitioner the gateway used.
Everything here is synchronous and does no I/O; the engine moves the bytes.

The detector's link evidence leaves through `outbox` (encoded, tagged with its origin and
source offset, routed to a link-evidence partition): the engine sends it to the evidence topic
before the partition's next checkpoint, so evidence is durable before the state it describes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stream_detector.alerts import Alert
from stream_detector.config import DetectorConfig
from stream_detector.detector import Detector
from stream_detector.events import Rejection, RejectReason
from stream_detector.features import parse_features
from stream_detector.labels import Label
from stream_detector.worker.records import (
    ACCOUNT,
    CHECKPOINT,
    SHARED,
    Checkpoint,
    account_key,
    assemble,
    checkpoint_key,
    chunked,
    decode_account,
    digest,
    encode_account,
    encode_chunk,
    shared_key,
    split_key,
)
from stream_detector.worker.stage import EvidenceRecord, encode_evidence

log = logging.getLogger(__name__)

_NO_VALUE = Rejection(RejectReason.MISSING_FIELD, "message has no value")
_KEY_NOT_UTF8 = Rejection(RejectReason.NOT_UTF8, "message key is not UTF-8")


@dataclass
class BatchResult:
    """What one batch of source records produced."""

    alerts: list[Alert] = field(default_factory=list)
    #: (record, why) of each record for the dead-letter topic.
    rejects: list[tuple[Any, Rejection]] = field(default_factory=list)
    #: Event time of each valid event (for the event-lag metric).
    event_ts: list[float] = field(default_factory=list)


class PartitionState:
    """The detector of one source partition, with its offsets, restored from the state table."""

    def __init__(
        self,
        partition: int,
        detector: Detector,
        checkpoint: Checkpoint | None,
        ahead: dict[str, int] | None = None,
        evidence_partitions: int = 1,
    ) -> None:
        self.partition = partition
        self.detector = detector
        #: Encoded link evidence for the evidence topic, in order, until the engine sends it.
        self.outbox: list[EvidenceRecord] = []
        self.evidence_partitions = evidence_partitions
        self._origin = f"e{partition}"
        #: Next source offset to process; None until known (no checkpoint, nothing read yet).
        self.next_offset: int | None = checkpoint.offset if checkpoint else None
        #: Next offset to apply of each labels partition.
        self.labels: dict[int, int] = dict(checkpoint.labels) if checkpoint else {}
        #: Source offset of the last checkpoint written or restored (None: never).
        self.committed_offset: int | None = self.next_offset
        #: Changed since the last flush (events or labels applied).
        self.changed = False
        # Accounts whose snapshot already includes events up to an offset beyond the
        # checkpoint (a flush cut short by a crash): those events must not count twice.
        self._ahead = ahead or {}
        # Slot of the shared state the last checkpoint names (the next flush uses the other).
        self._slot = checkpoint.slot if checkpoint else 1
        self._ahead_until = max(self._ahead.values(), default=-1)

    @classmethod
    def restore(
        cls,
        partition: int,
        config: DetectorConfig,
        records: Iterable[tuple[bytes, bytes]],
        evidence_partitions: int = 1,
    ) -> PartitionState:
        """Rebuild from the partition's state records (key, value) read from the store."""
        checkpoint: Checkpoint | None = None
        accounts: list[tuple[str, bytes]] = []
        chunks: dict[tuple[int, int], bytes] = {}
        for key, value in records:
            _, kind, name = split_key(key)
            if kind == CHECKPOINT:
                checkpoint = Checkpoint.decode(value)
            elif kind == ACCOUNT:
                accounts.append((name, value))
            elif kind == SHARED:
                slot, _, index = name.partition("|")
                chunks[int(slot), int(index)] = value
        detector = Detector(config)
        if checkpoint is not None and checkpoint.chunks:
            detector.import_model(assemble(checkpoint, chunks))
        base = checkpoint.offset if checkpoint else 0
        ahead: dict[str, int] = {}
        for account_id, value in accounts:
            offset, snapshot = decode_account(value)
            detector.import_account(account_id, snapshot)
            if offset > base:
                ahead[account_id] = offset
        detector.take_dirty()
        if ahead:
            log.warning(
                "state ahead of its checkpoint (a flush was cut short)",
                extra={"partition": partition, "accounts": len(ahead)},
            )
        return cls(partition, detector, checkpoint, ahead, evidence_partitions)

    @property
    def accounts(self) -> int:
        return self.detector.accounts_tracked

    def process(self, records: Iterable[Any]) -> BatchResult:
        """Validate and detect over consumer records of this partition, in offset order."""
        out = BatchResult()
        detector = self.detector
        process = detector.process_features
        alerts = out.alerts
        event_ts = out.event_ts
        ahead = self._ahead
        last = None
        for record in records:
            last = record
            value = record.value
            key = record.key
            try:
                if value is None:
                    raise _NO_VALUE
                if key is not None:
                    try:
                        key.decode()
                    except UnicodeDecodeError:
                        raise _KEY_NOT_UTF8 from None
                f = parse_features(value)
            except Rejection as rejection:
                out.rejects.append((record, rejection))
                continue
            if ahead and record.offset < ahead.get(f.account_id, -1):
                continue
            event_ts.append(f.ts)
            found = process(f)
            if found:
                alerts.extend(found)
            if detector.evidence:
                self._emit(self._origin, record.offset)
        if last is not None:
            self.next_offset = last.offset + 1
            self.changed = True
            if ahead and last.offset >= self._ahead_until:
                ahead.clear()
        return out

    def apply_label(self, labels_partition: int, offset: int, label: Label | None) -> bool:
        """Apply a label once (positions survive restarts); None = unreadable, skip it."""
        if offset < self.labels.get(labels_partition, 0):
            return False
        self.labels[labels_partition] = offset + 1
        self.changed = True
        if label is not None:
            self.detector.apply_label(label)
            if self.detector.evidence:
                self._emit(f"l{self.partition}.{labels_partition}", offset)
        return label is not None

    def _emit(self, origin: str, offset: int) -> None:
        n = self.evidence_partitions
        for evidence in self.detector.take_evidence():
            self.outbox.append(encode_evidence(origin, offset, evidence, n))

    def take_outbox(self) -> list[EvidenceRecord]:
        """Evidence records emitted since the last call (key, value, evidence partition)."""
        outbox, self.outbox = self.outbox, []
        return outbox

    def knows(self, account_id: str) -> bool:
        return self.detector.export_account(account_id) is not None

    def flush_records(self) -> tuple[list[tuple[bytes, bytes | None]], int]:
        """Dirty accounts (None = expired: a tombstone), the shared state in the slot the
        last checkpoint does not use, then the checkpoint: the commit point. Returns the
        records and how many are accounts.

        `next_offset` must be known. Marks the partition clean; the engine sets
        `committed_offset` once the records are durable.
        """
        offset = self.next_offset
        assert offset is not None, "flush before the partition's position is known"
        detector = self.detector
        p = self.partition
        out: list[tuple[bytes, bytes | None]] = []
        for account_id in detector.take_dirty():
            snapshot = detector.export_account(account_id)
            value = None if snapshot is None else encode_account(offset, snapshot)
            out.append((account_key(p, account_id), value))
        accounts = len(out)
        shared = detector.export_model()
        self._slot = 1 - self._slot
        parts = chunked(shared)
        out.extend(
            (shared_key(p, self._slot, i), encode_chunk(part)) for i, part in enumerate(parts)
        )
        checkpoint = Checkpoint(offset, dict(self.labels), self._slot, len(parts), digest(shared))
        out.append((checkpoint_key(p), checkpoint.encode()))
        self.changed = False
        return out, accounts
