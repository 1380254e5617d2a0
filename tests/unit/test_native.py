"""The compiled fast path (`stream_detector._native`) against the Python reference.

Whenever the fast path answers, its features must equal ``derive(parse_event(raw))`` field by
field (types and float bits included); whenever Python rejects, the fast path must not answer.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import struct
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_detector import features as ff
from stream_detector import simulate
from stream_detector import state as sm
from stream_detector.events import Rejection, parse_event
from stream_detector.native import native_module
from stream_detector.prompts import lexicon

native = ff._native
pytestmark = pytest.mark.skipif(
    os.environ.get("STREAM_DETECTOR_NATIVE", "").strip() == "0", reason="fast path turned off"
)


def reference(raw: bytes) -> ff.EventFeatures | None:
    try:
        return ff.derive(parse_event(raw))
    except Rejection:
        return None


def fields(f: ff.EventFeatures) -> list[tuple[str, type, Any]]:
    """Every slot as (name, type, value), floats by their bits (so -0.0 != 0.0)."""
    out = []
    for name in ff.EventFeatures.__slots__:
        value = getattr(f, name)
        out.append((name, type(value), struct.pack("<d", value) if type(value) is float else value))
    return out


def agrees(raw: bytes) -> bool:
    """Assert the fast path agrees with Python when it answers; return whether it answered."""
    assert native is not None, "stream_detector._native is not built"
    got = native(raw)
    if got is None:
        return False
    want = reference(raw)
    assert want is not None, f"native accepted what Python rejects: {raw[:200]!r}"
    assert fields(got) == fields(want), raw[:300]
    assert got.account_id is sys.intern(got.account_id)
    return True


# --- (1) real simulated traffic ---------------------------------------------------------------
@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    path = tmp_path_factory.mktemp("native") / "traffic.jsonl"
    parser = argparse.ArgumentParser()
    simulate.register(parser.add_subparsers())
    args = parser.parse_args(["simulate", "--scale", "0.05", "--hours", "6", "-o", str(path)])
    assert args.func(args) == 0
    return path.read_bytes().splitlines()[:5000]


def test_simulated_events_take_the_fast_path_with_equal_features(traffic: list[bytes]) -> None:
    answered = sum(agrees(line) for line in traffic)
    assert len(traffic) >= 2000
    assert answered >= 0.99 * len(traffic)


# --- (2) arbitrary event-shaped objects -------------------------------------------------------
LEXICON = sorted(lexicon())
UNICODE = (
    "éÉßẞñçÇøÅ"  # Latin
    "ПривётЁё"  # Cyrillic
    "ΣσςΑΩάΐ"  # Greek, capital sigma (final form depends on context)
    "İıIi"  # Turkish dotted and dotless I
    "\u0301\u0307\u0345"  # combining marks
    "推理代码证明一二三四五"  # CJK (ideographs that are numerals too)
    "ステップ단계별٣٤Ⅻ²½"  # kana, hangul, Arabic-Indic digits, Roman numeral, No
    "\U0001f600\U00010400\U00010428\U0001e900"  # emoji, Deseret, Adlam (astral case pairs)
    "\u00a0\u2028\x0b\x0c\t\n\r "  # spaces of all kinds
)
prompt_piece = (
    st.sampled_from(LEXICON).map(lambda w: w.upper() if len(w) % 3 == 0 else w)
    | st.text(alphabet=UNICODE + "abcdefXYZ0123456789.,!?-/#<`:;", max_size=12)
    | st.text(max_size=6)
    # sentence and line breaks (template segments), ASCII and full-width
    | st.sampled_from(
        [". ", ".", "?\n", "! ", ":", ": ", ";\t", "\n\n", "。", "？", "！", "：", "；"]
    )
    | st.sampled_from(["Solve the following problem carefully", "Question 12", "Q3", "   "])
)
prompts = st.lists(prompt_piece, max_size=120).map("".join) | st.text(max_size=40)


@st.composite
def times(draw: st.DrawFn) -> Any:
    """RFC 3339 strings (common and less common forms), epoch numbers, or junk."""
    ymd = [draw(st.integers(1, 9999)), draw(st.integers(0, 13)), draw(st.integers(0, 32))]
    hms = [draw(st.integers(0, 24)), draw(st.integers(0, 60)), draw(st.integers(0, 60))]
    date = "{:04d}-{:02d}-{:02d}".format(*ymd)
    clock = ":".join(f"{n:02d}" for n in hms)
    frac = draw(st.sampled_from(["", ".", ".5", ".123", ".025", ".123456", ".1234567", ",5"]))
    hours, minutes = draw(st.integers(0, 24)), draw(st.integers(0, 60))
    zone = draw(st.sampled_from(["Z", "z", "", "+", "-", "+0530"]))
    if zone in "+-":
        zone = f"{zone or '+'}{hours:02d}:{minutes:02d}"
    sep = draw(st.sampled_from(["T", "T", "T", " ", "t"]))
    text = f"{date}{sep}{clock}{frac}{zone}"
    return draw(
        st.just(text)
        | st.just(f" {text}")
        | st.floats(-1.0, 2e11)
        | st.integers(-(2**62), 2**62)
        | st.sampled_from([0, 1e11, 1e11 + 1, 1793577604.803, -0.0])
        | st.text(max_size=30)
        | st.none()
        | st.booleans()
    )


v4 = st.tuples(*[st.integers(0, 300)] * 4).map(lambda t: ".".join(map(str, t)))
ips = (
    v4
    | st.ip_addresses(v=4).map(str)
    | st.ip_addresses(v=6).map(str)
    | st.ip_addresses(v=6).map(lambda a: a.exploded)
    | st.ip_addresses(v=6).map(lambda a: str(a).upper())
    | st.sampled_from(["01.2.3.4", "001.02.003.4", "1.2.3", "::", "::1", "1::", "1:2:3:4:5:6:7::",
                       "::ffff:1.2.3.4", "fe80::1%eth0", " 1.2.3.4", "1.2.3.4 ", "١.٢.٣.٤", "1:::2",
                       "12345::", "1:2:3:4:5:6:7:8:9", "0:0:0:0:0:0:0:0", "a:b:0:0:1::", "0:0:1::"])
    | st.text(alphabet="0123456789abcdefABCDEF:.% ", max_size=40)
)  # fmt: skip
anything = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text()
offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
rfc3339 = st.builds(
    lambda t, spec, z: t.isoformat(timespec=spec).replace("+00:00", "Z" if z else "+00:00"),
    st.datetimes(datetime(1700, 1, 1), datetime(2250, 1, 1), timezones=offsets),
    st.sampled_from(["seconds", "milliseconds", "microseconds", "auto"]),
    st.booleans(),
)
epochs = st.floats(0, 1e11) | st.integers(0, 10**11) | st.sampled_from([0, 1e11, -0.0])
counts = st.integers(0, 2**53) | st.integers(0, 5000)
texts = st.text(max_size=40) | st.sampled_from(["x", ""])

#: Valid values of each field (Python accepts all of them, in every combination)...
VALID = {
    "event_id": st.text(min_size=1, max_size=128),
    "account_id": st.sampled_from(["acct_1", "acct_2"]) | st.text(min_size=1, max_size=256),
    "ts": rfc3339 | epochs,
    "account_created_ts": rfc3339 | epochs,
    "org_id": texts,
    "api_key_id": texts,
    "payment_fingerprint": texts,
    "ip": ips,
    "asn": counts,
    "country": texts,
    "user_agent": st.sampled_from(["", "a/1.2.3 x", "b/", "/1", "c/1..2", "d/1.2 (x)"]) | texts,
    "model": texts,
    "endpoint": st.sampled_from(["messages", "messages/batches", "batch", ""]) | texts,
    "input_tokens": counts,
    "output_tokens": counts,
    "max_tokens": counts,
    "temperature": st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**53), 2**53)
    | st.sampled_from([0, 0.0, -0.0, 1, 0.7, 1e16, 1e-5, 1e22, 123456789.125]),
    "thinking": st.booleans(),
    "tools": counts,
    "tool_calls": counts,
    "conversation_turns": st.integers(1, 2**53),
    "status": st.sampled_from([200, 429]) | st.integers(-(2**53), 2**53),
    "latency_ms": st.floats(0, allow_infinity=False) | counts,
    "system_hash": texts,
    "prompt": prompts,
}
#: ... and values that are wrong (or at the edge) for some of them.
bad_counts = st.integers(-3, -1) | st.integers(2**53 + 1, 2**64 - 1) | st.sampled_from([1.0, True])
JUNK = {
    "event_id": st.sampled_from(["", "e" * 129, "é" * 128, "é" * 129]),
    "account_id": st.sampled_from(["", "a" * 257, "ж" * 256]),
    "ts": times(),
    "account_created_ts": times(),
    "asn": bad_counts,
    "input_tokens": bad_counts,
    "output_tokens": bad_counts,
    "conversation_turns": st.sampled_from([0, -1, 1.0]),
    "latency_ms": st.sampled_from([-1, -0.5, -0.0, True]),
}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event, sometimes with one field missing or spoiled, plus unknown fields."""
    required = {name: VALID[name] for name in REQUIRED}
    optional = {name: value for name, value in VALID.items() if name not in REQUIRED}
    doc = draw(st.fixed_dictionaries(required, optional=optional))
    spoiled = draw(st.sampled_from([None, None, None, *VALID]))
    if spoiled is not None:
        if draw(st.booleans()):
            doc.pop(spoiled, None)
        else:
            doc[spoiled] = draw(JUNK.get(spoiled, anything))
    extra = draw(st.dictionaries(st.text(max_size=8), anything, max_size=3))
    return {**extra, **doc}


