"""The `stream-detector` command line: one sub-command per module, each registering itself."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from stream_detector import __version__
from stream_detector.logs import setup_logging

#: Sub-command modules; each defines ``register(subparsers)`` that sets ``func`` on its parser.
COMMANDS = (
    "stream_detector.replay",
    "stream_detector.simulate",
    "stream_detector.evaluate",
    "stream_detector.worker",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, so that `--help` lists every command."""
    parser = argparse.ArgumentParser(
        prog="stream-detector",
        description=(
            "Detect model-extraction (distillation) campaigns in LLM API-call events. "
            "`replay` runs the detector over JSON Lines files without Kafka; `worker` runs it "
            "on Kafka; `simulate` makes labelled synthetic traffic; `evaluate` scores alerts "
            "against ground truth. Every option can also be set by environment variable "
            "(STREAM_DETECTOR_*), see README."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level",
        default=None,
        help="log level (DEBUG, INFO, WARNING, ERROR); env STREAM_DETECTOR_LOG_LEVEL",
    )
    parser.add_argument(
        "--log-format",
        choices=("json", "text"),
        default=None,
        help="structured JSON logs or plain text; env STREAM_DETECTOR_LOG_FORMAT (default json)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
