"""Grafana dashboards as code: generated JSON is current, follows the linter's rules (and the
one check its pinned snapshot misses), uses only exported series, and dashboard-linter
``lint --strict`` passes on each dashboard."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .support import GRAFANA_DIR, SERIES_NAME, exported_series_names, require_tool, run

DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p["targets"]]


def test_generated_json_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(GRAFANA_DIR / "generate.py"), "--check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_three_dashboards_with_unique_uids() -> None:
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert sorted(uids) == [
        "stream-detector-capacity",
        "stream-detector-detections",
        "stream-detector-pipeline",
    ]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_conventions(path: Path) -> None:
    board = load(path)
    assert board["editable"] is False
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["datasource"]["uid"] == "${datasource}"
        assert variables[name]["multi"] and variables[name]["allValue"] == ".+"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        where = f"{path.stem}: {panel['title']}"
        assert panel["description"], where
        assert panel["datasource"]["uid"] == "${datasource}", where
        assert panel["fieldConfig"]["defaults"].get("unit"), where
        for target in panel["targets"]:
            expr = target["expr"]
            assert target["datasource"]["uid"] == "${datasource}", where
            assert expr.count('job=~"$job"') == expr.count("{"), where
            assert expr.count('instance=~"$instance"') == expr.count("{"), where
            for window in re.findall(r"\[([^\]]+)\]", expr):
                assert window in ("$__rate_interval", "$__range"), where


def test_counters_are_only_read_through_rate_or_increase() -> None:
    """The linter snapshot misses ``sum(x_total{...})``: check every counter selector here."""
    for path in DASHBOARDS:
        for expr in exprs(load(path)):
            for match in re.finditer(r"([a-z_]+_total)\{", expr):
                before = expr[: match.start()]
                assert re.search(r"\b(rate|increase)\($", before), (path.stem, expr)


def test_dashboards_use_only_series_the_worker_exports() -> None:
    exported = exported_series_names()
    for path in DASHBOARDS:
        board = load(path)
        for expr in exprs(board) + [v.get("query", "") for v in board["templating"]["list"]]:
            used = set(SERIES_NAME.findall(expr)) - {"label_values"}
            assert used <= exported, (path.stem, used - exported)


def test_provisioning_points_at_the_dashboards() -> None:
    source = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text())
    (datasource,) = source["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(
        (GRAFANA_DIR / "provisioning/dashboards/stream-detector.yml").read_text()
    )
    (dashboards,) = provider["providers"]
    assert dashboards["allowUiUpdates"] is False
    assert dashboards["options"]["path"] == "/var/lib/grafana/dashboards/stream-detector"


@pytest.mark.monitoring
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_linter_strict(path: Path) -> None:
    linter = require_tool("dashboard-linter")
    proc = run(linter, "lint", "--strict", path, ok=False, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "❌" not in proc.stdout + proc.stderr and "⚠" not in proc.stdout + proc.stderr


@pytest.mark.monitoring
def test_dashboard_linter_rejects_a_bad_dashboard(tmp_path: Path) -> None:
    """The linter really lints: a counter without rate and an editable board fail."""
    linter = require_tool("dashboard-linter")
    board = load(DASHBOARDS[0])
    board["editable"] = True
    panels(board)[0]["targets"][0]["expr"] = "stream_detector_events_total"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(board))
    proc = run(linter, "lint", "--strict", bad, ok=False)
    assert proc.returncode != 0
    assert "editable" in proc.stdout + proc.stderr
