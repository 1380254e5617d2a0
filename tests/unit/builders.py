"""Small builders of contract events for unit tests (not a simulator: exact, explicit values)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, overload

import orjson

from stream_detector.alerts import Alert
from stream_detector.detector import Detector
from stream_detector.events import parse_event
from stream_detector.pipeline import Pipeline

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86400.0


def event(i: int, account: str, ts: object, **fields: Any) -> dict[str, Any]:
    """One valid event (given a valid `ts`: tests of rejections pass others); `fields` override
    or add contract fields."""
    doc: dict[str, Any] = {
        "event_id": f"{account}-{i}",
        "ts": ts,
        "account_id": account,
        "model": "model-a",
        "endpoint": "messages",
        "input_tokens": 200,
        "output_tokens": 300,
        "max_tokens": 1024,
        "temperature": 0.7,
        "status": 200,
    }
    doc.update(fields)
    return doc


def harvester(account: str, start: float, hours: float, per_hour: int) -> Iterator[dict[str, Any]]:
    """A fresh account harvesting written-out reasoning from one template, around the clock."""
    step = 3600.0 / per_hour
    for i in range(int(hours * per_hour)):
        ts = start + i * step
        yield event(
            i,
            account,
            ts,
            account_created_ts=start - 3600,
            output_tokens=1900,
            max_tokens=2000,
            temperature=1.0,
            prompt=(
                f"Solve problem #{i}: a tank holds {i % 97} litres and drains at {i % 13} "
                "litres per minute. Explain your reasoning step by step before the final answer."
            ),
        )


def person(account: str, start: float, days: int) -> Iterator[dict[str, Any]]:
    """An aged account chatting during working hours with diverse prompts."""
    topics = ("a birthday poem", "my tax question", "a cover letter", "a recipe", "a trip plan")
    i = 0
    for day in range(days):
        for hour in (9, 11, 14, 16):
            for k in range(3):
                ts = start + day * DAY + hour * 3600 + k * 240 + (i * 37) % 200
                topic = topics[(i * 7 + day) % len(topics)]
                yield event(
                    i,
                    account,
                    ts,
                    account_created_ts=start - 400 * DAY,
                    conversation_turns=1 + i % 5,
                    prompt=f"hey, could you help me with {topic}? ({i} {day}) thanks",
                )
                i += 1


def lines(events: list[dict[str, Any]]) -> bytes:
    """JSON Lines of events, in time order."""
    ordered = sorted(events, key=lambda e: e["ts"])
    return b"".join(orjson.dumps(e) + b"\n" for e in ordered)


def hydra(name: str, accounts: int, start: float, hours: float) -> Iterator[dict[str, Any]]:
    """Fresh accounts sharing two cards and a datacenter prefix, taking turns: each account
    stays at a few calls an hour, the group harvests reasoning around the clock."""
    i = 0
    per_account_gap = 3600.0 / 6
    for tick in range(int(hours * 3600 / per_account_gap)):
        for k in range(accounts):
            ts = start + tick * per_account_gap + k * per_account_gap / accounts
            yield hydra_call(i, f"{name}-{k}", ts, start - 7200, f"{name}-card-{k % 2}", 10 + k)
            i += 1


def hydra_call(
    i: int, account: str, ts: float, created: float, card: str, host: int
) -> dict[str, Any]:
    """The `i`-th call of a hydra's: from `host` on its datacenter prefix, thinking on a
    templated calculus question, a 3,000-token answer."""
    return event(
        i,
        account,
        ts,
        account_created_ts=created,
        payment_fingerprint=card,
        ip=f"198.51.100.{host}",
        user_agent="python-httpx/0.27.0",
        output_tokens=3000,
        max_tokens=4096,
        thinking=True,
        prompt=f"Q{i}: integrate x^{i % 9} e^x dx. Explain your reasoning step by step.",
    )


def office(name: str, accounts: int, start: float, days: int) -> Iterator[dict[str, Any]]:
    """Staff of a verified organization behind one IP and one card, chatting in office hours."""
    for k in range(accounts):
        for doc in person(f"{name}-{k}", start + k * 60, days):
            yield dict(
                doc,
                org_id=f"org-{name}",
                payment_fingerprint=f"{name}-card",
                ip="203.0.113.9",
            )


def run(detector: Detector | Pipeline, events: list[dict[str, Any]]) -> list[Alert]:
    """Feed events through the whole per-event path (JSON bytes in), in time order: a
    `Detector` alone gives the account side's alerts, a `Pipeline` the campaigns' too."""
    alerts: list[Alert] = []
    for doc in sorted(events, key=lambda e: e["ts"]):
        alerts.extend(detector.process(parse_event(orjson.dumps(doc))))
    return alerts


@overload
def resumed(first: Pipeline) -> Pipeline: ...
@overload
def resumed(first: Detector) -> Detector: ...
def resumed(first: Detector | Pipeline) -> Detector | Pipeline:
    """A new detector (or pipeline) restored from `first`'s checkpoints, as a restarted
    worker would be."""
    if isinstance(first, Pipeline):
        pipeline = Pipeline(track_dirty=True)
        pipeline.detector = resumed(first.detector)
        pipeline.stage.import_state(first.stage.export_state())
        return pipeline
    second = Detector()
    for account in first.take_dirty():
        data = first.export_account(account)
        assert data is not None
        second.import_account(account, data)
    second.import_model(first.export_model())
    return second


#: Instructions of a small harvesting operation: several templates, several openings each,
#: the instruction before or after the question (the shapes `multipath` below draws from).
TEMPLATES = (
    "Derive the answer carefully and show all of the work, numbering each step.",
    "Reason from first principles and write out every intermediate step explicitly.",
    "Think it through step by step, then give the final answer on its own line.",
)
OPENINGS = ("", "Task: ", "Please help. ", "Item 417. ")


QUESTIONS = (
    "How many integers below {n} are divisible by 7 or 13 but not by 3?",
    "A train leaves at {n} km/h and another follows at twice the speed; when do they meet?",
    "Find every prime p below {n} for which p squared plus two is also prime.",
    "Prove that the sum of the first {n} odd numbers is a perfect square.",
    "Write a function that returns the longest palindromic substring of a {n}-character text.",
    "What is the probability that {n} fair dice show at least one six?",
    "Design a cache with {n} slots that evicts the least recently used entry.",
)


def templated(i: int) -> str:
    """The i-th prompt of the operation: a fresh question in one of its templates, the
    instruction before or after it, behind one of its openings."""
    instruction = TEMPLATES[i % len(TEMPLATES)]
    question = QUESTIONS[(i // 3) % len(QUESTIONS)].format(n=1000 + 37 * i)
    opening = OPENINGS[(i // 5) % len(OPENINGS)]
    if (i // 2) % 2:
        return f"{opening}{instruction}\n\n{question}"
    return f"{opening}{question}\n{instruction}"


def multipath(
    name: str,
    accounts: int,
    start: float,
    hours: float,
    gap: float = 360.0,
    apart: float = 7.0,
    output_tokens: int = 4000,
    burst: tuple[float, ...] = (0.0,),
) -> Iterator[dict[str, Any]]:
    """One actor's aged accounts, each on its own card, network and client, sharing only the
    templates and long reasoning answers, at a modest rate each (a call every `gap` seconds,
    or a burst of calls at these offsets; one account `apart` seconds after the other),
    around the clock."""
    i = 0
    for tick in range(int(hours * 3600 / gap)):
        for b, offset in enumerate(burst):
            call = tick * len(burst) + b
            for k in range(accounts):
                yield event(
                    i,
                    f"{name}-{k}",
                    start + tick * gap + offset + k * apart,
                    account_created_ts=start - (200 + 30 * k) * DAY,
                    payment_fingerprint=f"{name}-card-{k}",
                    ip=f"10.{k}.{k}.{k + 1}",
                    user_agent=f"client-{k}/1.{k}",
                    output_tokens=output_tokens,
                    max_tokens=8192,
                    prompt=templated(call * 5 + k * 3),
                )
                i += 1


def class_session(name: str, students: int, start: float) -> Iterator[dict[str, Any]]:
    """A class created yesterday on one card and one campus network, everyone pasting the same
    reasoning exercise within the hour and getting chat-length answers."""
    exercise = (
        "Exercise 3: explain step by step why the sum of two odd numbers is even, "
        "then give a short proof."
    )
    i = 0
    for k in range(students):
        for j in range(4):
            yield event(
                i,
                f"{name}-{k}",
                start + k * 45.0 + j * 600.0,
                account_created_ts=start - DAY,
                payment_fingerprint=f"{name}-instructor-card",
                ip=f"192.0.2.{k % 5 + 1}",
                user_agent="python-requests/2.32.3",
                output_tokens=420,
                max_tokens=1024,
                prompt=exercise if j < 2 else f"{exercise} Follow-up {j}: and for {k + j} numbers?",
            )
            i += 1
