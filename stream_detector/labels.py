"""Analyst feedback (contract §3): `{"account_id", "label": "attack"|"benign", "ts"}`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from stream_detector.events import Rejection, RejectReason, parse_time

LABELS = ("attack", "benign")


@dataclass(frozen=True, slots=True)
class Label:
    """One analyst verdict on an account."""

    account_id: str
    attack: bool
    ts: float


def label_from_object(obj: Any) -> Label:
    """Validate a decoded label object; raise `Rejection` with a named reason."""
    if type(obj) is not dict:
        raise Rejection(RejectReason.NOT_OBJECT, "label must be a JSON object")
    account_id = obj.get("account_id")
    label = obj.get("label")
    ts = obj.get("ts")
    if account_id is None or label is None or ts is None:
        raise Rejection(RejectReason.MISSING_FIELD, "label needs account_id, label and ts")
    if type(account_id) is not str or not account_id:
        raise Rejection(RejectReason.WRONG_TYPE, "account_id must be a non-empty string")
    if label not in LABELS:
        raise Rejection(RejectReason.OUT_OF_RANGE, 'label must be "attack" or "benign"')
    return Label(account_id, label == "attack", parse_time(ts, "ts"))


def parse_label(raw: bytes | str) -> Label:
    """Decode one JSON label (a Kafka value or a JSON Lines line)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejection(RejectReason.NOT_JSON, f"not valid JSON: {exc}") from None
    return label_from_object(obj)
