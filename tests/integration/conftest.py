"""Fixtures of the worker tests: simulated traffic (once per session) and worker processes
that are always reaped."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from .harness import REPO, Deployment, WorkerProcess


@pytest.fixture(scope="session")
def sim_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """~49,000 events of the simulator's default mix (prompts included), ~1,400 accounts."""
    path = tmp_path_factory.mktemp("sim") / "events.jsonl"
    subprocess.run(
        [sys.executable, "-m", "stream_detector", "simulate", "--hours", "3", "-o", str(path)],
        check=True,
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )
    return [line for line in path.read_bytes().splitlines() if line.strip()]


class StartWorker(Protocol):
    def __call__(self, deployment: Deployment, name: str, **env: str) -> WorkerProcess: ...


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
    """`start_worker(deployment, name)`: a worker process with data dir and log named `name`
    (the same name again = a restart on the same local state); killed at teardown."""
    started: list[WorkerProcess] = []

    def start(deployment: Deployment, name: str, **env: str) -> WorkerProcess:
        worker = WorkerProcess(
            deployment.env(tmp_path / f"data-{name}", **env), tmp_path / f"{name}.log"
        )
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.ensure_dead()
