"""End to end: a real worker fed through the real broker, scraped by a real Prometheus running
the repository's rules, alerting through a real Alertmanager with the repository's routing.

- a simulated extraction campaign makes `StreamDetectorCriticalDetection` fire and Alertmanager
  deliver a PagerDuty Events v2 page to a receiver this test runs (and not to chat);
- every PromQL expression of every dashboard panel returns data, and every rule expression runs
  with all the series it reads present (alerting rules of a healthy worker are empty by design);
- `promtool check metrics` accepts a live scrape of the worker.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaProducer

from .stack import Alertmanager, Daemon, Prometheus, Receiver, free_port, http_get, wait_for
from .support import GRAFANA_DIR, PROMETHEUS_DIR, exported_series_names, require_tool, run

pytestmark = [pytest.mark.monitoring, pytest.mark.kafka, pytest.mark.slow]

#: A harvest campaign that `replay` alerts on at critical severity (checked before use).
SIMULATION = ["--scenario", "harvest", "--scale", "1", "--hours", "8", "--seed", "1"]
#: Contract-breaking messages appended to the stream: they must reach the reject/DLQ metrics.
POISON = [b"not json", b"[1, 2]", b'{"event_id": "x", "account_id": "a"}', b"\xff\xfe"]
#: Dashboard variables as Grafana would expand them for this job; the windows span the whole
#: run, so rates of a worker that has finished the input still have data.
VARIABLES = {"$job": "stream-detector", "$instance": ".+", "$__rate_interval": "5m"}
VARIABLES["$__range"] = "15m"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "stream_detector", *args)


@dataclass
class Stack:
    prometheus: Prometheus
    alertmanager: Alertmanager
    receiver: Receiver
    worker: Daemon
    metrics_url: str
    events: int


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """Simulated traffic with a campaign, and how many valid events (duplicates included)."""
    workdir = tmp_path_factory.mktemp("e2e-input")
    events = workdir / "events.jsonl"
    cli("simulate", *SIMULATION, "-o", str(events))
    alerts = workdir / "alerts.jsonl"
    summary = cli("replay", str(events), "--alerts", str(alerts)).stderr
    severities = [json.loads(line)["severity"] for line in alerts.read_text().splitlines()]
    assert "critical" in severities, f"precondition: replay finds a critical alert\n{summary}"
    counts = re.search(r"(\d+) lines .* (\d+) rejected", summary)
    assert counts, summary
    return events, int(counts.group(1)) - int(counts.group(2))


async def produce(bootstrap: str, topic: str, events: Path, labels_topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, compression_type="lz4")
    await producer.start()
    try:
        first_account = ""
        with events.open("rb") as lines:
            for line in lines:
                account = json.loads(line)["account_id"]
                first_account = first_account or account
                await producer.send(topic, key=account.encode(), value=line.rstrip(b"\n"))
        for value in POISON:
            await producer.send(topic, key=b"poison", value=value)
        label = {"account_id": first_account, "label": "benign", "ts": 0}
        await producer.send(
            labels_topic, key=first_account.encode(), value=json.dumps(label).encode()
        )
        await producer.flush()
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, campaign: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    events, n_events = campaign
    workdir = tmp_path_factory.mktemp("e2e-stack")
    suffix = workdir.name.replace("_", "-")
    port = free_port()
    topics = {
        "STREAM_DETECTOR_TOPIC_EVENTS": f"api-calls-{suffix}",
        "STREAM_DETECTOR_TOPIC_ALERTS": f"extraction-alerts-{suffix}",
        "STREAM_DETECTOR_TOPIC_LABELS": f"extraction-labels-{suffix}",
        "STREAM_DETECTOR_TOPIC_DLQ": f"api-calls-dlq-{suffix}",
    }
    env = {
        **os.environ,
        **topics,
        "STREAM_DETECTOR_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_DETECTOR_APP_ID": f"e2e-{suffix}",
        "STREAM_DETECTOR_PARTITIONS": "2",
        "STREAM_DETECTOR_DATA_DIR": str(workdir / "data"),
        "STREAM_DETECTOR_METRICS_HOST": "127.0.0.1",
        "STREAM_DETECTOR_METRICS_PORT": str(port),
    }
    metrics_url = f"http://127.0.0.1:{port}"
    receiver = Receiver()
    started: list[Daemon] = []
    try:
        worker = Daemon(
            "worker",
            [sys.executable, "-m", "stream_detector", "worker"],  # = stream-detector worker
            workdir,
            f"{metrics_url}/readyz",
            env=env,
            timeout=120,
        )
        started.append(worker)
        alertmanager = Alertmanager(workdir, receiver)
        started.append(alertmanager)
        prometheus = Prometheus(workdir, f"127.0.0.1:{port}", alertmanager)
        started.append(prometheus)
        # Counters that move before Prometheus' first scrape would show no increase.
        wait_for("the first scrape", lambda: prometheus.query("up == 1"), timeout=30)
        asyncio.run(
            produce(
                kafka_bootstrap,
                topics["STREAM_DETECTOR_TOPIC_EVENTS"],
                events,
                topics["STREAM_DETECTOR_TOPIC_LABELS"],
            )
        )
        yield Stack(prometheus, alertmanager, receiver, worker, metrics_url, n_events)
    finally:
        for daemon in reversed(started):
            daemon.stop()
        receiver.close()


def values(result: list[dict[str, Any]]) -> list[float]:
    return [float(sample["value"][1]) for sample in result]


@pytest.fixture(scope="module")
def processed(stack: Stack) -> Stack:
    """The stack once Prometheus has scraped every valid event processed and lag back at 0."""

    def done() -> bool:
        got = values(stack.prometheus.query("sum(stream_detector_events_total)"))
        return bool(got) and got[0] >= stack.events

    wait_for(f"{stack.events} events scraped\n{stack.worker.tail()}", done, timeout=300, step=1)
    return stack


def test_consumer_lag_returns_to_zero_once_input_is_consumed(processed: Stack) -> None:
    """Else an idle, healthy worker would page as StreamDetectorConsumptionStalled."""
    query = processed.prometheus.query
    wait_for(
        "consumer lag 0",
        lambda: values(query("sum(stream_detector_consumer_lag_messages)")) == [0.0],
        timeout=30,
    )


def test_live_scrape_passes_promtool_check_metrics(processed: Stack) -> None:
    promtool = require_tool("promtool")
    status, body = http_get(f"{processed.metrics_url}/metrics")
    assert status == 200
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    assert b"stream_detector_events_rejected_total" in body


def test_poison_messages_reach_the_reject_and_dlq_metrics(processed: Stack) -> None:
    query = processed.prometheus.query
    wait_for(
        "rejected events scraped",
        lambda: sum(values(query("sum(stream_detector_events_rejected_total)"))) >= len(POISON),
        timeout=30,
    )
    assert sum(values(query("sum(stream_detector_dlq_messages_total)"))) >= len(POISON)


def test_critical_detection_pages_pagerduty_not_chat(processed: Stack) -> None:
    def paged() -> list[dict[str, Any]]:
        return [
            page
            for page in processed.receiver.on("/v2/enqueue")
            if "StreamDetectorCriticalDetection" in json.dumps(page)
        ]

    try:
        pages = wait_for("a PagerDuty page", paged, timeout=60)
    except AssertionError as err:
        state = f"{processed.prometheus.alerts()}\n{processed.alertmanager.tail()}"
        raise AssertionError(f"{err}\nalerts: {state}") from None
    page = pages[0]
    assert page["routing_key"] == "e2e-routing-key"
    assert page["event_action"] == "trigger"
    assert page["payload"]["severity"] == "critical"
    assert page["payload"]["summary"].startswith("[FIRING:")
    assert "runbook.md#streamdetectorcriticaldetection" in json.dumps(page)
    chat = json.dumps(processed.receiver.on("/slack"))
    assert "StreamDetectorCriticalDetection" not in chat


def dashboard_queries() -> list[tuple[str, str, str]]:
    queries = []
    for path in sorted((GRAFANA_DIR / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for name in sorted(VARIABLES, key=len, reverse=True):
                    expr = expr.replace(name, VARIABLES[name])
                queries.append((path.stem, panel["title"], expr))
    return queries


#: Histograms the drivers do not feed yet, and why: their panels are expected to be empty.
KNOWN_GAPS: dict[str, str] = {}  # metric name -> why its panels may have no data yet


def test_every_dashboard_query_returns_data(processed: Stack) -> None:
    """Each panel query returns a finite value; each histogram it reads has observations."""
    missing = []
    for board, title, expr in dashboard_queries():
        gaps = [name for name in KNOWN_GAPS if f"{name}_" in expr]
        got = values(processed.prometheus.query(expr))
        finite = any(math.isfinite(v) for v in got)
        observed = all(
            sum(values(processed.prometheus.query(f"sum({name}_count)"))) > 0
            for name in re.findall(r"\b(stream_detector_\w+)_bucket\b", expr)
        )
        if gaps:
            assert not observed, f"{gaps} is fed now: remove it from KNOWN_GAPS"
        elif not (finite and observed):
            missing.append(f"{board} / {title}: {expr} -> {got}")
    assert not missing, "queries without data:\n" + "\n".join(missing)


def rule_expressions() -> list[tuple[str, str, bool]]:
    """(name, expr, is_alert) of every recording and alerting rule."""
    rules = []
    for name in ("recording.yml", "alerts.yml"):
        for group in yaml.safe_load((PROMETHEUS_DIR / "rules" / name).read_text())["groups"]:
            for rule in group["rules"]:
                rules.append((rule.get("alert") or rule["record"], rule["expr"], "alert" in rule))
    return rules


#: Alerting rules whose condition holds on this run (the others must be silent), and why.
FIRING = {
    "StreamDetectorCriticalDetection": "the simulated campaign reaches critical severity",
    "StreamDetectorEventLagHigh": "simulated events carry past timestamps (hours of lag)",
}
#: Alerting rules that may or may not hold on this run, and why.
EITHER = {
    "StreamDetectorHighSeverityDetection": "high alerts depend on the detector's tuning",
    "StreamDetectorSlowProcessing": "p99 per-event time of this scoring-heavy campaign is near "
    "the 1 ms threshold on a loaded 2-core machine (~0.9 ms measured)",
}


def test_every_rule_runs_with_its_inputs_present(processed: Stack) -> None:
    query = processed.prometheus.query
    names = sorted(exported_series_names(), key=len, reverse=True)
    selector = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b(\{[^}]*\})?")
    problems = []
    for name, expr, is_alert in rule_expressions():
        result = query(expr)  # a PromQL error fails here
        if not is_alert and not result:
            problems.append(f"recording rule {name} returned nothing")
        if is_alert and name not in EITHER and (name in FIRING) != bool(result):
            expected = "firing" if name in FIRING else "silent"
            problems.append(f"alert {name}: expected {expected}, got {values(result)}")
        for metric, matchers in selector.findall(expr):
            if not query(f"count({metric}{matchers})"):
                problems.append(f"{name}: no series {metric}{matchers}")
    assert not problems, "\n".join(problems)
