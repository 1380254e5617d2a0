"""Timing (diurnal arrivals) and the builder of one gateway event."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from random import Random
from typing import Any

from stream_detector.simulation.text import between, pick
from stream_detector.simulation.world import Account, Place

#: Relative activity by local hour: people, office workers, round-the-clock machines, students.
PROFILES: dict[str, tuple[float, ...]] = {
    "human": (
        0.15, 0.08, 0.05, 0.04, 0.04, 0.06, 0.15, 0.35, 0.55, 0.7, 0.8, 0.85,
        0.8, 0.85, 0.85, 0.8, 0.75, 0.75, 0.8, 0.9, 1.0, 0.95, 0.7, 0.35,
    ),
    "work": (
        0.02, 0.01, 0.01, 0.01, 0.01, 0.02, 0.05, 0.2, 0.7, 1.0, 1.0, 0.9,
        0.6, 0.9, 1.0, 1.0, 0.9, 0.6, 0.3, 0.2, 0.15, 0.1, 0.05, 0.03,
    ),
    "flat": (1.0,) * 24,
    "global": (
        0.7, 0.65, 0.6, 0.6, 0.6, 0.65, 0.7, 0.8, 0.9, 0.95, 1.0, 1.0,
        1.0, 1.0, 1.0, 0.95, 0.9, 0.9, 0.9, 0.9, 0.85, 0.8, 0.75, 0.7,
    ),
}  # fmt: skip


@dataclass(slots=True, frozen=True)
class Window:
    """The simulated span and the moment the new model is released within it."""

    start: float
    end: float
    release_ts: float

    def at(self, fraction: float) -> float:
        """The time `fraction` of the way through the window."""
        return self.start + fraction * (self.end - self.start)


def activity(profile: str, ts: float, tz: float) -> float:
    """Relative activity in [0, 1] at `ts` for someone at UTC offset `tz` (weekends quieter)."""
    local = ts + tz * 3600.0
    weight = PROFILES[profile][int(local // 3600.0) % 24]
    weekday = (int(local // 86400.0) + 3) % 7  # the epoch was a Thursday; Monday = 0
    if weekday >= 5 and profile == "work":
        weight *= 0.08
    return weight


def arrivals(
    rng: Random, start: float, end: float, per_hour: float, profile: str, tz: float
) -> Iterator[float]:
    """Poisson arrivals at up to `per_hour`, thinned by the activity profile."""
    if per_hour <= 0:
        return
    t = start
    while True:
        t += rng.expovariate(per_hour / 3600.0)
        if t >= end:
            return
        if rng.random() < activity(profile, t, tz):
            yield t


def lognormal(rng: Random, median: float, sigma: float) -> float:
    """A positive, right-skewed draw around `median`."""
    return median * math.exp(rng.gauss(0.0, sigma))


def status(rng: Random, p429: float = 0.002) -> int:
    """The HTTP status of a call: mostly 200, rate limits at `p429`, rare errors."""
    r = rng.random()
    if r < p429:
        return 429
    r -= p429
    if r < 0.002:
        return 529
    if r < 0.004:
        return 400
    if r < 0.0045:
        return 500
    return 200


def rfc3339(ts: float) -> str:
    """Epoch seconds as an RFC 3339 string, rounded to the millisecond, with `Z`."""
    seconds, millis = divmod(round(ts * 1000), 1000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


#: Optional fields a gateway sometimes fails to fill for one event.
_FLAKY = ("asn", "country", "latency_ms", "api_key_id", "user_agent")


def call(
    acct: Account,
    rng: Random,
    ts: float,
    *,
    model: str,
    prompt: str | None,
    output_tokens: int,
    max_tokens: int | None,
    context_tokens: int = 0,
    endpoint: str = "messages",
    temperature: float | None = None,
    thinking: bool | None = None,
    tools: int | None = None,
    tool_calls: int | None = None,
    turns: int = 1,
    code: int = 200,
    place: Place | None = None,
    user_agent: str | None = None,
) -> tuple[float, dict[str, Any]]:
    """One gateway event as (event time, JSON object); fields absent where the path omits them."""
    ts = round(ts, 3)  # what the gateway writes, so the truth's first_ts matches it
    where = place or (acct.places[0] if len(acct.places) == 1 else pick(rng, acct.places))
    ok = code == 200
    out = min(output_tokens, max_tokens) if (ok and max_tokens) else (output_tokens if ok else 0)
    if not ok:
        latency = rng.uniform(3.0, 60.0)
    else:
        speed = (45.0 + 50.0 * rng.random()) * (0.4 if endpoint == "batches" else 1.0)
        latency = 250.0 + 950.0 * rng.random() + 1000.0 * out / speed
    input_tokens = context_tokens + (len(prompt) // 4 if prompt else between(rng, 20, 400))
    key = acct.keys[0] if len(acct.keys) == 1 or rng.random() < 0.8 else pick(rng, acct.keys)
    event: dict[str, Any] = {
        "event_id": f"req_{rng.getrandbits(96):024x}",
        "ts": rfc3339(ts) if acct.rfc3339 else ts,
        "account_id": acct.account_id,
    }
    if acct.org_id is not None:
        event["org_id"] = acct.org_id
    event["api_key_id"] = key
    event["account_created_ts"] = (
        rfc3339(acct.created_ts) if acct.rfc3339 else round(acct.created_ts)
    )
    if acct.payment is not None:
        event["payment_fingerprint"] = acct.payment
    event["ip"] = where.ip
    event["asn"] = where.asn
    event["country"] = where.country
    event["user_agent"] = user_agent or acct.user_agent
    event["model"] = model
    event["endpoint"] = endpoint
    event["input_tokens"] = input_tokens
    event["output_tokens"] = out
    if max_tokens is not None:
        event["max_tokens"] = max_tokens
    if temperature is not None:
        event["temperature"] = temperature
    if thinking is not None:
        event["thinking"] = thinking
    if tools is not None:
        event["tools"] = tools
    if tool_calls is not None:
        event["tool_calls"] = tool_calls if ok else 0
    event["conversation_turns"] = turns
    event["status"] = code
    event["latency_ms"] = round(latency, 1)
    if acct.system_hash is not None:
        event["system_hash"] = acct.system_hash
    if prompt is not None:
        event["prompt"] = prompt
    drop = acct.omit
    if rng.random() < 0.01:
        drop = drop | {pick(rng, _FLAKY)}
    for name in drop:
        event.pop(name, None)
    return ts, event
