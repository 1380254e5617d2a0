"""The Kafka worker's throughput and latency on a real broker (a benchmark, not a test).

    python -m stream_detector.bench.worker [--bootstrap HOST:PORT] [--events 300000]
        [--accounts 100000] [--partitions 4] [--rate 5000] [--latency-seconds 30]
        [--standby-replicas 1]

Without --bootstrap it starts its own broker (deploy/kafka/broker.sh) in a temporary directory
and stops it at the end. Input: the simulator's default mix (prompt text included), simulated
once into .cache/bench/, with account ids spread so that the stream touches --accounts distinct
accounts: each benign simulated account's events are cut into consecutive runs, each run a new
account (realistic cardinality, a long tail of small accounts, without simulating millions of
events), the campaigns' accounts kept as they are (`--spread all` cuts them too). Figures:

1. raw: an aiokafka ``getmany`` loop with ``orjson.loads`` and a per-key count over the topic
   (best of a run before and one after the workers), the ceiling any consumer can reach here;
2. one worker end to end (parse, detect, alerts, write-behind state, the campaign stage): it
   starts on a new, empty topic; once it is ready the same messages are produced (as record
   batches built beforehand: a gateway's producers run on its own machines), and the
   clock runs from the first send until the last event is processed and the campaign stage
   has taken in all the link evidence; its ratio to the raw loop (which reads them
   pre-produced, with no producer beside it: the worker's figure is the conservative one);
3. two workers (a new consumer group, a new topic, `--standby-replicas` each) measured the
   same way, their ratio to one,
   and the CPU seconds the workers used per event in each run (on a machine whose cores the
   broker and the producer share, two workers may run out of cores before they run out of
   work: events per worker CPU second tell whether splitting the work cost more per event);
4. event-to-alert latency at a fixed rate: events produced live, alerts read back live;
   latency = alert read − send of the event that triggered it (p50, p99);
5. changelog bytes per event (keys + values, uncompressed) of run 2;
6. the core alone in this process (one `Detector` per partition, no Kafka), so that the
   worker's own overhead shows apart from the detector's cost per event.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.producer.message_accumulator import BatchBuilder

from stream_detector.bench.machine import busy_cpu_seconds, cpu_seconds, describe
from stream_detector.detector import Detector
from stream_detector.events import Rejection
from stream_detector.features import parse_features
from stream_detector.stage import CampaignStage
from stream_detector.worker.config import GC_THRESHOLDS

CACHE = Path(".cache/bench")
BROKER_SH = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "broker.sh"


# --- input ------------------------------------------------------------------------------------
def load_input(events: int, accounts: int, spread_all: bool = False) -> list[tuple[bytes, bytes]]:
    """(key, value) of `events` simulated events spread over about `accounts` accounts."""
    path = CACHE / f"worker-{events}-{accounts}-{'all' if spread_all else 'benign'}.jsonl"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        raw = CACHE / "worker-source.jsonl"
        if not raw.exists():
            # ~16,000 events per simulated hour at scale 1 of the default scenario.
            scale = max(1.0, events / 48_000)
            command = [sys.executable, "-m", "stream_detector", "--log-format", "text"]
            subprocess.run(
                [*command, "simulate", "--hours", "3", "--scale", f"{scale:.2f}", "-o", str(raw)],
                check=True,
            )
        lines = [line for line in raw.read_bytes().splitlines() if line.strip()][:events]
        campaign = set() if spread_all else campaign_accounts(raw.with_suffix(".truth.jsonl"))
        path.write_bytes(b"\n".join(spread(lines, accounts, campaign)) + b"\n")
    values = path.read_bytes().splitlines()
    return [(orjson.loads(v)["account_id"].encode(), v) for v in values]


def campaign_accounts(truth: Path) -> set[str]:
    """The accounts of the simulation's campaigns, from its ground truth."""
    rows = (orjson.loads(line) for line in truth.read_bytes().splitlines() if line.strip())
    return {row["account_id"] for row in rows if row.get("attack")}


