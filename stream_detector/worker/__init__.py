"""`stream-detector worker`: the detector on Kafka (Faust for group membership and state
recovery, a lean aiokafka loop for the events). Configured by ``STREAM_DETECTOR_*``
environment variables (see `stream_detector.worker.config`); SIGTERM stops it cleanly
(state flushed, checkpoints written) and exits 0."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run the detector on Kafka (Faust worker)",
        description=(
            "Consume API-call events from Kafka, keep per-account state with changelog "
            "recovery, and produce alerts. Configured by STREAM_DETECTOR_* environment "
            "variables: BOOTSTRAP_SERVERS, SECURITY_PROTOCOL, SASL_*, SSL_*, TOPIC_EVENTS, "
            "TOPIC_ALERTS, TOPIC_LABELS, TOPIC_DLQ, TOPIC_EVIDENCE, EVIDENCE_PARTITIONS, APP_ID, "
            "PARTITIONS, STORE (rocksdb|memory), "
            "DATA_DIR, COMMIT_INTERVAL_S, METRICS_HOST, METRICS_PORT, ... (see README)."
        ),
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the worker; returns when it stops (SIGTERM/SIGINT)."""
    # Imported here so that `stream-detector --help` does not pay for Faust.
    import faust
    from aiokafka.errors import KafkaError

    from stream_detector.config import ConfigError
    from stream_detector.worker.app import load_app

    try:
        app = load_app()
    except ConfigError as exc:
        print(f"stream-detector worker: configuration error: {exc}", file=sys.stderr)
        return 2
    except (KafkaError, OSError) as exc:
        print(f"stream-detector worker: cannot reach Kafka: {exc!r}", file=sys.stderr)
        return 1
    level = logging.getLevelName(logging.getLogger().level)
    worker = faust.Worker(
        app,
        loglevel=level,
        override_logging=False,
        quiet=True,
        redirect_stdouts=False,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0