REQUIRED = ("event_id", "account_id", "ts")


def encode(doc: dict[str, Any], style: int) -> bytes:
    """Different JSON spellings of one object: orjson's, and Python's json with \\u escapes."""
    if style == 0:
        return orjson.dumps(doc)
    return json.dumps(doc, ensure_ascii=style == 1, indent=None if style == 1 else 1).encode()


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events(),
    st.integers(0, 2),
    st.sampled_from([b"", b',"ts":5', b',"prompt":null', b',"tS":5', b',"x":[1,{"y":[]}]']),
)
def test_event_shaped_objects_agree(doc: dict[str, Any], style: int, tail: bytes) -> None:
    try:
        raw = encode(doc, style)
    except (TypeError, ValueError, orjson.JSONEncodeError):  # NaN, huge ints
        return
    agrees(raw)
    if tail:
        agrees(raw[: raw.rindex(b"}")] + tail + b"}")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=1100) | st.lists(prompt_piece, min_size=40, max_size=200).map("".join))
def test_any_prompt_takes_the_fast_path_with_equal_features(prompt: str) -> None:
    """Prompts never need Python (Unicode case and letters come from Python's own `str`)."""
    assert agrees(orjson.dumps({"event_id": "e", "account_id": "a", "ts": 1.0, "prompt": prompt}))


