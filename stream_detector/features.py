"""Per-event features: everything the core needs from one API call, in a few small numbers.

`parse_features` runs once per event in every driver (`replay`, the Kafka worker, the
benchmarks): raw bytes in, `EventFeatures` out. `derive` (after `events.parse_event`) is the
reference; a compiled fast path (`stream_detector._native`, built from `native/`) gives the same
features for ordinary events in a fraction of the time and hands anything unusual to the
reference. `STREAM_DETECTOR_NATIVE=0` turns the fast path off. The prompt and the IP are thrown
away here: what leaves is a compact record (fingerprints, flags, counts, coarse link keys) that
is safe to keep in state.
"""

from __future__ import annotations

import ipaddress
import re
import sys
import zlib
from collections.abc import Callable
from functools import lru_cache

from stream_detector.events import MAX_EPOCH_S, MAX_EVENT_BYTES, Event, parse_event
from stream_detector.native import native_module
from stream_detector.prompts import (
    MIN_SEGMENT_BYTES,
    SCAN_CHARS,
    SKELETON_CHARS,
    lexicon,
    prompt_features,
)

# Event flags (bits 0-4 are the prompt intents of `stream_detector.prompts`).
THINKING = 1 << 5
AGENTIC = 1 << 6  # tool definitions in the request or tool calls in the response
CEILING_HIT = 1 << 7  # output reached >= 90 % of the requested max_tokens
RATE_LIMITED = 1 << 8
TEMPERATURE_ZERO = 1 << 9
MULTI_TURN = 1 << 10
BATCH_ENDPOINT = 1 << 11
HAS_PROMPT = 1 << 12
LONG_OUTPUT = 1 << 13  # >= 1,000 output tokens
NEW_MODEL = 1 << 14  # set by the detector: the model was first seen recently
SMALL_BUDGET = 1 << 15  # max_tokens given, and at most SMALL_BUDGET_TOKENS
N_FLAGS = 16

#: Output tokens at and above which an answer counts as long.
LONG_OUTPUT_TOKENS = 1000
#: A max_tokens at or below which the caller asks for a chat-length answer at most: a
#: written-out reasoning trace or a whole program needs more room than this.
SMALL_BUDGET_TOKENS = 2048


def _stable_hash(text: str) -> int:
    """64-bit digest stable across processes (Python's str hash is salted per process)."""
    data = text.encode()
    return zlib.crc32(data) << 32 | zlib.adler32(data)


_IPV4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")


