"""Generate the stream-detector Grafana dashboards (JSON models) from code.

Why code: every panel then shares one datasource variable, the same `job`/`instance` matchers,
`$__rate_interval` and unit conventions that Grafana's dashboard-linter enforces, and the
end-to-end test can enumerate every PromQL expression. The generated JSON is committed beside
this file (grafana/dashboards/*.json) so Grafana provisioning needs no build step; a test fails
when the committed JSON differs from what this script produces.

Usage: python grafana/generate.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
MATCHERS = 'job=~"$job", instance=~"$instance"'
TAGS = ["stream-detector"]
CRITICAL = 'severity="critical"'
HIGH = 'severity="high"'

Panel = dict[str, Any]


def sel(metric: str, extra: str = "") -> str:
    """A selector with the dashboard's job/instance matchers (and optional extra matchers)."""
    return f"{metric}{{{MATCHERS}{', ' + extra if extra else ''}}}"


def rate(metric: str, extra: str = "", window: str = "$__rate_interval") -> str:
    return f"rate({sel(metric, extra)}[{window}])"


def quantile(q: float, histogram: str, by: str = "") -> str:
    """``histogram_quantile`` over the summed buckets of ``histogram`` (optionally per label)."""
    labels = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) ({rate(histogram + '_bucket')}))"


def target(expr: str, legend: str, ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref, **extra}


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


OK = ((None, "green"),)


def timeseries(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    unit: str,
    steps: tuple[tuple[float | None, str], ...] = OK,
    stack: bool = False,
    minimum: float | None = 0,
) -> Panel:
    custom: dict[str, Any] = {"fillOpacity": 10, "showPoints": "never", "lineWidth": 1}
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
        custom["fillOpacity"] = 60
    if len(steps) > 1:
        custom["thresholdsStyle"] = {"mode": "dashed"}
    defaults: dict[str, Any] = {"unit": unit, "custom": custom, "thresholds": thresholds(*steps)}
    if minimum is not None:
        defaults["min"] = minimum
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(
    title: str,
    description: str,
    expr: str,
    unit: str,
    steps: tuple[tuple[float | None, str], ...] = OK,
    legend: str = "",
) -> Panel:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target(expr, legend, instant=True)],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": thresholds(*steps),
                "color": {"mode": "thresholds"},
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "auto",
        },
    }


def bargauge(title: str, description: str, expr: str, legend: str, unit: str) -> Panel:
    return {
        "type": "bargauge",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target(expr, legend, instant=True, format="time_series")],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "min": 0,
                "thresholds": thresholds((None, "blue")),
                "color": {"mode": "thresholds"},
            },
            "overrides": [],
        },
        "options": {
            "orientation": "horizontal",
            "displayMode": "gradient",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
    }


def heatmap(title: str, description: str, expr: str, unit: str) -> Panel:
    return {
        "type": "heatmap",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target(expr, "{{le}}", format="heatmap")],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {
            "calculate": False,
            "yAxis": {"unit": unit},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "scale": "exponential"},
            "rowsFrame": {"layout": "le"},
            "tooltip": {"show": True, "yHistogram": True},
        },
    }


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def layout(panels: list[tuple[Panel, int, int]]) -> list[Panel]:
    """Place (panel, width, height) left to right on Grafana's 24-column grid; ids in order."""
    x = y = row_height = 0
    placed = []
    for number, (panel, width, height) in enumerate(panels, start=1):
        if panel["type"] == "row" or x + width > 24:
            x, y, row_height = 0, y + row_height, 0
        panel["gridPos"] = {"x": x, "y": y, "w": width, "h": height}
        panel["id"] = number
        placed.append(panel)
        x, row_height = x + width, max(row_height, height)
        if panel["type"] == "row":
            x, y, row_height = 0, y + height, 0
    return placed


