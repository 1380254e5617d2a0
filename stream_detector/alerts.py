"""Alerts (contract §2) and the policy that decides when a subject is alerted.

* **Deterministic ids**: `alert_id` hashes kind, subject, severity and the cool-down bucket of
  the triggering event time, so a restarted worker or an overlapping replay that reaches the
  same decision produces the same id, and consumers de-duplicate on it.
* **Cool-down and escalation**: a subject is re-alerted at most once per cool-down at the same
  severity; a rise in severity is a new alert at once.
* **Benign labels** suppress a subject until its behaviour changes materially (its score rises
  well above, or its recent hourly call rate triples from, what it was when labelled).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream_detector import __version__
from stream_detector.scoring import Term, explain

#: Bump when rules or scoring change meaning; part of every alert's `detector_version`.
RULES_VERSION = 3
DETECTOR_VERSION = f"{__version__}+rules.{RULES_VERSION}"
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(slots=True)
class Alert:
    """One alert as emitted on `extraction-alerts` / written by `replay`."""

    alert_id: str
    kind: str
    subject: str
    accounts: list[str]
    accounts_total: int
    severity: str
    score: float
    reasons: list[dict[str, object]]
    event_ts: float
    first_seen_ts: float
    events: int
    emitted_at: float = field(default_factory=time.time)
    detector_version: str = DETECTOR_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "subject": self.subject,
            "accounts": self.accounts,
            "accounts_total": self.accounts_total,
            "severity": self.severity,
            "score": round(self.score, 4),
            "reasons": self.reasons,
            "event_ts": self.event_ts,
            "first_seen_ts": self.first_seen_ts,
            "events": self.events,
            "emitted_at": round(self.emitted_at, 3),
            "detector_version": self.detector_version,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


def alert_id(kind: str, subject: str, severity: str, bucket: int) -> str:
    """Same subject, rule (severity) and window (cool-down bucket) → same id."""
    key = f"{kind}\x1f{subject}\x1f{severity}\x1f{bucket}".encode()
    return hashlib.sha256(key).hexdigest()[:24]


#: "Never alerted" as an event time (JSON has no -infinity).
NEVER = -1e18
# Indices into a subject's policy memory (a list, so that it exports as plain JSON).
_LEVEL, _LAST_TS, _SUPPRESSED, _BASE_SCORE, _BASE_RATE = range(5)


def new_memory() -> list[Any]:
    """Policy memory of a subject never alerted."""
    return [0, NEVER, False, 0.0, 0]


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Turns scores into alerts: thresholds, cool-down, escalation, benign suppression."""

    thresholds: tuple[float, float, float, float]
    cooldown_s: float

    def level(self, score: float) -> int:
        """0 = no alert, 1..4 = index into SEVERITIES plus one."""
        level = 0
        for threshold in self.thresholds:
            if score >= threshold:
                level += 1
        return level

    def decide(
        self,
        memory: list[Any],
        kind: str,
        subject: str,
        score: float,
        rate: float,
        now: float,
    ) -> str | None:
        """The severity to alert at now, or None; updates `memory` when it alerts."""
        if not memory:
            memory.extend(new_memory())
        level = self.level(score)
        if level == 0:
            return None
        if memory[_SUPPRESSED]:
            if score < memory[_BASE_SCORE] + 0.1 and rate < 3 * memory[_BASE_RATE] + 10:
                return None
            memory[_SUPPRESSED] = False
        last_ts = memory[_LAST_TS]
        if level <= memory[_LEVEL] and now - last_ts < self.cooldown_s:
            return None
        memory[_LEVEL] = level
        memory[_LAST_TS] = now
        return SEVERITIES[level - 1]

    def account_alert(
        self,
        memory: list[Any],
        account_id: str,
        score: float,
        rate: float,
        terms: list[Term],
        now: float,
        first_seen_ts: float,
        events: int,
        reasons: list[dict[str, object]] | None = None,
    ) -> Alert | None:
        """`decide` for one account, and the alert it decided (reasons rendered only then,
        unless given: the members of one campaign share theirs)."""
        severity = self.decide(memory, "account", account_id, score, rate, now)
        if severity is None:
            return None
        return Alert(
            alert_id=alert_id("account", account_id, severity, self.bucket(now)),
            kind="account",
            subject=account_id,
            accounts=[account_id],
            accounts_total=1,
            severity=severity,
            score=score,
            reasons=explain(terms) if reasons is None else reasons,
            event_ts=now,
            first_seen_ts=first_seen_ts,
            events=events,
        )

    def bucket(self, now: float) -> int:
        """Cool-down window of an event time, for alert ids."""
        return int(now // self.cooldown_s) if self.cooldown_s else int(now)

    @staticmethod
    def suppress(memory: list[Any], score: float, rate: float) -> None:
        """A benign label: hold alerts until the behaviour changes materially."""
        if not memory:
            memory.extend(new_memory())
        memory[_SUPPRESSED] = True
        memory[_BASE_SCORE] = score
        memory[_BASE_RATE] = rate
