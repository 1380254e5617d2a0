"""`stream-detector evaluate`: the arithmetic on a tiny hand-made case, output and errors."""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream_detector import evaluate
from stream_detector.bench import quality


def account(account_id: str, population: str, campaign: str | None, first_ts: float) -> dict:
    return {
        "account_id": account_id,
        "population": population,
        "campaign": campaign,
        "attack": campaign is not None,
        "first_ts": first_ts,
    }


TRUTH: list[dict[str, Any]] = [
    account("a1", "hydra", "hydra-1", 1000),
    account("a2", "hydra", "hydra-1", 1100),
    account("a3", "harvest", "harvest-1", 2000),
    account("b1", "chat", None, 10),
    account("b2", "enterprise", None, 10),
    account("b3", "chat", None, 10),
    account("b4", "chat", None, 10),
    {"campaign": "hydra-1", "population": "hydra", "start_ts": 1000, "accounts": 2},
    {"campaign": "harvest-1", "population": "harvest", "start_ts": 2000, "accounts": 1},
]


def alert(severity: str, ts: float, *accounts: str) -> dict[str, Any]:
    return {
        "alert_id": f"{severity}-{ts}",
        "kind": "cluster" if len(accounts) > 1 else "account",
        "subject": accounts[0],
        "accounts": list(accounts),
        "accounts_total": len(accounts),
        "severity": severity,
        "score": 0.9,
        "reasons": [],
        "event_ts": ts,
    }


ALERTS = [
    alert("low", 1200, "a1"),
    alert("high", 1500, "a1", "a2", "b2"),
    alert("medium", 3000, "b1"),
    alert("critical", 9000, "a3"),
    alert("critical", 5000, "b3"),
    alert("high", 800, "zz"),  # not in the truth
]


def write_jsonl(path: Path, rows: list[dict[str, Any]], extra: bytes = b"") -> Path:
    data = b"".join(orjson.dumps(r) + b"\n" for r in rows) + extra
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture
def report(tmp_path: Path) -> dict[str, Any]:
    truth = evaluate.load_truth(write_jsonl(tmp_path / "t.truth.jsonl", TRUTH))
    alerts = evaluate.load_alerts(write_jsonl(tmp_path / "a.jsonl.gz", ALERTS, b"{torn\n"))
    return evaluate.evaluate(truth, alerts)


def test_counts_and_malformed_lines(report: dict[str, Any]) -> None:
    assert report["alerts"] == 6
    assert report["malformed_alert_lines"] == 1
    assert report["unknown_accounts"] == 1
    assert report["accounts"] == {"total": 7, "attack": 3, "benign": 4}


def test_any_alert_level(report: dict[str, Any]) -> None:
    level = report["levels"]["any"]
    assert level["recall"] == 1.0
    assert level["alerted"] == 6  # a1 a2 a3 b1 b2 b3
    assert level["precision"] == 0.5
    assert level["benign_fp_rate"] == 0.75
    # delays: a1 1200-1000, a2 1500-1100, a3 9000-2000
    assert level["ttd_median_s"] == 400
    assert level["ttd_p90_s"] == 7000
    assert level["recall_within_1h"] == pytest.approx(2 / 3)  # a3 came 7000 s after its start
    assert level["recall_within_1h_of_first_event"] == pytest.approx(2 / 3)
    assert level["fp_by_population"]["chat"] == {"accounts": 3, "alerted": 2, "rate": 2 / 3}


def test_high_and_critical_level(report: dict[str, Any]) -> None:
    level = report["levels"]["high"]
    assert level["recall"] == 1.0
    assert level["precision"] == 0.6  # a1 a2 a3 / + b2 b3
    assert level["benign_fp_rate"] == 0.5
    assert level["ttd_median_s"] == 500  # a1 now at 1500
    hydra = level["recall_by_population"]["hydra"]
    assert hydra["recall"] == 1.0
    assert hydra["recall_within_1h"] == 1.0
    assert level["recall_by_population"]["harvest"]["recall_within_1h"] == 0.0
    assert level["fp_by_population"]["enterprise"]["alerted"] == 1
    assert report["critical_on_benign"] == {"accounts": 1, "by_population": {"chat": 1}}


def test_quality_row_summarises_a_report(report: dict[str, Any]) -> None:
    """The quality bench's three lines: totals with the share named within an hour of each
    account's own start (a3 at 7,000 s of its start: 2 of 3), each campaign population, and
    the benign populations at high."""
    headline, campaigns, benign = quality.row("set", report).splitlines()
    assert "recall 1.000  precision 0.600  critical-on-benign 1" in headline
    assert headline.endswith("<=1h of own start 0.667")
    assert "harvest=1.00/0.00/0.00 hydra=1.00/1.00/1.00" in campaigns
    assert benign.split(": ", 1)[1] == "chat:1 enterprise:1"


def test_late_joiner_counts_against_the_campaign_start(tmp_path: Path) -> None:
    rows = [account("a1", "hydra", "hydra-1", 1000), account("a2", "hydra", "hydra-1", 4500)]
    rows.append({"campaign": "hydra-1", "population": "hydra", "start_ts": 1000, "accounts": 2})
    truth = evaluate.load_truth(write_jsonl(tmp_path / "t.truth.jsonl", rows))
    named = [alert("high", 1100, "a1"), alert("high", 5000, "a2")]
    alerts = evaluate.load_alerts(write_jsonl(tmp_path / "a.jsonl", named))
    level = evaluate.evaluate(truth, alerts)["levels"]["high"]
    assert level["recall_within_1h"] == 0.5
    assert level["recall_within_1h_of_first_event"] == 1.0


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers())
    args = parser.parse_args(["evaluate", *argv])
    code: int = args.func(args)
    return code


def test_command_prints_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = write_jsonl(tmp_path / "t.truth.jsonl", TRUTH)
    alerts = write_jsonl(tmp_path / "a.jsonl", ALERTS)
    assert run(str(alerts), "--truth", str(truth)) == 0
    table = capsys.readouterr().out
    assert "recall" in table and "hydra" in table and "critical alert on a benign" in table
    assert run(str(alerts), "--truth", str(truth), "--json") == 0
    data = orjson.loads(capsys.readouterr().out)
    assert data["levels"]["high"]["precision"] == 0.6


def test_no_alerts_at_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = write_jsonl(tmp_path / "t.truth.jsonl", TRUTH)
    alerts = write_jsonl(tmp_path / "a.jsonl", [])
    assert run(str(alerts), "--truth", str(truth), "--json") == 0
    level = orjson.loads(capsys.readouterr().out)["levels"]["high"]
    assert level["recall"] == 0.0
    assert level["precision"] is None
    assert level["ttd_median_s"] is None


def test_unreadable_files_give_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = write_jsonl(tmp_path / "t.truth.jsonl", TRUTH)
    assert run(str(tmp_path / "missing.jsonl"), "--truth", str(truth)) == 2
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.truth.jsonl"
    bad.write_bytes(b"not json\n")
    assert run(str(truth), "--truth", str(bad)) == 2
    assert "ground-truth" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"\x1f\x8b garbage")
    assert run(str(broken), "--truth", str(truth)) == 2
    assert "cannot read" in capsys.readouterr().err