def variables() -> list[dict[str, Any]]:
    def query_var(name: str, query: str) -> dict[str, Any]:
        return {
            "name": name,
            "label": name.capitalize(),
            "type": "query",
            "datasource": DATASOURCE,
            "query": query,
            "definition": query,
            "refresh": 2,
            "multi": True,
            "includeAll": True,
            "allValue": ".+",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
            "hide": 0,
        }

    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {"selected": False, "text": "Prometheus", "value": "prometheus"},
            "hide": 0,
            "refresh": 1,
        },
        query_var("job", "label_values(stream_detector_build_info, job)"),
        query_var("instance", 'label_values(stream_detector_build_info{job=~"$job"}, instance)'),
    ]


def dashboard(
    uid: str, title: str, description: str, panels: list[tuple[Panel, int, int]]
) -> Panel:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "utc",
        "templating": {"list": variables()},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": TAGS,
                "asDropdown": True,
                "title": "stream-detector",
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": layout(panels),
    }


def detections() -> Panel:
    alerts = "stream_detector_alerts_total"
    return dashboard(
        "stream-detector-detections",
        "stream-detector / Detections",
        "Model-extraction alerts emitted by the detector: volume, severity and score distribution.",
        [
            (row("Alerts"), 24, 1),
            (
                stat(
                    "Critical alerts (range)",
                    "Critical alerts emitted over the selected time range; each pages on-call.",
                    f"sum(increase({sel(alerts, CRITICAL)}[$__range]))",
                    "short",
                    ((None, "green"), (1, "red")),
                ),
                6,
                5,
            ),
            (
                stat(
                    "High alerts (range)",
                    "High-severity alerts over the selected time range; reviewed by analysts.",
                    f"sum(increase({sel(alerts, HIGH)}[$__range]))",
                    "short",
                    ((None, "green"), (1, "orange")),
                ),
                6,
                5,
            ),
            (
                stat(
                    "Accounts tracked",
                    "Accounts held in per-account state, summed over the selected workers.",
                    f"sum({sel('stream_detector_accounts_tracked')})",
                    "short",
                ),
                6,
                5,
            ),
            (
                stat(
                    "Candidate campaigns",
                    "Linked groups of accounts currently tracked as possible campaigns.",
                    f"sum({sel('stream_detector_campaigns_tracked')})",
                    "short",
                ),
                6,
                5,
            ),
            (
                timeseries(
                    "Alerts over time by severity",
                    "Alerts emitted per minute, stacked by severity (critical pages on-call).",
                    [target(f"60 * sum by (severity) ({rate(alerts)})", "{{severity}}")],
                    "cpm",
                    stack=True,
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Alerts over time by kind",
                    "Alerts per minute on single accounts versus clusters of accounts (campaigns).",
                    [target(f"60 * sum by (kind) ({rate(alerts)})", "{{kind}}")],
                    "cpm",
                    stack=True,
                ),
                12,
                8,
            ),
            (
                bargauge(
                    "Top severities (range)",
                    "Alerts per severity over the selected time range, largest first.",
                    f"sort_desc(sum by (severity) (increase({sel(alerts)}[$__range])))",
                    "{{severity}}",
                    "short",
                ),
                8,
                8,
            ),
            (row("Scores and learning"), 24, 1),
            (
                heatmap(
                    "Score distribution",
                    "Detector scores (0 to 1) computed when a subject's evidence changes, per "
                    "bucket over time; mass near 1 means confident detections.",
                    f"sum by (le) ({rate('stream_detector_score_bucket')})",
                    "percentunit",
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Score quantiles",
                    "Median and 90th/99th percentile of the detector's scores.",
                    [
                        target(quantile(0.5, "stream_detector_score"), "p50", "A"),
                        target(quantile(0.9, "stream_detector_score"), "p90", "B"),
                        target(quantile(0.99, "stream_detector_score"), "p99", "C"),
                    ],
                    "percentunit",
                    ((None, "green"), (0.8, "orange"), (0.95, "red")),
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Model updates from analyst labels",
                    "Online model updates per minute from labels on extraction-labels, by verdict.",
                    [
                        target(
                            f"60 * sum by (label) ({rate('stream_detector_model_updates_total')})",
                            "{{label}}",
                        )
                    ],
                    "cpm",
                ),
                12,
                8,
            ),
        ],
    )