def spread(lines: list[bytes], accounts: int, keep: set[str]) -> list[bytes]:
    """Rename accounts so that each run of `run` consecutive events of one simulated account
    becomes an account of its own (about `accounts` accounts in all), except the accounts in
    `keep`: by default the campaigns' keep their accounts and shape (a hydra account does not
    become twelve three-event accounts) and the benign traffic supplies the long tail of
    small accounts a gateway sees."""
    movable = sum(1 for line in lines if orjson.loads(line)["account_id"] not in keep)
    run = max(1, movable // max(1, accounts - len(keep)))
    seen: Counter[str] = Counter()
    out = []
    for line in lines:
        doc = orjson.loads(line)
        account = doc["account_id"]
        if account not in keep:
            doc["account_id"] = f"{account}-{seen[account] // run}"
            seen[account] += 1
        out.append(orjson.dumps(doc))
    return out


# --- broker and topics ------------------------------------------------------------------------
@contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    """The given bootstrap address, or a broker of our own for the duration."""
    if bootstrap:
        yield bootstrap
        return
    subprocess.run([str(BROKER_SH), "fetch"], check=True)
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as run_dir:
        started = subprocess.run(
            [str(BROKER_SH), "start", "--dir", run_dir], check=True, capture_output=True, text=True
        )
        try:
            yield started.stdout.strip()
        finally:
            subprocess.run([str(BROKER_SH), "stop", "--dir", run_dir], check=False)


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, partitions, 1, topic_configs={"max.message.bytes": "8388608"})]
        )
    finally:
        await admin.close()


def new_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        compression_type="lz4",
        max_batch_size=512 * 1024,
        max_request_size=8 * 1024 * 1024,
    )


async def produce_all(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes, bytes]],
    partitions: int,
    on_send: Callable[[], None] = lambda: None,
) -> float:
    """Produce everything (librdkafka-style CRC32 partitioning by key); seconds taken.

    The record batches are built first and `on_send` is called just before the first one is
    sent: in production the gateway's producers run on the gateway's machines, so here the
    cost of building them (~1 core for several seconds in Python) stays out of a run whose
    workers share this machine's two cores with the producer and the broker. What is left
    in the run is sending them (and their lz4 compression), as a gateway's would arrive."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        per_partition: list[list[BatchBuilder]] = [[] for _ in range(partitions)]
        for key, value in messages:
            batches = per_partition[zlib.crc32(key) % partitions]
            if not batches or batches[-1].append(key=key, value=value, timestamp=None) is None:
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
                batches.append(batch)

        async def send(partition: int, batches: list[BatchBuilder]) -> None:
            # in order within the partition, the partitions side by side
            sent = [await producer.send_batch(b, topic, partition=partition) for b in batches]
            await asyncio.gather(*sent)

        on_send()
        started = time.perf_counter()
        await asyncio.gather(*(send(p, batches) for p, batches in enumerate(per_partition)))
    finally:
        await producer.stop()
    return time.perf_counter() - started


# --- 1. the raw loop ------------------------------------------------------------------------
async def raw_loop(bootstrap: str, topic: str, partitions: int, total: int) -> float:
    """Events/s of consume + decode + per-key count over the whole topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a "latest" reset in flight would race the seek below
        fetch_max_bytes=50 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        counts: Counter[str] = Counter()
        seen = 0
        loads = orjson.loads
        started = time.perf_counter()
        while seen < total:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                for record in records:
                    counts[loads(record.value)["account_id"]] += 1
                seen += len(records)
        return total / (time.perf_counter() - started)
    finally:
        await consumer.stop()


