"""API-call events: parse the contract's event object and validate it into a compact record.

orjson decodes; msgspec checks the decoded object against a typed `Event` struct in C (types,
bounds, lengths, required fields), which is where a hand-written check per field costs most.
Every rejection carries a *named* reason (a small, fixed vocabulary, safe as a metric label)
and a human-readable detail. Nothing here does I/O, so the Kafka worker and `replay` share it.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import orjson

#: Largest accepted event, in bytes. Bigger payloads are rejected before parsing.
MAX_EVENT_BYTES = 1 << 20
#: Largest accepted epoch seconds: beyond this the producer almost surely sent milliseconds.
MAX_EPOCH_S = 1e11


class RejectReason(StrEnum):
    """Why an event was rejected. Values are stable: they are metric labels and DLQ headers."""

    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIME = "bad_time"


class Rejection(Exception):
    """An event that breaks the contract: `reason` is the named cause, `detail` says where."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


Count = Annotated[int, msgspec.Meta(ge=0)]
Epoch = Annotated[float, msgspec.Meta(ge=0, le=MAX_EPOCH_S)]


class Event(msgspec.Struct, kw_only=True, gc=False):
    """One validated API call (contract §1); optional fields are ``None`` when absent or null.

    Times given as RFC 3339 strings are converted to epoch seconds by `event_from_object`, so
    `ts` and `account_created_ts` are always floats after validation.
    """

    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    account_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    if TYPE_CHECKING:  # what code sees after `event_from_object`: times are epoch floats
        ts: float
        account_created_ts: float | None = None
    else:  # what msgspec accepts: a number or an RFC 3339 string
        ts: Epoch | str
        account_created_ts: Epoch | str | None = None
    org_id: str | None = None
    api_key_id: str | None = None
    payment_fingerprint: str | None = None
    ip: str | None = None
    asn: Count | None = None
    country: str | None = None
    user_agent: str | None = None
    model: str | None = None
    endpoint: str | None = None
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    max_tokens: Count | None = None
    temperature: float | None = None
    thinking: bool | None = None
    tools: Count | None = None
    tool_calls: Count | None = None
    conversation_turns: Annotated[int, msgspec.Meta(ge=1)] | None = None
    status: int | None = None
    latency_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None
    system_hash: str | None = None
    prompt: str | None = None


_TIME_FIELDS = ("ts", "account_created_ts")
_MISSING = re.compile(r"missing required field `(\w+)`")
_AT = re.compile(r" - at `\$\.(\w+)")


def parse_time(value: Any, field: str) -> float:
    """Event time as epoch seconds from a number or an RFC 3339 string (offset required)."""
    vtype = type(value)
    if vtype is float or vtype is int:
        ts = float(value)
        if not 0 <= ts <= MAX_EPOCH_S:  # also false for NaN
            raise Rejection(RejectReason.BAD_TIME, f"{field}={value} is not epoch seconds")
        return ts
    if vtype is str:
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise Rejection(
                RejectReason.BAD_TIME, f"{field} is not an RFC 3339 time: {text[:40]!r}"
            ) from None
        if parsed.tzinfo is None:
            raise Rejection(RejectReason.BAD_TIME, f"{field} has no UTC offset: {text[:40]!r}")
        return parsed.timestamp()
    raise Rejection(RejectReason.WRONG_TYPE, f"{field} must be a number or an RFC 3339 string")


def _rejection(error: msgspec.ValidationError) -> Rejection:
    """Name the reason of a msgspec validation error (its message says what and where)."""
    message = str(error)
    missing = _MISSING.search(message)
    if missing:
        return Rejection(RejectReason.MISSING_FIELD, f"{missing.group(1)} is required")
    at = _AT.search(message)
    field = at.group(1) if at else "event"
    bounded = ", got" not in message  # "Expected `int` >= 0", "Expected `str` of length <= 128"
    if field in _TIME_FIELDS and bounded:
        return Rejection(RejectReason.BAD_TIME, f"{field} is not a plausible epoch: {message}")
    reason = RejectReason.OUT_OF_RANGE if bounded else RejectReason.WRONG_TYPE
    return Rejection(reason, message)


def event_from_object(obj: Any) -> Event:
    """Validate an already-decoded JSON value into an `Event`; raise `Rejection`."""
    if type(obj) is not dict:
        raise Rejection(RejectReason.NOT_OBJECT, f"event must be a JSON object, not {_kind(obj)}")
    try:
        event = msgspec.convert(obj, Event)
    except msgspec.ValidationError as exc:
        raise _rejection(exc) from None
    ts: Any = event.ts
    if type(ts) is str:
        event.ts = parse_time(ts, "ts")
    created: Any = event.account_created_ts
    if type(created) is str:
        event.account_created_ts = parse_time(created, "account_created_ts")
    return event


def parse_event(raw: bytes | bytearray | memoryview | str) -> Event:
    """Decode one JSON document (a Kafka value or a JSON Lines line) into an `Event`."""
    if len(raw) > MAX_EVENT_BYTES:
        raise Rejection(
            RejectReason.TOO_LARGE, f"event is {len(raw)} bytes, limit {MAX_EVENT_BYTES}"
        )
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = RejectReason.NOT_UTF8 if "utf-8" in str(exc).lower() else RejectReason.NOT_JSON
        raise Rejection(reason, f"not valid JSON: {exc}") from None
    return event_from_object(obj)


def _kind(obj: Any) -> str:
    return {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(obj), "a number"
    )