def pipeline() -> Panel:
    events = "stream_detector_events_total"
    rejected = "stream_detector_events_rejected_total"
    return dashboard(
        "stream-detector-pipeline",
        "stream-detector / Pipeline health",
        "Is the detector keeping up: workers, throughput, consumer lag, rejects and latency.",
        [
            (row("Workers"), 24, 1),
            (
                stat(
                    "Workers up",
                    "Scrape targets answering; fewer than deployed means a worker is down.",
                    f"sum({sel('up')})",
                    "short",
                    ((None, "red"), (1, "green")),
                ),
                6,
                5,
            ),
            (
                stat(
                    "Workers ready",
                    "Workers whose state is recovered and that process events (/readyz).",
                    f"sum({sel('stream_detector_worker_ready')})",
                    "short",
                    ((None, "red"), (1, "green")),
                ),
                6,
                5,
            ),
            (
                stat(
                    "Events/s",
                    "Valid events processed per second, all selected workers.",
                    f"sum({rate(events)})",
                    "ops",
                ),
                6,
                5,
            ),
            (
                stat(
                    "Reject ratio",
                    "Share of incoming events rejected for breaking the event contract.",
                    f"sum({rate(rejected)}) / (sum({rate(events)}) + sum({rate(rejected)}))",
                    "percentunit",
                    ((None, "green"), (0.01, "orange"), (0.1, "red")),
                ),
                6,
                5,
            ),
            (row("Throughput"), 24, 1),
            (
                timeseries(
                    "Throughput per worker",
                    "Valid events processed per second by each worker.",
                    [target(f"sum by (instance) ({rate(events)})", "{{instance}}")],
                    "ops",
                    stack=True,
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Rejected by reason",
                    "Events per second rejected, by the contract rule they break.",
                    [target(f"sum by (reason) ({rate(rejected)})", "{{reason}}")],
                    "ops",
                    stack=True,
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Late, duplicate and dead-lettered events",
                    "Events per second later than the allowed lateness, repeated event_ids "
                    "(counted once), and messages written to the dead-letter topic.",
                    [
                        target(f"sum({rate('stream_detector_events_late_total')})", "late", "A"),
                        target(
                            f"sum({rate('stream_detector_events_duplicate_total')})",
                            "duplicate",
                            "B",
                        ),
                        target(
                            f"sum({rate('stream_detector_dlq_messages_total')})", "dead-letter", "C"
                        ),
                    ],
                    "ops",
                ),
                12,
                8,
            ),
            (row("Lag and latency"), 24, 1),
            (
                timeseries(
                    "Consumer lag per partition",
                    "Messages waiting between each partition's high watermark and the consumer.",
                    [
                        target(
                            "sum by (topic, partition) "
                            f"({sel('stream_detector_consumer_lag_messages')})",
                            "{{topic}}/{{partition}}",
                        )
                    ],
                    "short",
                    ((None, "green"), (10000, "orange"), (100000, "red")),
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Time since last processed event",
                    "Seconds since each worker last processed an event; rising while lag is "
                    "non-zero means consumption stalled.",
                    [
                        target(
                            "time() - max by (instance) "
                            f"({sel('stream_detector_last_event_timestamp_seconds')})",
                            "{{instance}}",
                        )
                    ],
                    "s",
                    ((None, "green"), (60, "orange"), (300, "red")),
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Processing time per event",
                    "Median and 99th percentile of per-event processing time (each micro-batch's "
                    "time spread over its events).",
                    [
                        target(
                            quantile(0.5, "stream_detector_event_processing_seconds"), "p50", "A"
                        ),
                        target(
                            quantile(0.99, "stream_detector_event_processing_seconds"), "p99", "B"
                        ),
                    ],
                    "s",
                    ((None, "green"), (0.001, "red")),
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Campaign stage: link evidence",
                    "Link evidence per second sent by the account sides and taken in by the "
                    "campaign stage; taken-in below sent for long means the stage falls behind "
                    "(its topic's lag shows in the consumer lag panel).",
                    [
                        target(
                            f"sum({rate('stream_detector_link_evidence_sent_total')})", "sent", "A"
                        ),
                        target(
                            f"sum({rate('stream_detector_link_evidence_processed_total')})",
                            "taken in",
                            "B",
                        ),
                    ],
                    "ops",
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Event-time lag",
                    "Median and 99th percentile of processing time minus the event's ts: how late "
                    "detections are relative to the API calls.",
                    [
                        target(quantile(0.5, "stream_detector_event_lag_seconds"), "p50", "A"),
                        target(quantile(0.99, "stream_detector_event_lag_seconds"), "p99", "B"),
                    ],
                    "s",
                    ((None, "green"), (60, "orange"), (300, "red")),
                ),
                12,
                8,
            ),
        ],
    )