@lru_cache(maxsize=1 << 16)
def network_prefix(ip: str) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) a client address belongs to: shared by an office or a
    carrier, coarse enough not to identify a person. None if the address does not parse."""
    match = _IPV4.fullmatch(ip)
    if match is not None:  # the common case, without the ipaddress module's cost
        a, b, c, d = match.groups()
        if int(a) < 256 and int(b) < 256 and int(c) < 256 and int(d) < 256:
            return f"{int(a)}.{int(b)}.{int(c)}.0/24"
        return None
    return _ipv6_prefix(ip)


def _ipv6_prefix(ip: str) -> str | None:
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if addr.version == 4:
        return str(ipaddress.IPv4Network((int(addr) & 0xFFFFFF00, 24)))
    return str(ipaddress.IPv6Network((int(addr) >> 80 << 80, 48)))


@lru_cache(maxsize=1 << 14)
def client_family(user_agent: str) -> str:
    """User agent reduced to its first product token, e.g. ``anthropic-python/0.40``."""
    token = user_agent.split(" ", 1)[0][:64]
    name, _, version = token.partition("/")
    return f"{name}/{'.'.join(version.split('.')[:2])}" if version else name


@lru_cache(maxsize=1 << 12)
def request_shape(
    max_tokens: int,
    temperature: float | None,
    tools: int | None,
    thinking: bool | None,
    endpoint: str | None,
) -> int:
    """A stable fingerprint of how a client fills in a request (cached: few shapes recur)."""
    if temperature == 0:  # -0.0 too: the cache does not tell them apart, nor may the result
        temperature = 0.0
    return zlib.crc32(f"{max_tokens}|{temperature}|{tools}|{bool(thinking)}|{endpoint}".encode())


class EventFeatures:
    """What the detector keeps of one event."""

    __slots__ = (
        "account_id",
        "client",
        "created_ts",
        "event_digest",
        "flags",
        "head_fp",
        "input_tokens",
        "max_tokens",
        "model",
        "net",
        "org",
        "output_tokens",
        "payment",
        "shape",
        "system",
        "tail_fp",
        "ts",
    )

    account_id: str
    client: str | None
    created_ts: float | None
    event_digest: int
    flags: int
    head_fp: int
    input_tokens: int
    max_tokens: int
    model: str | None
    net: str | None
    org: str | None
    output_tokens: int
    payment: str | None
    shape: int
    system: str | None
    tail_fp: int
    ts: float


def derive(event: Event) -> EventFeatures:
    """Compact features of one validated event; the prompt and IP do not survive this call."""
    f = EventFeatures.__new__(EventFeatures)
    # One string object per account, however many events name it (state, keys and sets share it).
    f.account_id = sys.intern(event.account_id)
    f.ts = event.ts
    f.event_digest = _stable_hash(event.event_id)
    f.created_ts = event.account_created_ts
    f.org = event.org_id
    f.model = event.model
    f.payment = event.payment_fingerprint
    f.system = event.system_hash
    ip = event.ip
    f.net = network_prefix(ip) if ip else None
    agent = event.user_agent
    f.client = client_family(agent) if agent else None
    out = event.output_tokens or 0
    ceiling = event.max_tokens or 0
    f.output_tokens = out
    f.input_tokens = event.input_tokens or 0
    f.max_tokens = ceiling
    flags = 0
    prompt = event.prompt
    if prompt:
        intents, f.head_fp, f.tail_fp = prompt_features(prompt)
        flags = HAS_PROMPT | intents
    else:
        f.head_fp = f.tail_fp = 0
    thinking = event.thinking
    if thinking:
        flags |= THINKING
    tools = event.tools
    if tools or event.tool_calls:
        flags |= AGENTIC
    if ceiling and out >= 0.9 * ceiling:
        flags |= CEILING_HIT
    if 0 < ceiling <= SMALL_BUDGET_TOKENS:
        flags |= SMALL_BUDGET
    if out >= LONG_OUTPUT_TOKENS:
        flags |= LONG_OUTPUT
    if event.status == 429:
        flags |= RATE_LIMITED
    temperature = event.temperature
    if temperature == 0:
        flags |= TEMPERATURE_ZERO
    turns = event.conversation_turns
    if turns is not None and turns >= 3:
        flags |= MULTI_TURN
    endpoint = event.endpoint
    if endpoint and "batch" in endpoint:
        flags |= BATCH_ENDPOINT
    f.flags = flags
    # The request's shape, as an SDK or a harvesting script sets it: a client fingerprint.
    f.shape = request_shape(ceiling, temperature, tools, thinking, endpoint)
    return f


def _native_parser() -> Callable[[object], EventFeatures | None] | None:
    """The compiled fast path, or None (see `stream_detector.native`)."""
    native = native_module()
    if native is None:
        return None
    flags = {
        "HAS_PROMPT": HAS_PROMPT, "THINKING": THINKING, "AGENTIC": AGENTIC,
        "CEILING_HIT": CEILING_HIT, "LONG_OUTPUT": LONG_OUTPUT, "RATE_LIMITED": RATE_LIMITED,
        "TEMPERATURE_ZERO": TEMPERATURE_ZERO, "MULTI_TURN": MULTI_TURN,
        "BATCH_ENDPOINT": BATCH_ENDPOINT, "SMALL_BUDGET": SMALL_BUDGET,
    }  # fmt: skip
    parser = native.Parser(
        EventFeatures,
        lexicon(),
        flags,
        SCAN_CHARS,
        SKELETON_CHARS,
        MIN_SEGMENT_BYTES,
        LONG_OUTPUT_TOKENS,
        SMALL_BUDGET_TOKENS,
        MAX_EVENT_BYTES,
        MAX_EPOCH_S,
    )
    return parser.features


_native = _native_parser()


def parse_features(raw: bytes | bytearray | memoryview | str) -> EventFeatures:
    """Features of one raw event (a Kafka value or a JSON Lines line); raises `Rejection`.

    Same result as ``derive(parse_event(raw))``, which runs whenever the fast path is off or
    not certain (and then names the rejection, if any).
    """
    if _native is not None:
        features = _native(raw)
        if features is not None:
            return features
    return derive(parse_event(raw))
