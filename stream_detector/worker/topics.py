"""Create the worker's topics when absent and check the partition counts that must agree.

The state changelog is co-partitioned with the source topic: partition p of the state holds
the accounts whose events arrive on partition p of `api-calls`, whatever partitioner the
gateway used. So the two counts must be equal, and a source topic that was re-partitioned
under existing state is refused rather than silently mixing accounts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream_detector.config import ENV_PREFIX, ConfigError
from stream_detector.worker.config import WorkerConfig

log = logging.getLogger(__name__)

#: Partition count of a source topic the worker creates when none is configured.
DEFAULT_PARTITIONS = 8
_UNKNOWN_TOPIC = 3
_TOPIC_EXISTS = 36
#: Room for the dead-letter headers (reason, detail, origin) on top of the original message.
_DLQ_HEADROOM = 64 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str]


async def ensure_topics(config: WorkerConfig) -> WorkerConfig:
    """Create absent topics; return `config` with the partition count resolved."""
    admin = AIOKafkaAdminClient(**config.kafka_client_args())
    await admin.start()
    try:
        existing = await _partition_counts(admin, _names(config))
        partitions = resolve_partitions(config, existing)
        config = config.with_partitions(partitions)
        missing = [spec for spec in plan(config) if spec.name not in existing]
        if missing:
            await _create(admin, missing, config.replication_factor)
    finally:
        await admin.close()
    return config


def resolve_partitions(config: WorkerConfig, existing: dict[str, int]) -> int:
    """The partition count of source and state; ConfigError when existing topics disagree."""
    source = existing.get(config.topic_events)
    state = existing.get(config.changelog_topic)
    partitions = config.partitions or source or state or DEFAULT_PARTITIONS
    evidence = existing.get(config.evidence_topic)
    if evidence is not None and evidence != config.evidence_partitions:
        raise ConfigError(
            f"link-evidence topic {config.evidence_topic!r} has {evidence} partitions but "
            f"{ENV_PREFIX}EVIDENCE_PARTITIONS={config.evidence_partitions}: campaign stage i "
            "reads evidence partition i, so the counts must agree"
        )
    if config.evidence_partitions > partitions:
        raise ConfigError(
            f"{ENV_PREFIX}EVIDENCE_PARTITIONS={config.evidence_partitions} exceeds the "
            f"{partitions} state partitions (stage i runs beside state partition i)"
        )
    if source is not None and source != partitions:
        raise ConfigError(
            f"topic {config.topic_events!r} has {source} partitions but "
            f"{ENV_PREFIX}PARTITIONS={config.partitions}: set it to {source} (or leave it unset)"
        )
    if state is not None and state != partitions:
        raise ConfigError(
            f"state changelog {config.changelog_topic!r} has {state} partitions but the source "
            f"{config.topic_events!r} has {partitions}: per-account state is co-partitioned "
            "with the source, so re-partitioning needs a new STREAM_DETECTOR_APP_ID "
            "(fresh state) or the old partition count"
        )
    return partitions


def plan(config: WorkerConfig) -> list[TopicSpec]:
    """Every topic the worker reads or writes, with what it is created with."""
    n = config.partitions
    big = {"max.message.bytes": str(config.max_message_bytes)}
    return [
        TopicSpec(config.topic_events, n, big),
        TopicSpec(config.topic_alerts, n, {}),
        TopicSpec(config.topic_labels, config.labels_partitions, {}),
        TopicSpec(
            config.topic_dlq,
            n,
            {"max.message.bytes": str(config.max_message_bytes + _DLQ_HEADROOM)},
        ),
        TopicSpec(config.changelog_topic, n, {"cleanup.policy": "compact"}),
        # Read by the campaign stage from its checkpoint on; kept 7 days (the default) so a
        # stage can be down that long and catch up.
        TopicSpec(config.evidence_topic, config.evidence_partitions, {}),
    ]


def _names(config: WorkerConfig) -> list[str]:
    return [
        config.topic_events,
        config.topic_alerts,
        config.topic_labels,
        config.topic_dlq,
        config.changelog_topic,
        config.evidence_topic,
    ]


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for topic in await admin.describe_topics(names):
        if topic["error_code"] == _UNKNOWN_TOPIC:
            continue
        if topic["error_code"]:
            raise ConfigError(f"cannot describe topic {topic['topic']!r}: {topic}")
        counts[topic["topic"]] = len(topic["partitions"])
    return counts


async def _create(admin: AIOKafkaAdminClient, specs: list[TopicSpec], replication: int) -> None:
    response = await admin.create_topics(
        [NewTopic(s.name, s.partitions, replication, topic_configs=s.configs) for s in specs]
    )
    for name, code, *rest in response.topic_errors:
        if code == _TOPIC_EXISTS:  # another worker created it meanwhile
            continue
        if code:
            raise ConfigError(f"cannot create topic {name!r}: error {code} {rest}")
        log.info("created topic", extra={"topic": name})
