"""API-call events: parse and validate the contract's event object into a compact record.

Every rejection carries a *named* reason (a small, fixed vocabulary, safe as a metric label)
and a human-readable detail. The hot path is one `orjson.loads` plus type checks; nothing
here does I/O, so the Kafka worker and `replay` share it unchanged.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Any

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


class Event:
    """One validated API call. Optional fields are ``None`` when absent (or JSON null)."""

    __slots__ = (
        "account_created_ts",
        "account_id",
        "api_key_id",
        "asn",
        "conversation_turns",
        "country",
        "endpoint",
        "event_id",
        "input_tokens",
        "ip",
        "latency_ms",
        "max_tokens",
        "model",
        "org_id",
        "output_tokens",
        "payment_fingerprint",
        "prompt",
        "status",
        "system_hash",
        "temperature",
        "thinking",
        "tool_calls",
        "tools",
        "ts",
        "user_agent",
    )

    event_id: str
    ts: float
    account_id: str
    org_id: str | None
    api_key_id: str | None
    account_created_ts: float | None
    payment_fingerprint: str | None
    ip: str | None
    asn: int | None
    country: str | None
    user_agent: str | None
    model: str | None
    endpoint: str | None
    input_tokens: int | None
    output_tokens: int | None
    max_tokens: int | None
    temperature: float | None
    thinking: bool | None
    tools: int | None
    tool_calls: int | None
    conversation_turns: int | None
    status: int | None
    latency_ms: float | None
    system_hash: str | None
    prompt: str | None

    def __init__(self, event_id: str, ts: float, account_id: str, **optional: Any) -> None:
        self.event_id = event_id
        self.ts = ts
        self.account_id = account_id
        for name in OPTIONAL_FIELDS:
            setattr(self, name, optional.get(name))

    def __repr__(self) -> str:
        return f"Event({self.event_id!r}, ts={self.ts}, account={self.account_id!r})"


def parse_time(value: Any, field: str) -> float:
    """Event time as epoch seconds from a number or an RFC 3339 string (offset required)."""
    vtype = type(value)
    if vtype is float or vtype is int:
        ts = float(value)
        if not math.isfinite(ts) or ts < 0:
            raise Rejection(RejectReason.BAD_TIME, f"{field} must be a non-negative epoch")
        if ts > MAX_EPOCH_S:
            raise Rejection(
                RejectReason.BAD_TIME, f"{field}={value} is not epoch seconds (milliseconds?)"
            )
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


def _str(value: Any, field: str) -> str:
    if type(value) is not str:
        raise Rejection(RejectReason.WRONG_TYPE, f"{field} must be a string")
    return value


def _count(value: Any, field: str) -> int:
    if type(value) is not int:
        raise Rejection(RejectReason.WRONG_TYPE, f"{field} must be an integer")
    if value < 0:
        raise Rejection(RejectReason.OUT_OF_RANGE, f"{field} must be >= 0")
    return value


def _int(value: Any, field: str) -> int:
    if type(value) is not int:
        raise Rejection(RejectReason.WRONG_TYPE, f"{field} must be an integer")
    return value


def _turns(value: Any, field: str) -> int:
    if _count(value, field) < 1:
        raise Rejection(RejectReason.OUT_OF_RANGE, f"{field} must be >= 1")
    return int(value)


def _number(value: Any, field: str) -> float:
    vtype = type(value)
    if vtype is not float and vtype is not int:
        raise Rejection(RejectReason.WRONG_TYPE, f"{field} must be a number")
    return float(value)


def _non_negative(value: Any, field: str) -> float:
    number = _number(value, field)
    if number < 0:
        raise Rejection(RejectReason.OUT_OF_RANGE, f"{field} must be >= 0")
    return number


def _bool(value: Any, field: str) -> bool:
    if type(value) is not bool:
        raise Rejection(RejectReason.WRONG_TYPE, f"{field} must be true or false")
    return bool(value)


#: Validator of each optional field, in the contract's order.
OPTIONAL_FIELDS: dict[str, Any] = {
    "org_id": _str,
    "api_key_id": _str,
    "account_created_ts": parse_time,
    "payment_fingerprint": _str,
    "ip": _str,
    "asn": _count,
    "country": _str,
    "user_agent": _str,
    "model": _str,
    "endpoint": _str,
    "input_tokens": _count,
    "output_tokens": _count,
    "max_tokens": _count,
    "temperature": _number,
    "thinking": _bool,
    "tools": _count,
    "tool_calls": _count,
    "conversation_turns": _turns,
    "status": _int,
    "latency_ms": _non_negative,
    "system_hash": _str,
    "prompt": _str,
}


def _required_id(obj: dict[str, Any], field: str, max_len: int) -> str:
    value = obj.get(field)
    if value is None:
        raise Rejection(RejectReason.MISSING_FIELD, f"{field} is required")
    if type(value) is not str:
        raise Rejection(RejectReason.WRONG_TYPE, f"{field} must be a string")
    if not 1 <= len(value) <= max_len:
        raise Rejection(RejectReason.OUT_OF_RANGE, f"{field} must be 1-{max_len} characters")
    return value


#: Optional fields by type, for the fast validation path in `event_from_object`.
_STR_FIELDS = tuple(k for k, v in OPTIONAL_FIELDS.items() if v is _str)
_COUNT_FIELDS = tuple(k for k, v in OPTIONAL_FIELDS.items() if v is _count)


def event_from_object(obj: Any) -> Event:
    """Validate an already-decoded JSON value against the contract; raise `Rejection`.

    The common case (well-typed strings and counts) is checked inline; anything unusual falls
    back to the per-field validator, which produces the precise reason.
    """
    if type(obj) is not dict:
        raise Rejection(RejectReason.NOT_OBJECT, f"event must be a JSON object, not {_kind(obj)}")
    event_id = _required_id(obj, "event_id", 128)
    account_id = _required_id(obj, "account_id", 256)
    raw_ts = obj.get("ts")
    if raw_ts is None:
        raise Rejection(RejectReason.MISSING_FIELD, "ts is required")
    get = obj.get
    for name in _STR_FIELDS:
        value = get(name)
        if value is not None and type(value) is not str:
            _str(value, name)
    for name in _COUNT_FIELDS:
        value = get(name)
        if value is not None and (type(value) is not int or value < 0):
            _count(value, name)
    event = Event.__new__(Event)
    event.event_id = event_id
    event.account_id = account_id
    event.ts = (
        raw_ts if type(raw_ts) is float and 0 <= raw_ts <= MAX_EPOCH_S else parse_time(raw_ts, "ts")
    )
    event.org_id = get("org_id")
    event.api_key_id = get("api_key_id")
    created = get("account_created_ts")
    event.account_created_ts = (
        None if created is None else parse_time(created, "account_created_ts")
    )
    event.payment_fingerprint = get("payment_fingerprint")
    event.ip = get("ip")
    event.asn = get("asn")
    event.country = get("country")
    event.user_agent = get("user_agent")
    event.model = get("model")
    event.endpoint = get("endpoint")
    event.input_tokens = get("input_tokens")
    event.output_tokens = get("output_tokens")
    event.max_tokens = get("max_tokens")
    temperature = get("temperature")
    event.temperature = None if temperature is None else _number(temperature, "temperature")
    thinking = get("thinking")
    event.thinking = None if thinking is None else _bool(thinking, "thinking")
    event.tools = get("tools")
    event.tool_calls = get("tool_calls")
    turns = get("conversation_turns")
    event.conversation_turns = None if turns is None else _turns(turns, "conversation_turns")
    status = get("status")
    event.status = None if status is None else _int(status, "status")
    latency = get("latency_ms")
    event.latency_ms = None if latency is None else _non_negative(latency, "latency_ms")
    event.system_hash = get("system_hash")
    event.prompt = get("prompt")
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
