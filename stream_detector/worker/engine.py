"""The worker's hot path: a lean aiokafka loop over the partitions Faust assigned.

Why not a Faust agent over `api-calls`: Faust spends ~200 µs of CPU per message before an
agent sees it, and ~250 µs per table write (measured, see the README). Here Faust keeps what it
is good at — group membership, co-partitioned assignment, changelog recovery into RocksDB,
standby replicas — and pays its per-message cost only while recovering state. The events
themselves go through one `getmany` loop: parse, detect, produce alerts at once.

Consistency (at-least-once, replay-exact):

1. alerts and dead letters are produced as soon as decided;
2. every `commit_interval_s` (and on revocation and shutdown) the engine waits until they are
   acknowledged, then writes each dirty account once (packed, a few records per flush: see
   `records`), then the partition's checkpoint (next source offset, label positions, model,
   the account deltas that make the state) to the changelog, in that order, on one partition
   of an idempotent producer: the checkpoint is the commit point;
3. a restarted or newly assigned worker restores the accounts and the checkpoint and resumes
   at the checkpoint's offset. Events after it are replayed; deterministic alert ids make the
   re-emitted alerts identical, so consumers de-duplicate on `alert_id`.

Source offsets live in the checkpoint with the state they describe, not in a consumer group:
they cannot disagree.

Campaigns: each partition's detector emits link evidence, which is sent to the link-evidence
topic (acknowledged, like the alerts, before the partition's next checkpoint). Campaign stage
i consumes evidence partition i on the worker that owns state partition i (with one evidence
partition, the default, one stage sees the whole deployment's evidence) and is written behind
like a partition: its alerts acknowledged, then its state, then its checkpoint (next evidence
offset and the positions it has seen of each origin), see `stream_detector.worker.stage`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from mode import Service

from stream_detector import health, metrics
from stream_detector.config import DetectorConfig
from stream_detector.detector import Detector
from stream_detector.events import Rejection
from stream_detector.labels import Label, parse_label
from stream_detector.worker.config import WorkerConfig
from stream_detector.worker.partition import PartitionState
from stream_detector.worker.records import (
    Checkpoint,
    StageCheckpoint,
    checkpoint_key,
    split_key,
    stage_checkpoint_key,
)
from stream_detector.worker.stage import EvidenceRecord, StageState
from stream_detector.worker.store import StateStore

log = logging.getLogger(__name__)

#: Headroom over the largest message for produce requests (headers, batch framing).
_REQUEST_HEADROOM = 256 * 1024
#: Largest detail text copied into a dead-letter header.
_DETAIL_MAX = 500


class Engine(Service):
    """Consumes the assigned source partitions and labels; owns one detector per partition."""

    def __init__(
        self,
        config: WorkerConfig,
        detector_config: DetectorConfig,
        store: StateStore,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.detector_config = detector_config
        self.store = store
        self.partitions: dict[int, PartitionState] = {}
        #: Campaign stages owned here, by evidence partition (= the state partition they
        #: live beside).
        self.stages: dict[int, StageState] = {}
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._label_tps: list[TopicPartition] = []
        self._lock = asyncio.Lock()
        self._active = asyncio.Event()
        self._clients_ready = asyncio.Event()
        self._pending: list[asyncio.Future[Any]] = []
        #: When each partition is next written behind: staggered over the commit interval,
        #: so that the loop pauses for one partition's flush at a time, not all of them.
        self._due: dict[int, float] = {}
        self._stats: dict[int, tuple[int, int]] = {}

    # --- lifecycle --------------------------------------------------------------------------
    async def on_start(self) -> None:
        # The first Detector pays one-off initialisation (seconds); pay it before joining
        # the group, not while holding freshly assigned partitions.
        Detector(self.detector_config)
        cfg = self.config
        client = cfg.kafka_client_args()
        self._producer = AIOKafkaProducer(
            **client,
            acks="all",
            enable_idempotence=True,
            linger_ms=cfg.linger_ms,
            compression_type=None if cfg.compression == "none" else cfg.compression,
            max_batch_size=512 * 1024,  # under consumers' default 1 MiB per-partition fetch
            max_request_size=cfg.max_message_bytes + _REQUEST_HEADROOM,
        )
        self._consumer = AIOKafkaConsumer(
            **client,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset=cfg.auto_offset_reset,
            isolation_level="read_committed",
            max_partition_fetch_bytes=cfg.max_message_bytes,
            fetch_max_bytes=max(cfg.max_message_bytes, 50 * 1024 * 1024),
        )
        await self._producer.start()
        await self._consumer.start()
        labels = await self._producer.partitions_for(cfg.topic_labels)
        self._label_tps = [TopicPartition(cfg.topic_labels, p) for p in sorted(labels)]
        self._clients_ready.set()

    async def on_stop(self) -> None:
        """Flush everything while the partitions are still ours, then close the clients."""
        health.set_ready(False)
        self._active.clear()
        if self._clients_ready.is_set():
            async with self._lock:
                await self._flush()
                log.info("state flushed on shutdown", extra={"partitions": len(self.partitions)})
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    # --- rebalancing (called by the Faust app) -----------------------------------------------
    async def on_partitions_revoked(self) -> None:
        """Before the group moves partitions: stop, and make our state durable."""
        health.set_ready(False)
        self._active.clear()
        if not self._clients_ready.is_set():
            return
        async with self._lock:
            await self._flush()
            assert self._consumer is not None
            self._consumer.assign([])

    async def on_partitions_recovered(self, actives: set[int]) -> None:
        """After Faust restored the state partitions now ours: build detectors, seek, resume."""
        await self._clients_ready.wait()
        async with self._lock:
            started = time.perf_counter()
            for p in set(self.partitions) - actives:
                del self.partitions[p]
                self._stats.pop(p, None)
                metrics.forget_partition(self.config.topic_events, p)
            for p in set(self.stages) - actives:
                del self.stages[p]
                metrics.forget_partition(self.config.evidence_topic, p)
            stale = {p for p, s in self.partitions.items() if not self._current(s)}
            stale |= {p for p, s in self.stages.items() if not self._stage_current(s)}
            restore = (actives - set(self.partitions)) | stale
            if restore:
                restored, stages = self._restore(restore)
                self.partitions.update(restored)
                self.stages.update(stages)
                accounts = sum(s.accounts for s in restored.values())
                metrics.observe_recovery(accounts, time.perf_counter() - started)
                log.info(
                    "partitions restored",
                    extra={"partitions": sorted(restore), "accounts": accounts},
                )
            await self._assign()
            self._update_gauges()
            self._due = {}
            if self.partitions:
                self._active.set()
                interval = self.config.commit_interval_s
                now = time.monotonic()
                owned = sorted(self.partitions)
                self._due = {p: now + interval * (i + 1) / len(owned) for i, p in enumerate(owned)}
            health.set_ready(True)
            log.info("processing", extra={"partitions": sorted(self.partitions)})

    def _current(self, state: PartitionState) -> bool:
        """Whether a partition kept across a rebalance still matches the stored checkpoint
        (another worker may have owned it meanwhile, if this one was thrown out of the group)."""
        value = self.store.get(checkpoint_key(state.partition))
        stored = Checkpoint.decode(value).offset if value is not None else None
        return stored == state.committed_offset

    def _stage_current(self, stage: StageState) -> bool:
        value = self.store.get(stage_checkpoint_key(stage.partition))
        stored = StageCheckpoint.decode(value).offset if value is not None else None
        return stored == stage.committed_offset

    def _restore(
        self, partitions: set[int]
    ) -> tuple[dict[int, PartitionState], dict[int, StageState]]:
        """Partitions (and the campaign stages beside them) rebuilt from the local store."""
        records: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in partitions}
        for key, value in self.store.items():
            p, _, _ = split_key(key)
            if p in records:
                records[p].append((key, value))
        cfg = self.detector_config
        n = self.config.evidence_partitions
        states = {
            p: PartitionState.restore(p, cfg, items, evidence_partitions=n)
            for p, items in records.items()
        }
        stages = {p: StageState.restore(p, cfg, items) for p, items in records.items() if p < n}
        return states, stages

    async def _assign(self) -> None:
        """Assign the owned source partitions and the labels; seek to the checkpoints."""
        consumer = self._consumer
        assert consumer is not None
        topic = self.config.topic_events
        tps = [TopicPartition(topic, p) for p in sorted(self.partitions)]
        evidence = [TopicPartition(self.config.evidence_topic, p) for p in sorted(self.stages)]
        consumer.assign(tps + evidence + (self._label_tps if tps else []))
        for tp in tps:
            offset = self.partitions[tp.partition].next_offset
            if offset is not None:
                consumer.seek(tp, offset)
            elif self.config.auto_offset_reset == "earliest":
                await consumer.seek_to_beginning(tp)
            else:
                await consumer.seek_to_end(tp)
        for tp in evidence:  # a stage without checkpoint reads all the evidence there is
            offset = self.stages[tp.partition].next_offset
            if offset is not None:
                consumer.seek(tp, offset)
            else:
                await consumer.seek_to_beginning(tp)
        for tp in self._label_tps if tps else []:
            consumer.seek(tp, min(s.labels.get(tp.partition, 0) for s in self.partitions.values()))

    # --- the loop ---------------------------------------------------------------------------
    @Service.task
    async def _run(self) -> None:
        while not self.should_stop:
            await self._active.wait()
            consumer = self._consumer
            assert consumer is not None
            batches = await consumer.getmany(
                timeout_ms=100, max_records=self.config.max_poll_records
            )
            health.heartbeat()
            async with self._lock:
                if not self._active.is_set():
                    continue  # revoked while fetching: positions are re-sought on assignment
                for tp, records in batches.items():
                    if tp.topic == self.config.topic_events:
                        await self._process(tp.partition, records)
                    elif tp.topic == self.config.evidence_topic:
                        await self._process_evidence(tp.partition, records)
                    else:
                        self._labels(tp.partition, records)
                await self._send_evidence()
                now = time.monotonic()
                due = [p for p, at in self._due.items() if at <= now]
                if due:
                    await self._flush(due)
                    self._update_gauges()

    async def _process(self, partition: int, records: list[Any]) -> None:
        state = self.partitions.get(partition)
        if state is None:
            return
        started = time.perf_counter()
        result = state.process(records)
        producer = self._producer
        assert producer is not None
        pending = self._pending
        topic = self.config.topic_alerts
        for alert in result.alerts:
            pending.append(
                await producer.send(topic, value=alert.to_json(), key=alert.subject.encode())
            )
            metrics.count_alert(alert.kind, alert.severity)
        for record, rejection in result.rejects:
            pending.append(await self._dead_letter(record, rejection))
        metrics.observe_batch(len(result.event_ts), time.perf_counter() - started)
        metrics.observe_event_times(result.event_ts)
        metrics.observe_scores(state.detector.take_scores())
        self._count_stats(state)

    async def _process_evidence(self, partition: int, records: list[Any]) -> None:
        stage = self.stages.get(partition)
        if stage is None:
            return
        producer = self._producer
        assert producer is not None
        topic = self.config.topic_alerts
        metrics.count_evidence(processed=len(records))
        for alert in stage.process(records):
            self._pending.append(
                await producer.send(topic, value=alert.to_json(), key=alert.subject.encode())
            )
            metrics.count_alert(alert.kind, alert.severity)

    async def _send_evidence(self) -> None:
        """Every partition's new link evidence to the evidence topic, batched per evidence
        partition; acknowledged before the next checkpoint (see `_flush`)."""
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for state in self.partitions.values():
            if state.outbox:
                record: EvidenceRecord
                for record in state.take_outbox():
                    by_partition.setdefault(record[2], []).append((record[0], record[1]))
        if not by_partition:
            return
        producer = self._producer
        assert producer is not None
        topic = self.config.evidence_topic
        for p, records in by_partition.items():
            metrics.count_evidence(sent=len(records))
            for future, _ in await self._send_records(producer, topic, p, records):
                self._pending.append(future)

    async def _dead_letter(self, record: Any, rejection: Rejection) -> asyncio.Future[Any]:
        """The original key and bytes, with why and where from in headers."""
        assert self._producer is not None
        metrics.count_rejected(rejection.reason)
        metrics.count_dlq()
        headers = [
            ("reason", rejection.reason.value.encode()),
            ("detail", rejection.detail[:_DETAIL_MAX].encode()),
            ("source.topic", record.topic.encode()),
            ("source.partition", str(record.partition).encode()),
            ("source.offset", str(record.offset).encode()),
        ]
        return await self._producer.send(
            self.config.topic_dlq,
            value=record.value,
            key=record.key,
            partition=record.partition,
            headers=headers,
        )

    def _labels(self, labels_partition: int, records: list[Any]) -> None:
        """Analyst labels go to the partition that holds the account, else to every one here
        (the account may show up later in any of them, as in `replay`)."""
        states = list(self.partitions.values())
        for record in records:
            label: Label | None
            try:
                label = parse_label(record.value or b"")
            except Rejection as rejection:
                log.warning(
                    "unreadable label skipped",
                    extra={"reason": rejection.reason.value, "offset": record.offset},
                )
                label = None
            owners = [s for s in states if label is not None and s.knows(label.account_id)]
            applied = False
            for state in states:
                use = label if (not owners or state in owners) else None
                applied |= state.apply_label(labels_partition, record.offset, use)
            if applied and label is not None:
                metrics.count_model_update("attack" if label.attack else "benign")

    def _count_stats(self, state: PartitionState) -> None:
        stats = state.detector.stats
        before = self._stats.get(state.partition, (0, 0))
        metrics.count_duplicates(stats.duplicates - before[0])
        metrics.count_late(stats.late - before[1])
        self._stats[state.partition] = (stats.duplicates, stats.late)

    def _update_gauges(self) -> None:
        states = self.partitions.values()
        metrics.set_tracked(
            sum(s.accounts for s in states),
            sum(s.stage.campaigns_tracked for s in self.stages.values()),
        )
        consumer = self._consumer
        if consumer is None:
            return
        topic = self.config.topic_events
        owned: list[tuple[str, int, PartitionState | StageState]] = [
            (topic, p, state) for p, state in self.partitions.items()
        ]
        owned += [(self.config.evidence_topic, p, stage) for p, stage in self.stages.items()]
        for name, p, owner in owned:
            high = consumer.highwater(TopicPartition(name, p))
            if high is not None and owner.next_offset is not None:
                metrics.set_consumer_lag(name, p, high - owner.next_offset)

    # --- write-behind -----------------------------------------------------------------------
    async def _flush(self, partitions: list[int] | None = None) -> None:
        """Alerts and evidence durable, then each changed partition's dirty accounts, shared
        state and checkpoint, and the state and checkpoint of the campaign stage beside it
        (`partitions`: only those, else all)."""
        chosen = sorted(
            self.partitions if partitions is None else set(partitions) & set(self.partitions)
        )
        interval = self.config.commit_interval_s
        for p in chosen:
            self._due[p] = time.monotonic() + interval
        producer, consumer = self._producer, self._consumer
        assert producer is not None and consumer is not None
        started = time.perf_counter()
        await self._send_evidence()
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)  # a failed alert, dead letter or evidence stops it
        written: list[
            tuple[PartitionState | StageState, int, list[tuple[bytes, bytes | None]], Any]
        ] = []
        accounts = 0
        topic = self.config.changelog_topic
        for p in chosen:
            state = self.partitions[p]
            if not state.changed and state.committed_offset is not None:
                continue
            if state.next_offset is None:
                tp = TopicPartition(self.config.topic_events, p)
                state.next_offset = await consumer.position(tp)
            offset = state.next_offset
            records, flushed = state.flush_records()
            accounts += flushed
            futures = await self._send_records(producer, topic, p, records)
            written.append((state, offset, records, futures))
        for p in chosen:
            stage = self.stages.get(p)
            if stage is None or (not stage.changed and stage.committed_offset is not None):
                continue
            if stage.next_offset is None:
                tp = TopicPartition(self.config.evidence_topic, p)
                stage.next_offset = await consumer.position(tp)
            offset = stage.next_offset
            records = stage.flush_records()
            futures = await self._send_records(producer, topic, p, records)
            written.append((stage, offset, records, futures))
        if not written:
            return
        for target, offset, records, futures in written:
            last = None
            for future, count in futures:
                meta = await future
                last = meta.offset + count - 1
            assert last is not None
            self.store.apply(target.partition, records, last)
            target.committed_offset = offset
        metrics.observe_flush(accounts, time.perf_counter() - started)

    @staticmethod
    async def _send_records(
        producer: AIOKafkaProducer,
        topic: str,
        partition: int,
        records: Iterable[tuple[bytes, bytes | None]],
    ) -> list[tuple[asyncio.Future[Any], int]]:
        """Records in order, packed into as few produce batches as fit (far cheaper per record
        than one `send` each); one partition of an idempotent producer keeps their order.
        Returns each batch's future with its record count."""
        sent: list[tuple[asyncio.Future[Any], int]] = []
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:
                count = batch.record_count()
                sent.append((await producer.send_batch(batch, topic, partition=partition), count))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"state record of {len(value or b'')} bytes exceeds a batch")
        count = batch.record_count()
        sent.append((await producer.send_batch(batch, topic, partition=partition), count))
        return sent
