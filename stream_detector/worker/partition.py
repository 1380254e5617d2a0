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
import sys
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
    ACCOUNTS,
    CHECKPOINT,
    SHARED,
    Checkpoint,
    RecordFormatError,
    accounts_key,
    assemble,
    assemble_parts,
    checkpoint_key,
    chunked,
    decode_accounts,
    digest,
    encode_accounts,
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
    """The detector of one source partition, with its offsets, restored from the state table.

    Its accounts are written behind as a log of packed deltas (see `records`): each flush
    writes the dirty accounts in a few records, and carries forward the still-live accounts
    of the oldest deltas once the log holds more than `MAX_LOG_FACTOR` entries per account
    tracked (plus `LOG_SLACK`), so that those deltas can be dropped: the log stays O(state),
    a flush O(what changed) (amortised), a restore O(state)."""

    #: Log entries (over all deltas) allowed per account tracked before carrying forward.
    MAX_LOG_FACTOR = 2
    #: Entries allowed on top, so that a small partition does not rewrite itself each flush.
    LOG_SLACK = 20_000

    def __init__(
        self,
        partition: int,
        detector: Detector,
        checkpoint: Checkpoint | None,
        log_ids: dict[int, list[str]] | None = None,
        stale: list[bytes] | None = None,
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
        # Slot of the shared state the last checkpoint names (the next flush uses the other).
        self._slot = checkpoint.slot if checkpoint else 1
        #: The account deltas the last checkpoint names, in order: (seq, chunks, digest).
        self._log: list[tuple[int, int, str]] = list(checkpoint.accounts) if checkpoint else []
        #: The account ids each of those deltas holds (to carry the oldest forward).
        self._log_ids = log_ids or {}
        self._logged = sum(len(ids) for ids in self._log_ids.values())
        self._next_seq = checkpoint.next_seq if checkpoint else 0
        #: Keys of delta chunks no checkpoint names any more, to tombstone.
        self._stale = stale or []

    @classmethod
    def restore(
        cls,
        partition: int,
        config: DetectorConfig,
        records: Iterable[tuple[bytes, bytes]],
        evidence_partitions: int = 1,
    ) -> PartitionState:
        """Rebuild from the partition's state records (key, value) read from the store: the
        shared state and the account deltas its checkpoint names, exactly as of the
        checkpoint (records of a flush cut short are named by no checkpoint)."""
        checkpoint: Checkpoint | None = None
        chunks: dict[tuple[int, int], bytes] = {}
        deltas: dict[tuple[int, int], bytes] = {}
        for key, value in records:
            _, kind, name = split_key(key)
            if kind == CHECKPOINT:
                checkpoint = Checkpoint.decode(value)
            elif kind in (SHARED, ACCOUNTS):
                group, _, index = name.partition("|")
                (chunks if kind == SHARED else deltas)[int(group), int(index)] = value
            elif kind == ACCOUNT:
                raise RecordFormatError(
                    "state of format 4 (one record per account): start with a new "
                    "STREAM_DETECTOR_APP_ID or run the matching version"
                )
        detector = Detector(config)
        log_ids: dict[int, list[str]] = {}
        named: set[tuple[int, int]] = set()
        if checkpoint is not None:
            if checkpoint.chunks:
                detector.import_model(assemble(checkpoint, chunks))
            latest: dict[str, bytes | None] = {}
            for seq, count, expected in checkpoint.accounts:
                ids = log_ids[seq] = []
                for name, snapshot in decode_accounts(assemble_parts(seq, count, expected, deltas)):
                    # One string object per account, shared by the deltas that list it and
                    # the detector (whose parser interns the ids of new events too).
                    account_id = sys.intern(name)
                    ids.append(account_id)
                    latest.pop(account_id, None)  # the latest entry wins, in write order
                    latest[account_id] = snapshot
                named.update((seq, index) for index in range(count))
            for account_id, snapshot in latest.items():
                if snapshot is not None:
                    detector.import_account(account_id, snapshot)
        detector.take_dirty()
        stale = [accounts_key(partition, *part) for part in sorted(set(deltas) - named)]
        if stale:
            log.warning(
                "account deltas no checkpoint names (a flush cut short) are dropped",
                extra={"partition": partition, "records": len(stale)},
            )
        state = cls(partition, detector, checkpoint, log_ids, stale, evidence_partitions)
        # Past every delta in the store, named or not: a delta of a flush cut short keeps its
        # seq until its tombstones are written, and a new delta must not share its keys.
        state._next_seq = max(state._next_seq, 1 + max((seq for seq, _ in deltas), default=-1))
        return state

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
            event_ts.append(f.ts)
            found = process(f)
            if found:
                alerts.extend(found)
            if detector.evidence:
                self._emit(self._origin, record.offset)
        if last is not None:
            self.next_offset = last.offset + 1
            self.changed = True
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
        """A new account delta (the dirty accounts, None = expired: a tombstone, and the
        accounts carried forward from the oldest deltas), the shared state in the slot the
        last checkpoint does not use, then the checkpoint: the commit point; then tombstones
        of the delta chunks it no longer names. Returns the records and how many accounts
        the delta holds.

        `next_offset` must be known. Marks the partition clean; the engine sets
        `committed_offset` once the records are durable.
        """
        offset = self.next_offset
        assert offset is not None, "flush before the partition's position is known"
        detector = self.detector
        export = detector.export_account
        p = self.partition
        dirty = {account_id: export(account_id) for account_id in detector.take_dirty()}
        carried: dict[str, bytes | None] = {}
        log_ = self._log
        dropped: list[tuple[int, int, str]] = []
        limit = self.MAX_LOG_FACTOR * detector.accounts_tracked + self.LOG_SLACK
        budget = 2 * len(dirty) + self.LOG_SLACK
        while log_ and self._logged + len(dirty) + len(carried) > limit and budget > 0:
            # The oldest delta, carried forward: its accounts' current snapshots go into
            # this one. One neither present nor dirty has expired, and its tombstone was
            # written after its last snapshot: nothing to carry.
            oldest = log_.pop(0)
            dropped.append(oldest)
            ids = self._log_ids.pop(oldest[0])
            self._logged -= len(ids)
            budget -= len(ids)
            for account_id in ids:
                if account_id not in dirty and account_id not in carried:
                    snapshot = export(account_id)
                    if snapshot is not None:
                        carried[account_id] = snapshot
        # Carried (idle longer) before dirty: a restore imports in the order of the latest
        # entries, which keeps the longest-idle accounts first for expiry, as near as it can.
        entries = {**carried, **dirty} if carried else dirty
        out: list[tuple[bytes, bytes | None]] = []
        if entries:
            seq = self._next_seq
            self._next_seq += 1
            data = encode_accounts(entries.items())
            parts = chunked(data)
            out.extend(
                (accounts_key(p, seq, i), encode_chunk(part)) for i, part in enumerate(parts)
            )
            log_.append((seq, len(parts), digest(data)))
            self._log_ids[seq] = list(entries)
            self._logged += len(entries)
        shared = detector.export_model()
        self._slot = 1 - self._slot
        parts = chunked(shared)
        out.extend(
            (shared_key(p, self._slot, i), encode_chunk(part)) for i, part in enumerate(parts)
        )
        checkpoint = Checkpoint(
            offset,
            dict(self.labels),
            self._slot,
            len(parts),
            digest(shared),
            list(log_),
            self._next_seq,
        )
        out.append((checkpoint_key(p), checkpoint.encode()))
        self._stale += [accounts_key(p, seq, i) for seq, count, _ in dropped for i in range(count)]
        out += [(key, None) for key in self._stale]
        self._stale = []
        self.changed = False
        return out, len(entries)
