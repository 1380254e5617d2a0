"""The Faust application: group membership, co-partitioned assignment and the state table.

The app has one table, ``state`` (raw bytes, see `records`), partitioned like the source
topic. Faust assigns its partitions across the workers (with standbys), restores them from the
changelog into the local store, and tells the `Engine` which partitions are now its own
(``on_recover``) and when they are about to move (``on_partitions_revoked``). The engine
stops and flushes before Faust leaves the group on shutdown.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faust
from faust.types import TP

from stream_detector.config import DetectorConfig
from stream_detector.health import HealthServer
from stream_detector.worker.config import GC_THRESHOLDS, WorkerConfig
from stream_detector.worker.engine import Engine
from stream_detector.worker.store import StateStore
from stream_detector.worker.topics import ensure_topics

TABLE = "state"


class DetectorApp(faust.App):
    """A Faust app whose `engine` starts before the consumer joins and stops before it leaves,
    next to the /metrics, /healthz and /readyz endpoint."""

    engine: Engine
    worker_config: WorkerConfig
    _health: HealthServer | None = None

    async def on_start(self) -> None:
        await super().on_start()
        if self._health is None:
            cfg = self.worker_config
            self._health = HealthServer(cfg.metrics_host, cfg.metrics_port).start()
        await self.engine.start()

    async def on_stop(self) -> None:
        await self.engine.stop()
        await super().on_stop()
        if self._health is not None:
            self._health.stop()
            self._health = None


def load_app(environ: Mapping[str, str] | None = None) -> DetectorApp:
    """Configuration from the environment, topics ensured, app built: what both
    `stream-detector worker` and `faust -A stream_detector.worker.faust_app` run.

    Sets a fresh event loop as the current one (Faust's worker runs on it), and the
    process's GC thresholds (`GC_THRESHOLDS`)."""
    gc.set_threshold(*GC_THRESHOLDS)
    config = WorkerConfig.from_env(environ)
    detector_config = DetectorConfig.from_env(environ)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    config = loop.run_until_complete(ensure_topics(config))
    return build_app(config, detector_config)


def _credentials(config: WorkerConfig) -> Any:
    if config.sasl:
        return faust.SASLCredentials(
            username=config.sasl_username,
            password=config.sasl_password,
            ssl_context=config.ssl_context(),
            mechanism=config.sasl_mechanism,
        )
    if config.tls:
        return faust.SSLCredentials(config.ssl_context())
    return None


def build_app(config: WorkerConfig, detector_config: DetectorConfig) -> DetectorApp:
    """The app for a resolved `config` (partition count known, see `topics.ensure_topics`)."""
    if config.partitions < 1:
        raise ValueError("resolve the partition count first (topics.ensure_topics)")
    data_dir = Path(config.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    app = DetectorApp(
        config.app_id,
        broker=[f"kafka://{server}" for server in config.servers],
        broker_credentials=_credentials(config),
        store=f"{config.store}://",
        datadir=str(data_dir),
        topic_partitions=config.partitions,
        topic_replication_factor=config.replication_factor,
        table_standby_replicas=config.standby_replicas,
        key_serializer="raw",
        value_serializer="raw",
        broker_session_timeout=config.session_timeout_s,
        broker_heartbeat_interval=max(config.session_timeout_s / 10, 0.5),
        # Nothing is served by Faust: /metrics and probes are `stream_detector.health`.
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
    )
    table = app.Table(TABLE, partitions=config.partitions, key_type=bytes, value_type=bytes)
    app.worker_config = config
    app.engine = Engine(config, detector_config, StateStore(table))
    changelog = table.changelog_topic.get_topic_name()

    async def _revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        await app.engine.on_partitions_revoked()

    app.on_partitions_revoked.connect(_revoked)  # type: ignore[arg-type]

    @table.on_recover
    async def _recovered() -> None:
        actives = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog}
        await app.engine.on_partitions_recovered(actives)

    return app