# --- (3) arbitrary bytes ----------------------------------------------------------------------
@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_or_pass_what_python_rejects(raw: bytes) -> None:
    agrees(raw)


SAMPLE = orjson.dumps(
    {"event_id": "e1", "account_id": "acct_1", "ts": 1793577604.803, "ip": "2001:db8::1",
     "prompt": "Думай step by step, then\nsolve: 2+2", "asn": 7,
     "temperature": 0.7, "user_agent": "x/1.2.3", "account_created_ts": "2024-03-03T17:38:56Z"}
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SAMPLE)), st.integers(0, 255), st.integers(0, 2))))
def test_mutated_events_never_pass_what_python_rejects(edits: list[tuple[int, int, int]]) -> None:
    raw = bytearray(SAMPLE)
    for at, byte, op in edits:
        at = min(at, len(raw))
        if op == 0:
            raw[at:at] = bytes([byte])
        elif op == 1:
            del raw[at : at + 1]
        elif at < len(raw):
            raw[at] = byte
    agrees(bytes(raw))


@pytest.mark.parametrize(
    "raw",
    [
        SAMPLE,
        SAMPLE + b"\n",
        b' \r\n\t{"event_id":"e","account_id":"a","ts":-0} ',
        b'{"event_id":"e","account_id":"a","ts":1E5,"temperature":-0}',
        b'{"event_id":"e","account_id":"a","ts":1.5e9,"temperature":-0.0,"max_tokens":10,'
        b'"output_tokens":9}',
        b'{"event_id":"\\u0065\\ud83d\\ude00","account_id":"a","ts":"2026-02-28T23:59:59.5-01:30"}',
        b'{"event_id":"e","account_id":"a","ts":1,"ip":"001.2.3.4",'
        b'"prompt":"\\u03a3\\u0130 \\u2167"}',
        b'{"event_id":"e","account_id":"a","ts":1,"prompt":"ABC\\u03a3 rust\\u0301 code\\u00b2"}',
    ],
)
def test_edge_cases_agree(raw: bytes) -> None:
    agrees(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event_id":"e","account_id":"a","ts":1,"ts":2}',  # duplicate key: Python decides
        b'{"event_id":"e","account_id":"a","ts":"2026-01-01T00:00:00"}',  # no offset: rejected
        b'{"event_id":"e","account_id":"a","ts":1,"asn":1.0}',  # float for an int: rejected
        b'{"event_id":"e","account_id":"a","ts":1,"x":"\\ud800"}',  # lone surrogate: rejected
        b'{"event_id":"e","account_id":"a","ts":1,"ip":"\xd9\xa1.2.3.4"}',  # non-ASCII digit
    ],
)
def test_unusual_events_go_to_python(raw: bytes) -> None:
    assert native is not None and native(raw) is None


