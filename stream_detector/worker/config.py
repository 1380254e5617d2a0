"""The Kafka worker's settings, from ``STREAM_DETECTOR_*`` environment variables.

Every setting has a default that runs against a local broker; a bad value is a `ConfigError`
naming the variable and what it accepts, raised before anything connects. The detection core's
own settings (windows, thresholds) are `stream_detector.config.DetectorConfig`, read from the
same environment.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from stream_detector.config import ENV_PREFIX, ConfigError

#: The worker's cyclic-GC thresholds (set by `app.load_app`). Python's defaults (700, 10, 10)
#: run a full collection about every 70,000 net allocations once the heap has grown by a
#: quarter: over a worker's heap of accounts and campaign state that was ~12 % of its CPU on
#: the worker bench (12 full collections, 1.8 s of 15 s). Young collections stay frequent
#: (cycles die young); a full one is considered every 10,000,000 net allocations (minutes at
#: a busy worker's rate).
GC_THRESHOLDS = (10_000, 10, 100)

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
STORES = ("rocksdb", "memory")
OFFSET_RESETS = ("earliest", "latest")
COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")


@dataclass(frozen=True)
class WorkerConfig:
    """Connection, topics, state and runtime settings of `stream-detector worker`."""

    #: Comma-separated ``host:port`` list.
    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = ""
    #: CA bundle to verify the brokers (SSL/SASL_SSL); empty = system defaults.
    ssl_cafile: str = ""
    #: Client certificate and key for mutual TLS.
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    #: Consumer group of the workers and prefix of the internal topics.
    app_id: str = "stream-detector"
    topic_events: str = "api-calls"
    topic_alerts: str = "extraction-alerts"
    topic_labels: str = "extraction-labels"
    topic_dlq: str = "api-calls-dlq"
    #: Internal topic carrying link evidence from every partition to the campaign stage;
    #: empty = ``<app_id>-link-evidence``.
    topic_evidence: str = ""
    #: Partitions of the link-evidence topic = campaign stage instances (stage i runs beside
    #: state partition i). 1 (the default) finds campaigns across the whole deployment; more
    #: shard campaigns by payment key (see deploy/kafka/README.md).
    evidence_partitions: int = 1
    #: Partitions of the source topic and of the state changelog (co-partitioned). 0 = adopt
    #: the source topic's count, or 8 when the worker has to create it.
    partitions: int = 0
    #: Replication factor of the topics the worker creates.
    replication_factor: int = 1
    #: Partitions of `extraction-labels` when the worker creates it (one keeps analyst order).
    labels_partitions: int = 1
    #: Local state store: ``rocksdb`` (survives restarts, only the changelog tail is re-read)
    #: or ``memory`` (the whole changelog partition is read on assignment).
    store: str = "rocksdb"
    data_dir: str = "stream-detector-data"
    #: Seconds between write-behind flushes: dirty accounts, model and source offsets.
    commit_interval_s: float = 5.0
    #: Where a partition with no checkpoint starts reading.
    auto_offset_reset: str = "earliest"
    #: Group session timeout: how long a dead worker holds its partitions.
    session_timeout_s: float = 10.0
    #: Standby copies of each state partition kept warm on other workers.
    standby_replicas: int = 1
    #: Largest number of records taken from the consumer per loop iteration.
    max_poll_records: int = 5000
    #: Compression of the alerts, dead-letter and changelog records the worker produces.
    compression: str = "zstd"
    #: Producer linger (ms): alerts leave within this long of being decided.
    linger_ms: int = 5
    #: Largest message the worker produces or fetches (the dead-letter topic copies rejected
    #: messages whole, so it must hold the largest message the source topic accepts).
    max_message_bytes: int = 8 * 1024 * 1024
    #: /metrics, /healthz and /readyz; loopback unless deliberately exposed. Port 0 = any.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9477

    def __post_init__(self) -> None:
        _choice("SECURITY_PROTOCOL", self.security_protocol, SECURITY_PROTOCOLS)
        _choice("SASL_MECHANISM", self.sasl_mechanism, SASL_MECHANISMS)
        _choice("STORE", self.store, STORES)
        _choice("AUTO_OFFSET_RESET", self.auto_offset_reset, OFFSET_RESETS)
        _choice("COMPRESSION", self.compression, COMPRESSIONS)
        if not self.servers:
            raise ConfigError(f"{ENV_PREFIX}BOOTSTRAP_SERVERS is empty")
        for server in self.servers:
            host, _, port = server.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"{ENV_PREFIX}BOOTSTRAP_SERVERS: {server!r} is not host:port")
        names = (
            self.topic_events,
            self.topic_alerts,
            self.topic_labels,
            self.topic_dlq,
            self.evidence_topic,
        )
        if len(set(names)) != len(names) or not all(names):
            raise ConfigError(f"{ENV_PREFIX}TOPIC_*: topic names must be distinct and non-empty")
        _at_least("PARTITIONS", self.partitions, 0)
        _at_least("REPLICATION_FACTOR", self.replication_factor, 1)
        _at_least("LABELS_PARTITIONS", self.labels_partitions, 1)
        _at_least("EVIDENCE_PARTITIONS", self.evidence_partitions, 1)
        if self.partitions and self.evidence_partitions > self.partitions:
            raise ConfigError(
                f"{ENV_PREFIX}EVIDENCE_PARTITIONS={self.evidence_partitions} exceeds the "
                f"{self.partitions} state partitions (stage i runs beside state partition i)"
            )
        _at_least("STANDBY_REPLICAS", self.standby_replicas, 0)
        _at_least("MAX_POLL_RECORDS", self.max_poll_records, 1)
        _at_least("LINGER_MS", self.linger_ms, 0)
        _at_least("MAX_MESSAGE_BYTES", self.max_message_bytes, 1024 * 1024)
        if not 0 < self.commit_interval_s <= 600:
            raise ConfigError(f"{ENV_PREFIX}COMMIT_INTERVAL_S must be in (0, 600] seconds")
        if not 3 <= self.session_timeout_s <= 300:
            raise ConfigError(f"{ENV_PREFIX}SESSION_TIMEOUT_S must be in [3, 300] seconds")
        if not 0 <= self.metrics_port < 65536:
            raise ConfigError(f"{ENV_PREFIX}METRICS_PORT must be a port number (0 = any)")
        if self.sasl and not (self.sasl_username and self.sasl_password):
            raise ConfigError(
                f"{ENV_PREFIX}SECURITY_PROTOCOL={self.security_protocol} needs "
                f"{ENV_PREFIX}SASL_USERNAME and {ENV_PREFIX}SASL_PASSWORD"
            )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ConfigError(f"{ENV_PREFIX}{name.upper()}: no such file {path!r}")

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def evidence_topic(self) -> str:
        """The link-evidence topic (``TOPIC_EVIDENCE``, else ``<app_id>-link-evidence``)."""
        return self.topic_evidence or f"{self.app_id}-link-evidence"

    @property
    def changelog_topic(self) -> str:
        """Faust's name for the state table's changelog (``<app_id>-state-changelog``)."""
        return f"{self.app_id}-state-changelog"

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS context for SSL/SASL_SSL (CA and optional client certificate), else None."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile or None)
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile or None)
        return context

    def kafka_client_args(self) -> dict[str, Any]:
        """Connection arguments shared by aiokafka producers, consumers and admin clients."""
        args: dict[str, Any] = {
            "bootstrap_servers": self.servers,
            "security_protocol": self.security_protocol,
            "client_id": self.app_id,
        }
        if self.tls:
            args["ssl_context"] = self.ssl_context()
        if self.sasl:
            args["sasl_mechanism"] = self.sasl_mechanism
            args["sasl_plain_username"] = self.sasl_username
            args["sasl_plain_password"] = self.sasl_password
        return args

    def with_partitions(self, partitions: int) -> WorkerConfig:
        """A copy with the partition count resolved (see `topics.ensure_topics`)."""
        return dataclasses.replace(self, partitions=partitions)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerConfig:
        """Defaults overridden by ``STREAM_DETECTOR_<FIELD>``; a bad value raises ConfigError."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            name = ENV_PREFIX + spec.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            kind: Callable[[str], Any] = {"int": int, "float": float}.get(str(spec.type), str)
            try:
                values[spec.name] = kind(raw.strip()) if kind is not str else raw
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
        return cls(**values)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{ENV_PREFIX}{name}={value!r}: expected one of {', '.join(allowed)}")


def _at_least(name: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ConfigError(f"{ENV_PREFIX}{name}={value} must be >= {minimum}")
