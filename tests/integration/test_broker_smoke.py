"""The session broker works end to end: topic creation, compressed produce, group consume."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

pytestmark = pytest.mark.kafka


async def test_produce_consume(
    kafka_bootstrap: str,
    topic_suffix: str,
    create_topics: Callable[[dict[str, int]], Awaitable[None]],
) -> None:
    topic = f"smoke-{topic_suffix}"
    await create_topics({topic: 2})
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, compression_type="lz4")
    await producer.start()
    try:
        for i in range(200):
            await producer.send(topic, key=f"k{i % 7}".encode(), value=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"smoke-{topic_suffix}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen: dict[bytes, list[int]] = {}
    try:
        while sum(map(len, seen.values())) < 200:
            batches = await consumer.getmany(timeout_ms=10_000)
            assert batches, "no messages within 10 s"
            for tp, records in batches.items():
                for record in records:
                    assert record.key is not None and record.value is not None
                    seen.setdefault(record.key, []).append(int(record.value))
                    assert tp.partition in (0, 1)
    finally:
        await consumer.stop()
    assert sorted(v for values in seen.values() for v in values) == list(range(200))
    # One key, one partition: each key's values arrive in the order produced.
    assert all(values == sorted(values) for values in seen.values())