# --- (4) the switch and the fallback ----------------------------------------------------------
def test_parse_features_matches_with_the_fast_path_off() -> None:
    code = (
        "import sys; from stream_detector import features as ff\n"
        "assert ff._native is None\n"
        "f = ff.parse_features(sys.stdin.buffer.read())\n"
        "print(repr([getattr(f, n) for n in ff.EventFeatures.__slots__]))\n"
    )
    env = {**os.environ, "STREAM_DETECTOR_NATIVE": "0"}
    out = subprocess.run(
        [sys.executable, "-c", code], input=SAMPLE, env=env, capture_output=True, check=True
    )
    f = ff.parse_features(SAMPLE)
    assert out.stdout.decode().strip() == repr([getattr(f, n) for n in ff.EventFeatures.__slots__])


def test_rejections_keep_their_reasons() -> None:
    bad = b'{"event_id":"e","account_id":"a","ts":"soon"}'
    with pytest.raises(Rejection) as exc:
        ff.parse_features(bad)
    with pytest.raises(Rejection) as ref:
        parse_event(bad)
    assert (exc.value.reason, exc.value.detail) == (ref.value.reason, ref.value.detail)


def test_a_missing_extension_falls_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "stream_detector._native", None)  # import fails
    native_module.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="stream_detector.native"):
            assert ff._native_parser() is None
            assert sm._native_class() is None
    finally:
        native_module.cache_clear()
    assert [r.levelname for r in caplog.records] == ["WARNING"]


def test_the_extension_is_built() -> None:
    assert native is not None


# --- (5) the native account state ------------------------------------------------------------
STATE_FIELDS = (
    "first_ts", "last_ts", "created_ts", "has_org", "n", "in_tokens", "out_tokens", "ring_hour",
    "hod_mask", "gap_n", "gap_mean", "gap_m2", "scored_n", "scored_hour", "policy", "minute_mask",
    "mask_minute",
)  # fmt: skip


def state_view(s: sm.StateReads, now: float) -> list[Any]:
    """Every field (floats by their bits) and every read of one account's state."""
    values = [getattr(s, name) for name in STATE_FIELDS]
    packed = [struct.pack("<d", v) if type(v) is float else (type(v), v) for v in values]
    reads = (s.events_24h(now), s.hourly_rate(now), s.recent_rate(now), s.active_hours_24h())
    return [*packed, list(s.counts), list(s.flag_counts), reads, s.templates(), s.gap_std()]


def fold_both(features: list[ff.EventFeatures]) -> None:
    """Fold the same features into the reference and the native state; compare throughout."""
    assert sm.AccountState is not sm.PyAccountState, "the native state is not built"
    pairs: dict[str, tuple[sm.StateReads, sm.StateReads]] = {}
    for f in features:
        pair = pairs.get(f.account_id)
        if pair is None:
            pair = pairs[f.account_id] = (sm.PyAccountState(f.ts), sm.AccountState(f.ts))
        for s in pair:
            s.apply(f, f.flags)
        assert state_view(pair[0], f.ts) == state_view(pair[1], f.ts)
    for reference_state, native_state in pairs.values():
        assert reference_state.export() == native_state.export()
        restored = sm.AccountState.restore(reference_state.export())
        assert state_view(restored, 0.0) == state_view(reference_state, 0.0)


def test_native_state_folds_simulated_traffic_like_the_reference(traffic: list[bytes]) -> None:
    fold_both([f for line in traffic if (f := reference(line)) is not None])


@st.composite
def feature_runs(draw: st.DrawFn) -> list[ff.EventFeatures]:
    """Events of a few accounts with times that jump, stall and go backwards."""
    out = []
    ts = draw(st.floats(0, 3e9))
    for _ in range(draw(st.integers(1, 60))):
        f = ff.EventFeatures.__new__(ff.EventFeatures)
        ts = max(0.0, ts + draw(st.sampled_from([0.0, 0.5, 59.0, 3600.0, 90000.0, -700.0])))
        ts += draw(st.floats(0, 4000))
        f.ts = ts
        f.account_id = draw(st.sampled_from(["a", "b", "c"]))
        f.flags = draw(st.integers(0, (1 << ff.N_FLAGS) - 1))
        f.input_tokens = draw(st.integers(0, 1 << 40))
        f.output_tokens = draw(st.integers(0, 1 << 40))
        f.created_ts = draw(st.none() | st.floats(0, 3e9))
        f.org = draw(st.sampled_from([None, "", "org-1"]))
        f.head_fp = draw(st.sampled_from([0, 1, 7, 0xFFFFFFFF]))
        f.tail_fp = draw(st.sampled_from([1, 9, 0xFFFFFFFF]))
        out.append(f)
    return out


@settings(max_examples=300, deadline=None)
@given(feature_runs())
def test_native_state_agrees_on_any_event_sequence(features: list[ff.EventFeatures]) -> None:
    fold_both(features)
