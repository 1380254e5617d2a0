"""Event parsing: every contract violation is a named rejection, nothing else escapes."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_detector.events import MAX_EVENT_BYTES, Rejection, RejectReason, parse_event

from .builders import T0, event


def reason_of(raw: bytes | str) -> RejectReason:
    with pytest.raises(Rejection) as info:
        parse_event(raw)
    return info.value.reason


def test_valid_event_keeps_fields_and_defaults_missing_to_none() -> None:
    doc = event(1, "acct", T0, prompt="hi", thinking=True, asn=64500, unknown_field=[1, 2])
    parsed = parse_event(orjson.dumps(doc))
    assert (parsed.event_id, parsed.account_id, parsed.ts) == ("acct-1", "acct", T0)
    assert parsed.thinking is True and parsed.asn == 64500 and parsed.prompt == "hi"
    assert parsed.ip is None and parsed.payment_fingerprint is None


def test_rfc3339_and_epoch_times_agree() -> None:
    as_text = parse_event(orjson.dumps(event(1, "a", "2026-01-01T00:00:00Z")))
    with_offset = parse_event(orjson.dumps(event(1, "a", "2026-01-01T01:00:00+01:00")))
    as_int = parse_event(orjson.dumps(event(1, "a", int(T0))))
    assert as_text.ts == with_offset.ts == as_int.ts == T0


def test_null_optional_fields_count_as_absent() -> None:
    assert parse_event(orjson.dumps(event(1, "a", T0, ip=None, tools=None))).ip is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe garbage", RejectReason.NOT_UTF8),
        (b'{"event_id": "x", "ts": 1', RejectReason.NOT_JSON),
        (b"[1, 2, 3]", RejectReason.NOT_OBJECT),
        (b'"just a string"', RejectReason.NOT_OBJECT),
        (orjson.dumps({"ts": T0, "account_id": "a"}), RejectReason.MISSING_FIELD),
        (orjson.dumps({"event_id": "e", "account_id": "a"}), RejectReason.MISSING_FIELD),
        (orjson.dumps({"event_id": "e", "ts": T0}), RejectReason.MISSING_FIELD),
        (orjson.dumps({"event_id": 5, "ts": T0, "account_id": "a"}), RejectReason.WRONG_TYPE),
        (orjson.dumps({"event_id": "", "ts": T0, "account_id": "a"}), RejectReason.OUT_OF_RANGE),
        (
            orjson.dumps({"event_id": "e" * 129, "ts": T0, "account_id": "a"}),
            RejectReason.OUT_OF_RANGE,
        ),
        (orjson.dumps(event(1, "a", "yesterday")), RejectReason.BAD_TIME),
        (orjson.dumps(event(1, "a", "2026-01-01T00:00:00")), RejectReason.BAD_TIME),
        (orjson.dumps(event(1, "a", T0 * 1000)), RejectReason.BAD_TIME),
        (orjson.dumps(event(1, "a", -5)), RejectReason.BAD_TIME),
        (orjson.dumps(event(1, "a", [T0])), RejectReason.WRONG_TYPE),
        (orjson.dumps(event(1, "a", T0, output_tokens=-1)), RejectReason.OUT_OF_RANGE),
        (orjson.dumps(event(1, "a", T0, output_tokens=1.5)), RejectReason.WRONG_TYPE),
        (orjson.dumps(event(1, "a", T0, input_tokens="12")), RejectReason.WRONG_TYPE),
        (orjson.dumps(event(1, "a", T0, tools=True)), RejectReason.WRONG_TYPE),
        (orjson.dumps(event(1, "a", T0, thinking="yes")), RejectReason.WRONG_TYPE),
        (orjson.dumps(event(1, "a", T0, conversation_turns=0)), RejectReason.OUT_OF_RANGE),
        (orjson.dumps(event(1, "a", T0, latency_ms=-3.0)), RejectReason.OUT_OF_RANGE),
        (orjson.dumps(event(1, "a", T0, prompt=42)), RejectReason.WRONG_TYPE),
        (orjson.dumps(event(1, "a", T0, account_created_ts="soon")), RejectReason.BAD_TIME),
        (b" " * (MAX_EVENT_BYTES + 1), RejectReason.TOO_LARGE),
    ],
)
def test_each_violation_has_its_named_reason(raw: bytes, reason: RejectReason) -> None:
    assert reason_of(raw) == reason


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["event_id", "ts", "account_id", "output_tokens", "prompt", "thinking", "tools", "status",
     "account_created_ts", "temperature", "asn", "latency_ms", "conversation_turns"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_anything_but_rejection(raw: bytes) -> None:
    try:
        parsed = parse_event(raw)
    except Rejection as exc:
        assert isinstance(exc.reason, RejectReason)
    else:
        assert isinstance(parsed.ts, float) and math.isfinite(parsed.ts)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(field_names, json_values, max_size=8))
def test_arbitrary_objects_are_parsed_or_rejected_with_reason(doc: dict[str, object]) -> None:
    base = event(1, "acct", T0)
    base.update(doc)
    try:
        parsed = parse_event(orjson.dumps(base))
    except Rejection as exc:
        assert isinstance(exc.reason, RejectReason) and exc.detail
    else:
        assert parsed.account_id and parsed.event_id and parsed.ts >= 0
        for name in ("output_tokens", "tools", "asn"):
            value = getattr(parsed, name)
            assert value is None or (type(value) is int and value >= 0)