def capacity() -> Panel:
    cpu = "process_cpu_seconds_total"
    return dashboard(
        "stream-detector-capacity",
        "stream-detector / Capacity",
        "Resources per worker against the work done: CPU, memory, state size, flush and recovery.",
        [
            (row("Resources"), 24, 1),
            (
                timeseries(
                    "CPU per worker",
                    "CPU time per second of each worker process (1 = one core busy); the Python "
                    "worker uses one core, so near 1 it is saturated.",
                    [target(f"sum by (instance) ({rate(cpu)})", "{{instance}}")],
                    "percentunit",
                    ((None, "green"), (0.8, "orange"), (0.95, "red")),
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Resident memory per worker",
                    "Resident set size of each worker process (per-account state lives here).",
                    [
                        target(
                            f"sum by (instance) ({sel('process_resident_memory_bytes')})",
                            "{{instance}}",
                        )
                    ],
                    "bytes",
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Events per CPU-second",
                    "Events processed per second of CPU: the worker's efficiency; divide the "
                    "expected peak events/s by it for the cores needed.",
                    [
                        target(
                            f"sum by (instance) ({rate('stream_detector_events_total')}) "
                            f"/ sum by (instance) ({rate(cpu)})",
                            "{{instance}}",
                        )
                    ],
                    "short",
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Accounts tracked per worker",
                    "Accounts held in state by each worker; memory grows with it until idle "
                    "accounts expire.",
                    [
                        target(
                            f"sum by (instance) ({sel('stream_detector_accounts_tracked')})",
                            "{{instance}}",
                        )
                    ],
                    "short",
                ),
                12,
                8,
            ),
            (row("State"), 24, 1),
            (
                timeseries(
                    "State flush duration",
                    "99th percentile duration of a write-behind flush of dirty accounts to the "
                    "changelog.",
                    [
                        target(
                            quantile(0.99, "stream_detector_state_flush_seconds", "instance"),
                            "{{instance}}",
                        )
                    ],
                    "s",
                    ((None, "green"), (1, "orange"), (5, "red")),
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Accounts flushed per second",
                    "Account snapshots written to the changelog per second (broker write load).",
                    [
                        target(
                            "sum by (instance) "
                            f"({rate('stream_detector_state_flushed_accounts_total')})",
                            "{{instance}}",
                        )
                    ],
                    "ops",
                ),
                8,
                8,
            ),
            (
                stat(
                    "Mean state recovery time",
                    "Average time to restore state from the changelog at start or on partition "
                    "assignment, since each worker started; readiness waits for it.",
                    f"max(sum by (instance) ({sel('stream_detector_state_recovery_seconds_sum')}) "
                    f"/ sum by (instance) ({sel('stream_detector_state_recovery_seconds_count')}))",
                    "s",
                    ((None, "green"), (60, "orange"), (600, "red")),
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Open file descriptors",
                    "Open file descriptors as a share of the limit (RocksDB and Kafka sockets).",
                    [
                        target(
                            f"max by (instance) ({sel('process_open_fds')} "
                            f"/ {sel('process_max_fds')})",
                            "{{instance}}",
                        )
                    ],
                    "percentunit",
                    ((None, "green"), (0.8, "red")),
                ),
                12,
                8,
            ),
        ],
    )


DASHBOARDS = {"detections": detections, "pipeline": pipeline, "capacity": capacity}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is stale")
    args = parser.parse_args()
    stale = []
    for name, build in DASHBOARDS.items():
        path = OUT_DIR / f"{name}.json"
        text = render(build)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    if stale:
        print("stale dashboards (run python grafana/generate.py):", *stale, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
