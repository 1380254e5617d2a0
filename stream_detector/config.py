"""Detector settings: defaults that suit a busy gateway, every one overridable by environment.

Environment variables are named ``STREAM_DETECTOR_<FIELD>`` in upper case (for example
``STREAM_DETECTOR_ALLOWED_LATENESS_S=600``). A bad value is a clear error naming the variable,
raised at start-up, never a silent fallback. Not a detector setting but read the same way:
``STREAM_DETECTOR_NATIVE=0`` turns off the compiled parsing fast path (`features.parse_features`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from itertools import pairwise

ENV_PREFIX = "STREAM_DETECTOR_"


class ConfigError(ValueError):
    """A setting has a value the detector cannot run with."""


@dataclass(frozen=True)
class DetectorConfig:
    """Windows, thresholds and bounds of the detection core (all times in event-time seconds)."""

    #: An event older than its account's newest event by more than this is *late*: counted and
    #: left out of the account's state (its windows have moved on).
    allowed_lateness_s: float = 300.0
    #: Accounts with no event for this long are dropped from state.
    idle_expiry_s: float = 2 * 86400.0
    #: Hard cap on accounts in state; beyond it the longest-idle are evicted first.
    max_accounts: int = 2_000_000
    #: Event ids remembered for de-duplication: two generations of at most this many each.
    dedupe_capacity: int = 1_000_000
    #: ... and a generation never outlives this much event time.
    dedupe_horizon_s: float = 6 * 3600.0
    #: A model first seen less than this long ago counts as newly released.
    new_model_window_s: float = 48 * 3600.0
    #: Score thresholds of each severity (score in [0, 1]).
    threshold_low: float = 0.5
    threshold_medium: float = 0.7
    threshold_high: float = 0.85
    threshold_critical: float = 0.95
    #: A subject is not re-alerted at the same severity within this much event time.
    cooldown_s: float = 6 * 3600.0
    #: Re-score an account after at least this many new events (see `detector.RESCORE_SHIFT`).
    rescore_every: int = 16
    #: Random seed of the online model (decisions are deterministic for a given event order).
    seed: int = 7
    #: Weight of the label-trained classifier once fully trusted (it grows with labels seen).
    label_model_weight: float = 1.5
    #: Labels needed before the label-trained classifier gets its full weight.
    labels_for_full_weight: int = 50
    #: Accounts named in one cluster alert (the total is always given).
    max_alert_accounts: int = 50
    #: A cluster alert pages (critical) only once its members have taken this many output
    #: tokens in all (as many times its typical member's); before, it is high at most. A
    #: class or an office takes a few hundred thousand, a distillation campaign millions.
    #: 0 pages on the score alone.
    page_output_tokens: float = 1_000_000.0

    def __post_init__(self) -> None:
        if self.allowed_lateness_s < 0 or self.idle_expiry_s <= 0 or self.cooldown_s < 0:
            raise ConfigError("lateness, idle expiry and cool-down must be positive durations")
        if self.page_output_tokens < 0:
            raise ConfigError("page_output_tokens must be >= 0")
        if self.max_accounts < 1 or self.dedupe_capacity < 1 or self.rescore_every < 1:
            raise ConfigError("max_accounts, dedupe_capacity and rescore_every must be >= 1")
        levels = (
            self.threshold_low,
            self.threshold_medium,
            self.threshold_high,
            self.threshold_critical,
        )
        if not (levels[0] > 0 and levels[-1] <= 1 and all(a < b for a, b in pairwise(levels))):
            raise ConfigError("thresholds must rise: 0 < low < medium < high < critical <= 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DetectorConfig:
        """Defaults overridden by ``STREAM_DETECTOR_*`` variables; bad values raise ConfigError."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for spec in fields(cls):
            name = ENV_PREFIX + spec.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            kind = int if spec.type in ("int", int) else float
            try:
                values[spec.name] = kind(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ConfigError as exc:
            raise ConfigError(f"{exc} (from STREAM_DETECTOR_* environment)") from None