# --- the core alone ---------------------------------------------------------------------------
def core_only(messages: list[tuple[bytes, bytes]], partitions: int) -> float:
    """Events/s of the detection core in this process, one `Detector` per partition and one
    campaign stage fed their link evidence, as in the worker, without Kafka: what the
    worker's own overhead is measured against (under the worker's GC thresholds)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        return _core_only(messages, partitions)
    finally:
        gc.set_threshold(*thresholds)


def _core_only(messages: list[tuple[bytes, bytes]], partitions: int) -> float:
    detectors = [Detector() for _ in range(partitions)]
    stage = CampaignStage()
    started = time.perf_counter()
    for key, value in messages:
        try:
            f = parse_features(value)
        except Rejection:
            continue
        detector = detectors[zlib.crc32(key) % partitions]
        detector.process_features(f)
        if detector.evidence:
            for evidence in detector.take_evidence():
                stage.observe(evidence)
    return len(messages) / (time.perf_counter() - started)


# --- worker processes -------------------------------------------------------------------------
class Worker:
    """`stream-detector worker` for one benchmark run."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        env = {**env, "STREAM_DETECTOR_METRICS_PORT": str(self.port)}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stream_detector", "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def get(self, path: str) -> tuple[int, str]:
        try:
            url = f"http://127.0.0.1:{self.port}{path}"
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except OSError:
            return 0, ""

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError("a worker exited during the benchmark (see its log)")
        return self.get("/readyz")[0] == 200

    def metrics(self, *names: str) -> dict[str, float]:
        """The given unlabelled samples (a restricted, cheap scrape)."""
        query = "&".join(f"name[]={name}" for name in names)
        values = {}
        for line in self.get(f"/metrics?{query}")[1].splitlines():
            if line and not line.startswith("#") and "{" not in line:
                name, _, value = line.partition(" ")
                values[name] = float(value)
        return values

    def events(self) -> float:
        return self.metrics("stream_detector_events_total").get("stream_detector_events_total", 0.0)

    def progress(self) -> tuple[float, float]:
        """(events processed, link evidence this worker sent that the campaign stage has not
        taken in yet — sum it over the workers: the stage lives on one of them)."""
        m = self.metrics(
            "stream_detector_events_total",
            "stream_detector_link_evidence_sent_total",
            "stream_detector_link_evidence_processed_total",
        )
        sent = m.get("stream_detector_link_evidence_sent_total", 0.0)
        done = m.get("stream_detector_link_evidence_processed_total", 0.0)
        return m.get("stream_detector_events_total", 0.0), sent - done

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_env(
    bootstrap: str, topic: str, app_id: str, data_dir: Path, standby: int = 1
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_DETECTOR_")}
    env.update(
        STREAM_DETECTOR_STANDBY_REPLICAS=str(standby),
        STREAM_DETECTOR_BOOTSTRAP_SERVERS=bootstrap,
        STREAM_DETECTOR_APP_ID=app_id,
        STREAM_DETECTOR_TOPIC_EVENTS=topic,
        STREAM_DETECTOR_TOPIC_ALERTS=f"{app_id}-alerts",
        STREAM_DETECTOR_TOPIC_LABELS=f"{app_id}-labels",
        STREAM_DETECTOR_TOPIC_DLQ=f"{app_id}-dlq",
        STREAM_DETECTOR_DATA_DIR=str(data_dir),
        STREAM_DETECTOR_LOG_LEVEL="WARNING",
    )
    return env


@dataclass
class Run:
    """One worker run's figures."""

    events_per_s: float
    produced_s: float
    #: CPU seconds the workers used during the run (user + system, all of them).
    worker_cpu_s: float
    #: Share of the machine's CPU time that was busy during the run (broker and producer too).
    machine_busy: float
    changelog: str
    events: float

    @property
    def events_per_cpu_s(self) -> float:
        return self.events / self.worker_cpu_s if self.worker_cpu_s else 0.0


def run_workers(
    bootstrap: str,
    messages: list[tuple[bytes, bytes]],
    partitions: int,
    count: int,
    total: int,
    work: Path,
    standby: int = 1,
) -> Run:
    """Events/s of `count` workers (a new group, a new topic) end to end: the workers start
    on an empty topic, and once all of them are ready (the group formed) every message is
    produced at once (`produce_all`); the clock runs from the first send until every event is
    processed by the account sides *and* all the link evidence they sent is taken in by the
    campaign stage (whose alerts are then out). Starting on pre-produced data instead would
    let the first worker to be assigned run alone until the others join. CPU seconds are
    counted per worker process, so that work per event shows apart from what the machine's
    cores allow."""
    app_id = f"bench-{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}-calls"
    asyncio.run(create_topic(bootstrap, topic, partitions))
    workers = [
        Worker(
            worker_env(bootstrap, topic, app_id, work / f"{app_id}-{i}", standby),
            work / "workers.log",
        )
        for i in range(count)
    ]
    try:
        deadline = time.monotonic() + 180
        while not all(w.ready() for w in workers):
            if time.monotonic() > deadline:
                raise RuntimeError("workers not ready in 180 s")
            time.sleep(0.05)
        time.sleep(2.0)  # a rebalance still in flight settles
        cpu: list[float] = []
        machine = started = 0.0

        def start_clock() -> None:
            nonlocal machine, started
            cpu.extend(cpu_seconds(w.proc.pid) for w in workers)
            machine = busy_cpu_seconds()
            started = time.perf_counter()

        produced = asyncio.run(produce_all(bootstrap, topic, messages, partitions, start_clock))
        while True:
            progress = [w.progress() for w in workers]
            done = sum(p[0] for p in progress)
            if done >= total and sum(p[1] for p in progress) <= 0:
                break
            time.sleep(0.25)
            for w in workers:
                w.ready()  # raises if one died
        elapsed = time.perf_counter() - started
        used = sum(cpu_seconds(w.proc.pid) - before for w, before in zip(workers, cpu, strict=True))
        return Run(
            events_per_s=done / elapsed,
            produced_s=produced,
            worker_cpu_s=used,
            machine_busy=(busy_cpu_seconds() - machine) / elapsed / (os.cpu_count() or 1),
            changelog=f"{app_id}-state-changelog",
            events=done,
        )
    finally:
        for w in workers:
            w.stop()


async def topic_bytes(bootstrap: str, topic: str) -> int:
    """Key + value bytes of every record in `topic` (uncompressed)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = await partitions_of(bootstrap, topic)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        size = 0
        remaining = {tp for tp in tps if ends[tp]}
        while remaining:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                size += sum(len(r.key or b"") + len(r.value or b"") for r in records)
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return size
    finally:
        await consumer.stop()


async def partitions_of(bootstrap: str, topic: str) -> set[int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        return set(await producer.partitions_for(topic))
    finally:
        await producer.stop()


# --- 4. latency at a fixed rate -----------------------------------------------------------
async def latency(
    bootstrap: str,
    messages: list[tuple[bytes, bytes]],
    partitions: int,
    rate: int,
    seconds: float,
    work: Path,
) -> dict[str, Any]:
    """Produce at `rate` events/s for `seconds` into a fresh topic with one worker on it;
    read alerts live; latency of each alert from the send of its triggering event."""
    app_id = f"bench-{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}-calls"
    await create_topic(bootstrap, topic, partitions)
    worker = Worker(worker_env(bootstrap, topic, app_id, work / app_id), work / "workers.log")
    sent_at: dict[float, float] = {}
    received: list[tuple[float, dict[str, Any]]] = []
    try:
        deadline = time.monotonic() + 180
        while not worker.ready():
            if time.monotonic() > deadline:
                raise RuntimeError("worker not ready in 180 s")
            await asyncio.sleep(0.05)
        stop = asyncio.Event()
        reader = asyncio.create_task(read_alerts(bootstrap, f"{app_id}-alerts", received, stop))
        producer = new_producer(bootstrap)
        await producer.start()
        todo = messages[: int(rate * seconds)]
        tick = 0.01
        per_tick = max(1, int(rate * tick))
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for i in range(0, len(todo), per_tick):
            await asyncio.sleep(max(0.0, begin + (i // per_tick) * tick - loop.time()))
            for key, value in todo[i : i + per_tick]:
                sent_at[_event_ts(value)] = time.time()
                await producer.send(topic, value, key=key, partition=zlib.crc32(key) % partitions)
        await producer.flush()
        achieved = len(todo) / (loop.time() - begin)
        await producer.stop()
        await asyncio.sleep(5)  # the last alerts
        stop.set()
        await reader
    finally:
        worker.stop()
    waits = sorted(
        got - sent_at[alert["event_ts"]] for got, alert in received if alert["event_ts"] in sent_at
    )
    return {
        "rate_events_per_s": round(achieved),
        "alerts": len(waits),
        "p50_s": round(statistics.median(waits), 3) if waits else None,
        "p99_s": round(waits[min(len(waits) - 1, int(0.99 * len(waits)))], 3) if waits else None,
        "max_s": round(waits[-1], 3) if waits else None,
    }


def _event_ts(value: bytes) -> float:
    try:
        return parse_features(value).ts
    except Rejection:
        return -1.0


async def read_alerts(
    bootstrap: str, topic: str, out: list[tuple[float, dict[str, Any]]], stop: asyncio.Event
) -> None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=20
    )
    await consumer.start()
    try:
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=50)).values():
                now = time.time()
                out.extend((now, orjson.loads(r.value)) for r in records)
    finally:
        await consumer.stop()


def throughput(
    bootstrap: str,
    messages: list[tuple[bytes, bytes]],
    valid: int,
    args: argparse.Namespace,
    work: Path,
    result: dict[str, Any],
) -> None:
    """Figures 1, 2, 3, 5 and 6 into `result`."""
    topic = f"bench-{uuid.uuid4().hex[:8]}-calls"
    asyncio.run(create_topic(bootstrap, topic, args.partitions))
    seconds = asyncio.run(produce_all(bootstrap, topic, messages, args.partitions))
    print(f"produced in {seconds:.1f} s", file=sys.stderr)
    raw = [asyncio.run(raw_loop(bootstrap, topic, args.partitions, len(messages)))]
    print(f"raw loop: {raw[0]:,.0f} events/s", file=sys.stderr)
    first = run_workers(bootstrap, messages, args.partitions, 1, valid, work)
    one = first.events_per_s
    print(f"one worker: {describe_run(first)}", file=sys.stderr)
    state_bytes = asyncio.run(topic_bytes(bootstrap, first.changelog))
    result["one_worker_events_per_cpu_s"] = round(first.events_per_cpu_s)
    result["one_worker_machine_busy"] = round(first.machine_busy, 2)
    if not args.skip_two:
        second = run_workers(bootstrap, messages, args.partitions, 2, valid, work, args.standby)
        two = second.events_per_s
        print(f"two workers: {describe_run(second)}", file=sys.stderr)
        result["two_workers_events_per_s"] = round(two)
        result["two_vs_one"] = round(two / one, 2)
        result["two_workers_events_per_cpu_s"] = round(second.events_per_cpu_s)
        result["two_workers_machine_busy"] = round(second.machine_busy, 2)
        result["two_vs_one_per_cpu_s"] = round(second.events_per_cpu_s / first.events_per_cpu_s, 2)
    raw.append(asyncio.run(raw_loop(bootstrap, topic, args.partitions, len(messages))))
    best = max(raw)
    core = core_only(messages, args.partitions)
    print(f"core alone: {core:,.0f} events/s", file=sys.stderr)
    result.update(
        raw_events_per_s=round(best),
        core_alone_events_per_s=round(core),
        one_worker_events_per_s=round(one),
        ratio_one_worker_to_raw=round(one / best, 3),
        ratio_one_worker_to_core=round(one / core, 3),
        changelog_bytes_per_event=round(state_bytes / len(messages), 1),
    )


def describe_run(run: Run) -> str:
    return (
        f"{run.events_per_s:,.0f} events/s, {run.events_per_cpu_s:,.0f} events per worker "
        f"CPU second, machine {run.machine_busy:.0%} busy (produced in {run.produced_s:.1f} s)"
    )


# --- main -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stream_detector.bench.worker",
        description=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--spread",
        choices=("benign", "all"),
        default="benign",
        help="cut the benign accounts into small ones to reach --accounts (default), or every "
        "account, the campaigns' too (many more, smaller campaign accounts)",
    )
    parser.add_argument("--rate", type=int, default=5000, help="events/s of the latency run")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--skip-two", action="store_true", help="skip the two-worker run")
    parser.add_argument(
        "--standby-replicas",
        dest="standby",
        metavar="N",
        type=int,
        default=1,
        help="STREAM_DETECTOR_STANDBY_REPLICAS of the two-worker run (default 1, the worker's "
        "default: each worker keeps a warm copy of the other's state, reading its changelog)",
    )
    parser.add_argument(
        "--latency-only", action="store_true", help="only the latency run (e.g. at other rates)"
    )
    args = parser.parse_args(argv)

    messages = load_input(args.events, args.accounts, args.spread == "all")
    valid = sum(1 for _, v in messages if _event_ts(v) >= 0)
    accounts = len({k for k, _ in messages})
    print(f"machine: {describe()}", file=sys.stderr)
    print(f"input: {len(messages):,} events, {accounts:,} accounts", file=sys.stderr)
    result: dict[str, Any] = {"events": len(messages), "accounts": accounts}
    with broker(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.latency_only:
            throughput(bootstrap, messages, valid, args, work, result)
        result["latency"] = asyncio.run(
            latency(bootstrap, messages, args.partitions, args.rate, args.latency_seconds, work)
        )
    result["machine"] = describe()
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
