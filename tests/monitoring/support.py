"""Helpers of the monitoring tests: repository paths and the external tools they run.

The tools (promtool, amtool, prometheus, prometheus-alertmanager, dashboard-linter) are
installed by deploy/monitoring/install.sh. Locally a missing tool skips its tests with the
reason; in CI (CI=true) a missing tool fails them, since CI must run every check.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTMANAGER_DIR = ROOT / "deploy" / "alertmanager"
GRAFANA_DIR = ROOT / "grafana"
INSTALL_SCRIPT = ROOT / "deploy" / "monitoring" / "install.sh"


def linter_path() -> Path | None:
    """The dashboard-linter that install.sh built (its cache, keyed by the pinned version)."""
    version = re.search(r"^LINTER_VERSION=(\S+)$", INSTALL_SCRIPT.read_text(), re.M)
    assert version, "install.sh pins LINTER_VERSION"
    cache = os.environ.get("STREAM_DETECTOR_TOOLS_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stream-detector"
    )
    candidate = Path(cache) / "dashboard-linter" / version.group(1) / "dashboard-linter"
    if candidate.is_file():
        return candidate
    found = shutil.which("dashboard-linter")
    return Path(found) if found else None


def require_tool(name: str) -> str:
    """Absolute path of a tool; skip locally when absent, fail in CI."""
    path = str(linter_path() or "") if name == "dashboard-linter" else shutil.which(name)
    if path:
        return path
    message = f"{name} not installed (run deploy/monitoring/install.sh)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}: CI must run the monitoring checks")
    pytest.skip(message)


def run(*args: str | Path, ok: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a tool; with ``ok`` assert exit 0 and show its output when it fails."""
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False, **kwargs
    )  # type: ignore[call-overload]
    if ok:
        assert proc.returncode == 0, (
            f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def exported_series_names() -> set[str]:
    """Every series name the worker exports (detector metrics, process/platform collectors)."""
    from stream_detector import metrics

    names = {"up"}
    for family in metrics.REGISTRY.collect():
        names.update(sample.name for sample in family.samples)  # labelled series may be unset
        suffixes = {"counter": ("_total",), "gauge": ("",), "info": ("_info",)}.get(
            family.type, ("_bucket", "_sum", "_count")
        )
        names.update(family.name + suffix for suffix in suffixes)
    return names


#: Series names in a PromQL expression: identifiers followed by a selector or range.
SERIES_NAME = re.compile(r"\b([a-zA-Z_][a-zA-Z0-9_]*)\s*(?=\{|\[)")
