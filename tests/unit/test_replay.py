"""`stream-detector replay` as a user runs it: files, gzip, stdin, bad lines, exit codes."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import orjson

from .builders import T0, harvester, lines, person

CLI = [sys.executable, "-m", "stream_detector", "--log-format", "text"]


def replay(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, "replay", *args], input=stdin, capture_output=True, timeout=120, check=False
    )


def stream() -> bytes:
    return lines(list(harvester("h1", T0, 3, 200)) + list(person("p1", T0, 1)))


def test_replay_writes_alerts_and_summary(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(stream())
    out = tmp_path / "alerts.jsonl"
    result = replay(str(source), "--alerts", str(out))
    assert result.returncode == 0, result.stderr
    alerts = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert alerts and {a["subject"] for a in alerts} == {"h1"}
    summary = result.stderr.decode()
    assert "events/s" in summary and "account critical" in summary


def test_gzip_stdin_and_plain_give_the_same_alert_ids(tmp_path: Path) -> None:
    data = stream()
    plain = tmp_path / "e.jsonl"
    plain.write_bytes(data)
    packed = tmp_path / "e.jsonl.gz"
    packed.write_bytes(gzip.compress(data))
    ids = []
    for args, stdin in (([str(plain)], None), ([str(packed)], None), (["-"], data)):
        result = replay(*args, stdin=stdin)
        assert result.returncode == 0, result.stderr
        ids.append([orjson.loads(x)["alert_id"] for x in result.stdout.splitlines()])
    assert ids[0] and ids[0] == ids[1] == ids[2]


def test_bad_lines_are_counted_by_reason_and_the_rest_processed(tmp_path: Path) -> None:
    good = stream()
    bad = b"\n".join(
        [
            b"\xff\xfe\x00garbage",
            b'{"event_id": "torn", "ts": 17672',
            b'{"event_id": "x", "ts": 1767225600, "account_id": "a", "output_tokens": -4}',
            b'{"event_id": "y", "ts": "not a time", "account_id": "a"}',
            b'{"ts": 1767225600, "account_id": "a"}',
            b"[]",
        ]
    )
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(bad + b"\n" + good + b'{"event_id": "tail", "ts": 1')  # torn last line
    rejects = tmp_path / "rejects.jsonl"
    result = replay(str(source), "--rejects", str(rejects), "--summary-json", str(tmp_path / "s"))
    assert result.returncode == 0
    summary = orjson.loads((tmp_path / "s").read_bytes())
    assert summary["rejected"] == {
        "not_utf8": 1, "not_json": 2, "out_of_range": 1, "bad_time": 1, "missing_field": 1,
        "not_object": 1,
    }  # fmt: skip
    assert summary["events"] == len(good.splitlines())
    assert len(rejects.read_bytes().splitlines()) == 7
    assert result.stdout  # the good events still alerted


def test_missing_input_is_a_clear_error_but_others_are_read(tmp_path: Path) -> None:
    source = tmp_path / "ok.jsonl"
    source.write_bytes(stream())
    result = replay(str(tmp_path / "nope.jsonl"), str(source))
    assert result.returncode == 2
    assert b"nope.jsonl" in result.stderr and b"No such file" in result.stderr
    assert result.stdout  # ok.jsonl was still processed


def test_truncated_gzip_is_reported_after_processing_what_was_readable(tmp_path: Path) -> None:
    packed = gzip.compress(stream())
    source = tmp_path / "cut.jsonl.gz"
    source.write_bytes(packed[: len(packed) // 2])
    result = replay(str(source))
    assert result.returncode == 2 and b"unreadable after line" in result.stderr


def test_labels_file_applies_benign_verdicts(tmp_path: Path) -> None:
    source = tmp_path / "e.jsonl"
    source.write_bytes(lines(list(harvester("h1", T0, 14, 60))))
    labels = tmp_path / "labels.jsonl"
    verdict = {"account_id": "h1", "label": "benign", "ts": T0 + 2 * 3600}
    labels.write_bytes(orjson.dumps(verdict) + b"\n")
    plain = replay(str(source))
    labelled = replay(str(source), "--labels", str(labels))
    assert plain.returncode == labelled.returncode == 0
    before = [x for x in plain.stdout.splitlines() if orjson.loads(x)["event_ts"] > T0 + 7200]
    after = [x for x in labelled.stdout.splitlines() if orjson.loads(x)["event_ts"] > T0 + 7200]
    assert before and not after  # re-alerts after the cool-down are held by the verdict


def test_help_explains_the_commands() -> None:
    result = subprocess.run([*CLI, "replay", "--help"], capture_output=True, check=True)
    assert b"JSON Lines" in result.stdout and b"--alerts" in result.stdout


def test_metrics_port_serves_the_detector_metrics_while_replaying(tmp_path: Path) -> None:
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = tmp_path / "e.jsonl"
    source.write_bytes(stream() * 40 + b"not json\n")
    proc = subprocess.Popen(
        [*CLI, "replay", str(source), "--alerts", os.devnull, "--metrics-port", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    body = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "stream_detector_events_total" not in body:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    body = r.read().decode()
            except OSError:
                time.sleep(0.05)
    finally:
        proc.wait(timeout=120)
    assert "stream_detector_events_total" in body
    assert proc.returncode == 0
