"""Prometheus config, recording and alerting rules: promtool accepts them and the unit tests
make every alerting rule fire and stay silent; the rules follow the mixin conventions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .support import PROMETHEUS_DIR, SERIES_NAME, exported_series_names, require_tool, run

ALERTS = PROMETHEUS_DIR / "rules" / "alerts.yml"
RECORDING = PROMETHEUS_DIR / "rules" / "recording.yml"
UNIT_TESTS = PROMETHEUS_DIR / "tests" / "alerts_test.yml"
RUNBOOK = PROMETHEUS_DIR / "runbook.md"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for group in load(ALERTS)["groups"] for rule in group["rules"]]


def test_alerting_rules_follow_mixin_conventions() -> None:
    rules = alerting_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)) >= 10
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in rules:
        assert re.fullmatch(r"StreamDetector[A-Z][A-Za-z]+", rule["alert"]), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), rule["alert"]
        assert annotations["runbook_url"].endswith("#" + rule["alert"].lower())
        assert rule["alert"].lower() in anchors, f"no runbook section for {rule['alert']}"


def test_pages_on_detections_and_on_the_detector_failing() -> None:
    critical = {r["alert"] for r in alerting_rules() if r["labels"]["severity"] == "critical"}
    assert {
        "StreamDetectorCriticalDetection",
        "StreamDetectorWorkerDown",
        "StreamDetectorConsumptionStalled",
        "StreamDetectorConsumerLagGrowing",
        "StreamDetectorDLQRateSpike",
        "StreamDetectorNoEvents",
    } <= critical


#: Every label the detector's metrics (plus Prometheus' job/instance and histogram le) carry.
BOUNDED_LABELS = {
    "job",
    "instance",
    "topic",
    "partition",
    "kind",
    "severity",
    "reason",
    "label",
    "le",
}


def test_rules_aggregate_only_by_bounded_labels() -> None:
    rules = [r for g in load(RECORDING)["groups"] for r in g["rules"]] + alerting_rules()
    for rule in rules:
        for clause in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", rule["expr"]):
            labels = {label.strip() for label in clause.split(",")}
            assert labels <= BOUNDED_LABELS, (rule.get("alert") or rule["record"], labels)


def test_unit_tests_cover_every_alert_firing_and_silent() -> None:
    """Each alerting rule has a promtool case where it fires and one where it does not."""
    fires: set[str] = set()
    silent: set[str] = set()
    for case in load(UNIT_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerting_rules()}
    assert names <= fires, names - fires
    assert names <= silent, names - silent


@pytest.mark.monitoring
def test_promtool_check_config_and_rules() -> None:
    promtool = require_tool("promtool")
    out = run(promtool, "check", "config", PROMETHEUS_DIR / "prometheus.yml").stdout
    assert "2 rule files found" in out
    run(promtool, "check", "rules", ALERTS, RECORDING)


@pytest.mark.monitoring
def test_promtool_rule_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    assert "SUCCESS" in run(promtool, "test", "rules", UNIT_TESTS).stdout


@pytest.mark.monitoring
def test_promtool_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """The unit tests are not vacuous: raising a threshold makes them fail."""
    promtool = require_tool("promtool")
    rules = tmp_path / "rules"
    rules.mkdir()
    broken = ALERTS.read_text().replace("== 0\n        for: 2m", "== 0\n        for: 20m")
    assert broken != ALERTS.read_text()
    (rules / "alerts.yml").write_text(broken)
    (rules / "recording.yml").write_text(RECORDING.read_text())
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "alerts_test.yml").write_text(UNIT_TESTS.read_text())
    proc = run(promtool, "test", "rules", tmp_path / "tests" / "alerts_test.yml", ok=False)
    assert proc.returncode != 0
    assert "StreamDetectorWorkerDown" in proc.stdout + proc.stderr


def test_rules_use_only_series_the_worker_exports() -> None:
    exported = exported_series_names()
    rules = [r for g in load(RECORDING)["groups"] for r in g["rules"]] + alerting_rules()
    for rule in rules:
        used = set(SERIES_NAME.findall(rule["expr"]))
        assert used <= exported, (rule.get("alert") or rule["record"], used - exported)
