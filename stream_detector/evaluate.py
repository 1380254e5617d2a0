"""`stream-detector evaluate`: score alerts against the simulator's ground truth, per account.

An account counts as alerted at a level when any alert of that level or above names it in its
`accounts` list (contract §2), whether the alert is about one account or a cluster. Its
time-to-detect is the `event_ts` of the first such alert minus the account's first event.
"""

from __future__ import annotations

import argparse
import gzip
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

#: Levels reported: the severities that count at each.
LEVELS: dict[str, frozenset[str]] = {
    "any": frozenset({"low", "medium", "high", "critical"}),
    "high": frozenset({"high", "critical"}),
}
WITHIN_S = 3600.0


class EvaluationError(Exception):
    """An input file that cannot be read or holds no usable data."""


@dataclass(slots=True)
class Truth:
    """Ground truth: account -> (population, campaign, first_ts); campaign -> start_ts."""

    population: dict[str, str] = field(default_factory=dict)
    campaign: dict[str, str | None] = field(default_factory=dict)
    first_ts: dict[str, float] = field(default_factory=dict)
    campaign_start: dict[str, float] = field(default_factory=dict)

    def attack(self, account: str) -> bool:
        return self.campaign.get(account) is not None


@dataclass(slots=True)
class Alerts:
    """First alert time per account at each level, and critical alerts' accounts."""

    first: dict[str, dict[str, float]] = field(default_factory=lambda: {k: {} for k in LEVELS})
    critical: set[str] = field(default_factory=set)
    count: int = 0
    malformed: int = 0


def _lines(path: Path) -> Iterator[bytes]:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                yield from fh
        else:
            with path.open("rb") as fh:
                yield from fh
    except (OSError, EOFError) as exc:
        raise EvaluationError(f"cannot read {path}: {exc}") from None


