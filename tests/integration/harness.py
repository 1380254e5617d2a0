"""Helpers for the worker tests on the real broker: worker processes, produce, read back,
and what the worker must produce (one `Detector` per partition over that partition's events)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from stream_detector.detector import Detector
from stream_detector.events import Rejection, parse_event
from stream_detector.stage import CampaignStage
from stream_detector.worker.stage import StageState

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Deployment:
    """Topic names and settings shared by the workers of one test."""

    bootstrap: str
    suffix: str
    partitions: int
    commit_interval_s: float = 1.0

    @property
    def events(self) -> str:
        return f"calls-{self.suffix}"

    @property
    def alerts(self) -> str:
        return f"alerts-{self.suffix}"

    @property
    def labels(self) -> str:
        return f"labels-{self.suffix}"

    @property
    def dlq(self) -> str:
        return f"dlq-{self.suffix}"

    @property
    def changelog(self) -> str:
        return f"sd-{self.suffix}-state-changelog"

    @property
    def evidence(self) -> str:
        """The link-evidence topic (the worker's default name for this app id)."""
        return f"sd-{self.suffix}-link-evidence"

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_DETECTOR_")}
        env.update(
            STREAM_DETECTOR_BOOTSTRAP_SERVERS=self.bootstrap,
            STREAM_DETECTOR_APP_ID=f"sd-{self.suffix}",
            STREAM_DETECTOR_TOPIC_EVENTS=self.events,
            STREAM_DETECTOR_TOPIC_ALERTS=self.alerts,
            STREAM_DETECTOR_TOPIC_LABELS=self.labels,
            STREAM_DETECTOR_TOPIC_DLQ=self.dlq,
            STREAM_DETECTOR_PARTITIONS=str(self.partitions),
            STREAM_DETECTOR_DATA_DIR=str(data_dir),
            STREAM_DETECTOR_COMMIT_INTERVAL_S=str(self.commit_interval_s),
            STREAM_DETECTOR_SESSION_TIMEOUT_S="6",
            STREAM_DETECTOR_LOG_FORMAT="json",
            STREAM_DETECTOR_LOG_LEVEL="INFO",
        )
        env.update(extra)
        return env


class WorkerProcess:
    """`stream-detector worker` (python -m stream_detector worker) in its own process group,
    logs to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = {**env, "STREAM_DETECTOR_METRICS_PORT": str(self.port)}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stream_detector", "worker"],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def _get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.tail()
            try:
                if self._get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"worker not ready in {timeout} s\n{self.tail()}")

    def metric(self, name: str, labels: str = "") -> float:
        """Value of one sample of /metrics (0 when absent)."""
        _, text = self._get("/metrics")
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait: the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def ensure_dead(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def crc32_partition(key: bytes | None, partitions: int) -> int:
    """librdkafka's consistent partitioner (CRC32), unlike aiokafka's and Java's murmur2."""
    return zlib.crc32(key or b"") % partitions


async def produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes | None]],
    partitions: int,
    partitioner: Callable[[bytes | None, int], int] = crc32_partition,
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        compression_type="lz4",
        max_request_size=4 * 1024 * 1024,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, value=value, key=key, partition=partitioner(key, partitions))
        await producer.flush()
    finally:
        await producer.stop()


def keyed(lines: Iterable[bytes]) -> list[tuple[bytes | None, bytes | None]]:
    """(account_id key, line) of JSON Lines events, as a gateway sends them."""
    out: list[tuple[bytes | None, bytes | None]] = []
    for line in lines:
        account = orjson.loads(line).get("account_id")
        out.append((account.encode() if isinstance(account, str) else None, line))
    return out


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record now in `topic`, partition by partition in offset order ([] if absent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"]:  # not created yet
        return []
    tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            for tp, batch in (await consumer.getmany(timeout_ms=1000)).items():
                records.extend(r for r in batch if r.offset < ends[tp])
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return sorted(records, key=lambda r: (r.partition, r.offset))


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(every)


def expected_alerts(
    source_records: Iterable[Any], evidence_records: Iterable[Any] = ()
) -> dict[str, list[dict[str, Any]]]:
    """Alerts by id that one Detector per source partition gives over its events in order,
    and that a fresh campaign stage per evidence partition gives over the link evidence the
    workers sent (repeats included: the stage skips them), in its topic's order. An id may
    have two versions: a member's account alert decided by its account side and by the
    campaign stage alike (consumers de-duplicate on the id)."""
    detectors: dict[int, Detector] = {}
    alerts: dict[str, list[dict[str, Any]]] = {}

    def add(alert: Any) -> None:
        versions = alerts.setdefault(alert.alert_id, [])
        version = comparable(alert.to_dict())
        if version not in versions:
            versions.append(version)

    for record in source_records:
        try:
            if record.value is None or (record.key is not None and not _utf8(record.key)):
                continue  # the worker's dead letters
            event = parse_event(record.value)
        except Rejection:
            continue
        detector = detectors.setdefault(record.partition, Detector(link=False))
        for alert in detector.process(event):
            add(alert)
    stages: dict[int, StageState] = {}
    for record in evidence_records:
        stage = stages.setdefault(
            record.partition, StageState(record.partition, CampaignStage(), None)
        )
        for alert in stage.process([record]):
            add(alert)
    return alerts


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def comparable(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert without its wall-clock emission time (the only field a re-emission changes)."""
    return {k: v for k, v in alert.items() if k != "emitted_at"}


def alerts_by_id(records: Iterable[Any]) -> dict[str, list[dict[str, Any]]]:
    """Alerts read from the alerts topic, grouped by id (a redelivery repeats an id)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        alert = orjson.loads(record.value)
        assert record.key == alert["subject"].encode(), "alerts are keyed by subject"
        grouped.setdefault(alert["alert_id"], []).append(comparable(alert))
    return grouped


async def checkpoints(bootstrap: str, changelog: str, kind: str = "c") -> dict[int, int]:
    """Latest checkpointed source offset of each partition in the state changelog (kind
    "h": of each campaign stage, its next evidence offset)."""
    from stream_detector.worker.records import Checkpoint, StageCheckpoint, split_key

    decode = StageCheckpoint.decode if kind == "h" else Checkpoint.decode
    latest: dict[int, int] = {}
    for record in await read_topic(bootstrap, changelog):
        partition, found, _ = split_key(record.key)
        if found == kind and record.value is not None:
            latest[partition] = decode(record.value).offset
    return latest


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """End offset of each partition of `topic` ({} if it does not exist yet)."""
    return {
        p: max(r.offset for r in records) + 1
        for p, records in _by_partition(await read_topic(bootstrap, topic)).items()
    }


def _by_partition(records: list[Any]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for record in records:
        out.setdefault(record.partition, []).append(record)
    return out
