"""The compiled fast path of `stream_detector.features.parse_features` (native/src/lib.rs)."""

from stream_detector.features import EventFeatures

class Parser:
    def __init__(
        self,
        features: type[EventFeatures],
        lexicon: dict[str, tuple[int, bool]],
        flags: dict[str, int],
        scan_chars: int,
        skeleton_chars: int,
        long_output_tokens: int,
        max_event_bytes: int,
        max_epoch_s: float,
    ) -> None: ...
    def features(self, raw: object) -> EventFeatures | None: ...
