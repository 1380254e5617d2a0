"""The repository's Alertmanager routing, run for real: alerts posted to a live Alertmanager reach
the right receiver, workers failing together make one page, and inhibition silences the
consequences of a dead worker. (Prometheus-side firing is covered by test_e2e.py.)"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from .stack import Alertmanager, Receiver, wait_for

pytestmark = pytest.mark.monitoring


@pytest.fixture(scope="module")
def routing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Alertmanager, Receiver]]:
    receiver = Receiver()
    alertmanager = Alertmanager(tmp_path_factory.mktemp("alertmanager"), receiver)
    try:
        yield alertmanager, receiver
    finally:
        alertmanager.stop()
        receiver.close()


def post(alertmanager: Alertmanager, *alerts: dict[str, str]) -> None:
    body = [
        {"labels": labels, "annotations": {"summary": "s", "description": "d", "runbook_url": "r"}}
        for labels in alerts
    ]
    request = urllib.request.Request(
        f"{alertmanager.url}/api/v2/alerts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 200


def mentions(notifications: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    return [n for n in notifications if text in json.dumps(n)]


def alert(name: str, severity: str, job: str, **extra: str) -> dict[str, str]:
    return {"alertname": name, "severity": severity, "job": job, **extra}


def test_critical_pages_and_warning_goes_to_chat(routing: tuple[Alertmanager, Receiver]) -> None:
    alertmanager, receiver = routing
    post(
        alertmanager,
        alert("StreamDetectorDLQRateSpike", "critical", "route-test"),
        alert("StreamDetectorHighRejectRate", "warning", "route-test-2"),
        alert("StreamDetectorLateEvents", "info", "route-test-3"),
    )
    page = wait_for(
        "the page", lambda: mentions(receiver.on("/v2/enqueue"), "StreamDetectorDLQRateSpike"), 20
    )[0]
    assert page["routing_key"] == "e2e-routing-key" and page["event_action"] == "trigger"
    chat = ("StreamDetectorHighRejectRate", "StreamDetectorLateEvents")
    wait_for("chat", lambda: all(mentions(receiver.on("/slack"), name) for name in chat), 20)
    for name in chat:
        assert not mentions(receiver.on("/v2/enqueue"), name), f"{name} must not page"
    assert not mentions(receiver.on("/slack"), "StreamDetectorDLQRateSpike")


def test_workers_down_together_make_one_page(routing: tuple[Alertmanager, Receiver]) -> None:
    alertmanager, receiver = routing
    post(
        alertmanager,
        *(
            alert("StreamDetectorWorkerDown", "critical", "group-test", instance=f"w{i}:9477")
            for i in range(5)
        ),
    )
    wait_for("the page", lambda: mentions(receiver.on("/v2/enqueue"), "group-test"), timeout=20)
    time.sleep(3)  # several (test-shortened) group intervals: any other page would have arrived
    pages = mentions(receiver.on("/v2/enqueue"), "group-test")
    # One PagerDuty incident: every notification of the group carries the same dedup_key (with
    # the tests' 0 s group_wait the first may hold only some of the five before an update).
    assert len({page["dedup_key"] for page in pages}) == 1, pages
    assert pages[-1]["payload"]["summary"].startswith("[FIRING:5] StreamDetectorWorkerDown")


def test_a_dead_worker_inhibits_its_consequences(routing: tuple[Alertmanager, Receiver]) -> None:
    alertmanager, receiver = routing
    post(alertmanager, alert("StreamDetectorWorkerDown", "critical", "inhibit-test"))
    wait_for("the page", lambda: mentions(receiver.on("/v2/enqueue"), "inhibit-test"), 20)
    post(
        alertmanager,
        alert("StreamDetectorConsumptionStalled", "critical", "inhibit-test"),
        alert("StreamDetectorNoEvents", "critical", "inhibit-test"),
        alert("StreamDetectorNoEvents", "critical", "inhibit-control"),  # another job: pages
    )
    wait_for(
        "the control page", lambda: mentions(receiver.on("/v2/enqueue"), "inhibit-control"), 20
    )
    time.sleep(3)
    inhibited = mentions(receiver.on("/v2/enqueue"), "inhibit-test")
    assert all("StreamDetectorWorkerDown" in json.dumps(n) for n in inhibited)
    assert not any(
        "StreamDetectorConsumptionStalled" in json.dumps(n) or "NoEvents" in json.dumps(n)
        for n in inhibited
    )
