"""Alertmanager routing: critical pages PagerDuty, warning and info go to chat, amtool agrees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .support import ALERTMANAGER_DIR, require_tool, run

CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"


def load() -> Any:
    return yaml.safe_load(CONFIG.read_text())


def local_config(tmp_path: Path) -> Path:
    """The config with its template glob pointed at the repository (it names the mount path)."""
    text = CONFIG.read_text().replace(
        "/etc/alertmanager/templates/", f"{ALERTMANAGER_DIR / 'templates'}/"
    )
    path = tmp_path / "alertmanager.yml"
    path.write_text(text)
    return path


def test_secrets_come_from_files_not_env_placeholders() -> None:
    """Alertmanager does not expand ${VAR}: keys must be *_file settings."""
    text = CONFIG.read_text()
    assert "${" not in text and "$(" not in text
    pagerduty = next(r for r in load()["receivers"] if r["name"] == "pagerduty")
    assert pagerduty["pagerduty_configs"][0]["routing_key_file"].startswith("/run/secrets/")


def test_grouping_and_repeat_avoid_paging_storms() -> None:
    route = load()["route"]
    assert route["group_by"] == ["alertname", "job"]
    page = next(r for r in route["routes"] if r["receiver"] == "pagerduty")
    hours = {"h": 1, "m": 1 / 60}
    assert int(page["repeat_interval"][:-1]) * hours[page["repeat_interval"][-1]] >= 1
    assert load()["inhibit_rules"], "worker-down must inhibit its consequences"


@pytest.mark.monitoring
def test_amtool_check_config(tmp_path: Path) -> None:
    amtool = require_tool("amtool")
    out = run(amtool, "check-config", local_config(tmp_path)).stdout
    assert "SUCCESS" in out and "2 receivers" in out


@pytest.mark.monitoring
@pytest.mark.parametrize(
    ("severity", "receiver"),
    [("critical", "pagerduty"), ("warning", "chat"), ("info", "chat"), ("", "chat")],
)
def test_routes(tmp_path: Path, severity: str, receiver: str) -> None:
    amtool = require_tool("amtool")
    config = local_config(tmp_path)
    labels = ["alertname=StreamDetectorWorkerDown", "job=stream-detector"]
    if severity:
        labels.append(f"severity={severity}")
    verify = f"--verify.receivers={receiver}"
    run(amtool, "config", "routes", "test", f"--config.file={config}", verify, *labels)
    other = "chat" if receiver == "pagerduty" else "pagerduty"
    wrong = run(
        amtool, "config", "routes", "test", f"--config.file={config}",
        f"--verify.receivers={other}", *labels, ok=False,
    )  # fmt: skip
    assert wrong.returncode == 1, f"severity={severity!r} must not reach {other}"


@pytest.mark.monitoring
def test_templates_render() -> None:
    amtool = require_tool("amtool")
    out = run(
        amtool, "template", "render",
        f"--template.glob={ALERTMANAGER_DIR / 'templates' / '*.tmpl'}",
        '--template.text={{ template "stream_detector.title" . }}|'
        '{{ template "stream_detector.text" . }}',
    ).stdout  # fmt: skip
    assert "|" in out and "Runbook:" in out
