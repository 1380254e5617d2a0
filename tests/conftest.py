"""Shared fixtures. The Kafka broker is real (deploy/kafka/broker.sh), one per test session,
started only when a test asks for `kafka_bootstrap` or `kafka_broker`."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

BROKER_SH = Path(__file__).resolve().parent.parent / "deploy" / "kafka" / "broker.sh"


class Broker:
    """A broker in its own run directory; tests may stop and start it (same ports, same data)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.bootstrap = ""

    def _run(self, command: str) -> str:
        done = subprocess.run(
            [str(BROKER_SH), command, "--dir", str(self.run_dir)],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"broker.sh {command} failed:\n{done.stderr}{done.stdout}")
        return done.stdout.strip()

    def start(self) -> str:
        self.bootstrap = self._run("start")
        return self.bootstrap

    def stop(self) -> None:
        self._run("stop")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The session's broker: jars fetched if missing (quick when cached), started, then stopped."""
    subprocess.run([str(BROKER_SH), "fetch"], check=True, capture_output=True, timeout=600)
    broker = Broker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Broker) -> str:
    """Bootstrap address ("127.0.0.1:PORT") of the session's broker."""
    return kafka_broker.bootstrap


@pytest.fixture
def topic_suffix() -> str:
    """A unique suffix, so tests sharing the session's broker never share a topic or group."""
    return uuid.uuid4().hex[:10]


CreateTopics = Callable[[dict[str, int]], Awaitable[None]]


@pytest.fixture
def create_topics(kafka_bootstrap: str) -> CreateTopics:
    """`await create_topics({name: partitions})` on the session broker (replication 1)."""

    async def create(partitions: dict[str, int]) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(name, count, replication_factor=1) for name, count in partitions.items()]
            )
        finally:
            await admin.close()

    return create