def load_truth(path: Path) -> Truth:
    """Read the `.truth.jsonl` written by `simulate`."""
    truth = Truth()
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            if "account_id" in row:
                account = row["account_id"]
                truth.population[account] = row["population"]
                truth.campaign[account] = row.get("campaign")
                truth.first_ts[account] = float(row["first_ts"])
            else:
                truth.campaign_start[row["campaign"]] = float(row["start_ts"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise EvaluationError(f"{path}:{number}: not a ground-truth line") from None
    if not truth.population:
        raise EvaluationError(f"{path}: no accounts in the ground truth")
    return truth


def load_alerts(path: Path) -> Alerts:
    """Read alert JSON Lines; malformed lines are counted and skipped."""
    alerts = Alerts()
    for line in _lines(path):
        if not line.strip():
            continue
        try:
            alert = orjson.loads(line)
            severity = alert["severity"]
            ts = float(alert["event_ts"])
            accounts = [a for a in alert["accounts"] if isinstance(a, str)]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            alerts.malformed += 1
            continue
        alerts.count += 1
        for level, severities in LEVELS.items():
            if severity in severities:
                first = alerts.first[level]
                for account in accounts:
                    if ts < first.get(account, math.inf):
                        first[account] = ts
        if severity == "critical":
            alerts.critical.update(accounts)
    return alerts


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (`q` in [0, 1]); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _detection(truth: Truth, first: dict[str, float], accounts: list[str]) -> dict[str, Any]:
    """Recall, time-to-detect, and recall within an hour of the campaign's start (and of each
    account's own first event, for members that join a campaign late)."""
    detected = [a for a in accounts if a in first]
    delays = [max(0.0, first[a] - truth.first_ts[a]) for a in detected]
    in_time = own_time = 0
    for a in detected:
        campaign = truth.campaign[a]
        start = truth.campaign_start.get(campaign, truth.first_ts[a]) if campaign else 0.0
        in_time += first[a] <= start + WITHIN_S
        own_time += first[a] <= truth.first_ts[a] + WITHIN_S
    return {
        "accounts": len(accounts),
        "detected": len(detected),
        "recall": _ratio(len(detected), len(accounts)),
        "recall_within_1h": _ratio(in_time, len(accounts)),
        "recall_within_1h_of_first_event": _ratio(own_time, len(accounts)),
        "ttd_median_s": percentile(delays, 0.5),
        "ttd_p90_s": percentile(delays, 0.9),
    }


def evaluate(truth: Truth, alerts: Alerts) -> dict[str, Any]:
    """The full report as a JSON-ready dict."""
    by_population: dict[str, list[str]] = {}
    for account, population in truth.population.items():
        by_population.setdefault(population, []).append(account)
    attack = [a for a in truth.population if truth.attack(a)]
    benign_populations = {
        p: members for p, members in by_population.items() if not truth.attack(members[0])
    }
    attack_populations = {p: m for p, m in by_population.items() if truth.attack(m[0])}
    levels: dict[str, Any] = {}
    for level in LEVELS:
        first = alerts.first[level]
        named = [a for a in first if a in truth.population]
        tp = sum(truth.attack(a) for a in named)
        fp = len(named) - tp
        summary = _detection(truth, first, attack)
        summary.update(
            alerted=len(named),
            true_positives=tp,
            false_positives=fp,
            precision=_ratio(tp, len(named)),
            benign_fp_rate=_ratio(fp, len(truth.population) - len(attack)),
            recall_by_population={
                p: _detection(truth, first, m) for p, m in sorted(attack_populations.items())
            },
            fp_by_population={
                p: {
                    "accounts": len(m),
                    "alerted": sum(a in first for a in m),
                    "rate": _ratio(sum(a in first for a in m), len(m)),
                }
                for p, m in sorted(benign_populations.items())
            },
        )
        levels[level] = summary
    critical_benign: dict[str, int] = {}
    for account in alerts.critical:
        if account in truth.population and not truth.attack(account):
            population = truth.population[account]
            critical_benign[population] = critical_benign.get(population, 0) + 1
    return {
        "alerts": alerts.count,
        "malformed_alert_lines": alerts.malformed,
        "unknown_accounts": len(
            {a for first in alerts.first.values() for a in first} - truth.population.keys()
        ),
        "accounts": {
            "total": len(truth.population),
            "attack": len(attack),
            "benign": len(truth.population) - len(attack),
        },
        "levels": levels,
        "critical_on_benign": {
            "accounts": sum(critical_benign.values()),
            "by_population": dict(sorted(critical_benign.items())),
        },
    }


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def render(report: dict[str, Any]) -> str:
    """The report as an aligned table for people."""
    any_, high = report["levels"]["any"], report["levels"]["high"]
    counts = report["accounts"]
    lines = [
        f"alerts: {report['alerts']:,} ({report['malformed_alert_lines']} malformed lines); "
        f"accounts named but not in truth: {report['unknown_accounts']}",
        f"accounts: {counts['total']:,} ({counts['attack']:,} attack, {counts['benign']:,} benign)",
        "",
        f"{'':<30}{'any alert':>12}{'high/critical':>15}",
    ]
    rows = (
        ("recall", "recall", _num),
        ("precision", "precision", _num),
        ("benign false-positive rate", "benign_fp_rate", lambda v: _num(v, 4)),
        ("accounts alerted", "alerted", str),
        ("time-to-detect median", "ttd_median_s", _duration),
        ("time-to-detect p90", "ttd_p90_s", _duration),
        ("recall within 1 h of start", "recall_within_1h", _num),
        ("recall within 1 h of own start", "recall_within_1h_of_first_event", _num),
    )
    for label, key, fmt in rows:
        lines.append(f"{label:<30}{fmt(any_[key]):>12}{fmt(high[key]):>15}")
    critical = report["critical_on_benign"]
    flag = "NONE" if not critical["accounts"] else f"{critical['accounts']} accounts"
    detail = ", ".join(f"{p}: {n}" for p, n in critical["by_population"].items())
    lines += [f"critical alert on a benign account: {flag} {detail}".rstrip(), ""]
    lines.append(
        f"{'campaign population':<22}{'accounts':>9}{'recall':>8}{'high':>8}"
        f"{'high<=1h':>10}{'TTD med':>9}{'TTD p90':>9}"
    )
    for population, row in high["recall_by_population"].items():
        anyrow = any_["recall_by_population"][population]
        lines.append(
            f"{population:<22}{row['accounts']:>9}{_num(anyrow['recall'], 2):>8}"
            f"{_num(row['recall'], 2):>8}{_num(row['recall_within_1h'], 2):>10}"
            f"{_duration(row['ttd_median_s']):>9}{_duration(row['ttd_p90_s']):>9}"
        )
    lines += ["", f"{'benign population':<22}{'accounts':>9}{'FP any':>10}{'FP high':>10}"]
    for population, row in high["fp_by_population"].items():
        anyrow = any_["fp_by_population"][population]
        lines.append(
            f"{population:<22}{row['accounts']:>9}{anyrow['alerted']:>10}{row['alerted']:>10}"
        )
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` sub-command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score alerts against simulator ground truth",
        description=(
            "Account-level recall, precision, benign false-positive rate by population, recall "
            "by campaign population and time-to-detect, at 'any alert' and at high/critical. "
            "Alerts name accounts through their `accounts` list (account and cluster alerts)."
        ),
    )
    parser.add_argument("alerts", type=Path, help="alerts JSON Lines (.gz read transparently)")
    parser.add_argument("--truth", type=Path, required=True, help="the .truth.jsonl of simulate")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the report; exit 2 with a message when an input cannot be read."""
    try:
        truth = load_truth(args.truth)
        alerts = load_alerts(args.alerts)
    except EvaluationError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    report = evaluate(truth, alerts)
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render(report))
    return 0
