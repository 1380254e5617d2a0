"""The compiled fast paths (native/src): `features.parse_features`, `state.AccountState` and
`timing.compare`."""

from typing import Any

from stream_detector.features import EventFeatures

class Parser:
    def __init__(
        self,
        features: type[EventFeatures],
        lexicon: dict[str, tuple[int, bool]],
        flags: dict[str, int],
        scan_chars: int,
        skeleton_chars: int,
        min_segment_bytes: int,
        long_output_tokens: int,
        small_budget_tokens: int,
        max_event_bytes: int,
        max_epoch_s: float,
    ) -> None: ...
    def features(self, raw: object) -> EventFeatures | None: ...

STATE_LAYOUT: tuple[int, int, int, int, int]

class AccountStateCore:
    counts: list[int]
    created_ts: float | None
    first_ts: float
    last_ts: float
    gap_m2: float
    gap_mean: float
    gap_n: int
    has_org: bool
    hod_mask: int
    in_tokens: int
    out_tokens: int
    n: int
    ring_hour: int
    scored_hour: int
    scored_n: int
    policy: list[Any]
    def __init__(self, ts: float) -> None: ...
    def apply(self, f: EventFeatures, flags: int) -> None: ...

def compare(timed: list[tuple[int, int]], limits: Any) -> tuple[float | None, list[int]]: ...
