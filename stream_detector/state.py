"""Per-account state over event-time windows: small, fixed-size, and free of personal data.

An account costs a few hundred bytes whatever its volume: counters of event flags, a 24-slot
ring of hourly counts (the sliding day window), bit masks of active hours, running moments of
inter-arrival gaps, and a small ring of the last prompts' template fingerprints. No raw
prompt, IP or event id is held. `AccountStore` bounds the number of accounts (idle expiry plus
a hard cap) so memory stays flat on an unbounded stream.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import MutableSequence, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Self

import orjson

from stream_detector.features import HAS_PROMPT, N_FLAGS, EventFeatures
from stream_detector.native import native_module
from stream_detector.timing import MASK as MINUTES_MASK
from stream_detector.timing import minute_of


@cache
def _bit_indices(word: int) -> tuple[int, ...]:
    """Indices of the set bits of a flag word: few distinct words occur, so each is worked
    out once (a table of all 2**N_FLAGS took a fifth of a second to import)."""
    return tuple(i for i in range(N_FLAGS) if word >> i & 1)


#: Version of the export format; bump when fields change and keep reading the old one
#: (3: before the minute mask; 4: before the SMALL_BUDGET flag's count).
STATE_VERSION = 5
# Layout of `AccountState.counts`: event-flag counts, the 24 hourly slots of the day window
# (slot = absolute hour % 24), the count of prompts whose head or tail fingerprint recurred,
# and a ring of the last prompts' head and tail fingerprints (where "recurred" is looked up,
# and where the templates an account is using are read: see `campaigns.link_keys`).
RING = N_FLAGS
REPEATS = RING + 24
RECENT = REPEATS + 1
#: Fingerprints in the ring: the heads and tails of the last RECENT_SLOTS / 2 prompts.
RECENT_SLOTS = 16
SIZE = RECENT + RECENT_SLOTS
_PROMPTS = HAS_PROMPT.bit_length() - 1
HOUR = 3600.0


class StateReads:
    """The read side of an account's state (windows, snapshot), shared by the reference and
    the native class: only the per-event write path (`apply`) exists twice."""

    if TYPE_CHECKING:  # the fields both implementations have (mypy checks them, not slots)
        counts: MutableSequence[int]
        created_ts: float | None
        first_ts: float
        last_ts: float
        gap_m2: float
        gap_mean: float
        gap_n: int
        has_org: bool
        hod_mask: int
        minute_mask: int
        mask_minute: int
        in_tokens: int
        out_tokens: int
        n: int
        ring_hour: int
        scored_hour: int
        scored_n: int
        policy: list[Any]

        def __init__(self, ts: float) -> None: ...

        @property
        def flag_counts(self) -> Sequence[int]:
            """The event-flag counters alone (cheaper to read than `counts` natively)."""

        def apply(self, f: EventFeatures, flags: int) -> None: ...

    else:
        __slots__ = ()

    # --- windows -------------------------------------------------------------------------
    def events_24h(self, now: float) -> int:
        """Events in the sliding 24 h window ending at event time `now`."""
        stale = int(now // HOUR) - self.ring_hour
        if stale <= 0:
            return sum(self.counts[RING:REPEATS])
        if stale >= 24:
            return 0
        counts = self.counts
        return sum(
            counts[RING + h % 24] for h in range(self.ring_hour - 23 + stale, self.ring_hour + 1)
        )

    def hourly_rate(self, now: float) -> float:
        """Calls per hour over the day window, a young account's span counting as >= 1 h."""
        span_h = (self.last_ts - self.first_ts) / HOUR
        return self.events_24h(now) / min(max(span_h, 1.0), 24.0)

    def recent_rate(self, now: float) -> float:
        """Calls per hour over the last three hours (to notice a change of pace)."""
        hour = int(now // HOUR)
        if hour - self.ring_hour >= 3:
            return 0.0
        counts = self.counts
        return sum(counts[RING + h % 24] for h in range(hour - 2, self.ring_hour + 1)) / 3.0

    def active_hours_24h(self) -> int:
        """Hours with at least one event among the 24 ending at the newest event."""
        return 24 - self.counts[RING:REPEATS].count(0)

    def templates(self) -> list[int]:
        """Fingerprints that recur in the last prompts (at most four, most frequent first): the
        templates the account is using now."""
        seen = Counter(fp for fp in self.counts[RECENT:SIZE] if fp)
        return [fp for fp, n in seen.most_common(4) if n >= 2]

    def gap_std(self) -> float:
        """Standard deviation of log10 inter-arrival gaps (low = machine-regular)."""
        return math.sqrt(self.gap_m2 / (self.gap_n - 1)) if self.gap_n > 1 else 0.0

    # --- persistence ---------------------------------------------------------------------
    def export(self) -> bytes:
        """A versioned, compact snapshot (JSON array) for changelogs and checkpoints."""
        return orjson.dumps(
            [
                STATE_VERSION,
                self.first_ts,
                self.last_ts,
                self.created_ts,
                self.has_org,
                self.n,
                self.in_tokens,
                self.out_tokens,
                list(self.counts),
                self.ring_hour,
                self.hod_mask,
                self.gap_n,
                self.gap_mean,
                self.gap_m2,
                self.scored_n,
                self.scored_hour,
                self.policy,
                self.minute_mask,
                self.mask_minute,
            ]
        )

    @classmethod
    def restore(cls, data: bytes) -> Self:
        """Inverse of `export`; raises ValueError on an unknown version."""
        values = orjson.loads(data)
        if not isinstance(values, list) or not values or values[0] not in (3, 4, STATE_VERSION):
            raise ValueError(f"unknown account state format: {str(values)[:40]}")
        state = cls(0.0)
        if values[0] == 3:  # no minute mask yet: an empty one at the newest event
            values = [*values, 0, minute_of(values[2])]
        if values[0] < 5:  # no SMALL_BUDGET count yet (the last flag): none counted
            counts = values[8]
            values[8] = [*counts[: N_FLAGS - 1], 0, *counts[N_FLAGS - 1 :]]
        (
            _,
            state.first_ts,
            state.last_ts,
            state.created_ts,
            state.has_org,
            state.n,
            state.in_tokens,
            state.out_tokens,
            counts,
            state.ring_hour,
            state.hod_mask,
            state.gap_n,
            state.gap_mean,
            state.gap_m2,
            state.scored_n,
            state.scored_hour,
            state.policy,
            state.minute_mask,
            state.mask_minute,
        ) = values
        state.counts = array("I", counts)
        return state


class PyAccountState(StateReads):
    """Everything the detector remembers about one account: the pure-Python reference (the
    native `AccountStateCore` has the same fields and `apply`)."""

    __slots__ = (
        "counts",
        "created_ts",
        "first_ts",
        "gap_m2",
        "gap_mean",
        "gap_n",
        "has_org",
        "hod_mask",
        "in_tokens",
        "last_ts",
        "mask_minute",
        "minute_mask",
        "n",
        "out_tokens",
        "policy",
        "ring_hour",
        "scored_hour",
        "scored_n",
    )

    def __init__(self, ts: float) -> None:
        self.first_ts = ts
        self.last_ts = ts
        self.created_ts: float | None = None
        self.has_org = False
        self.n = 0
        self.in_tokens = 0
        self.out_tokens = 0
        # One array for every counter (see the layout constants): flags, hourly ring, templates.
        self.counts = array("I", bytes(4 * SIZE))
        self.ring_hour = int(ts // HOUR)
        self.hod_mask = 0  # hours of the (UTC) day with activity, over the account's life
        self.gap_n = 0
        self.gap_mean = 0.0
        self.gap_m2 = 0.0
        self.scored_n = 0
        self.scored_hour = -1
        # Minutes with calls, up to `mask_minute` (bit k: minute mask_minute - k; see `timing`).
        self.mask_minute = minute_of(ts)
        self.minute_mask = 0
        # Alert-policy memory, owned by `stream_detector.policy` (a small list, exported too).
        self.policy: list[Any] = []

    @property
    def flag_counts(self) -> Sequence[int]:
        return self.counts[:N_FLAGS]

    def apply(self, f: EventFeatures, flags: int) -> None:
        """Fold one on-time event in. `flags` may add detector-level flags to `f.flags`."""
        ts = f.ts
        n = self.n = self.n + 1
        self.in_tokens += f.input_tokens
        self.out_tokens += f.output_tokens
        counts = self.counts
        for index in _bit_indices(flags):
            counts[index] += 1
        if f.created_ts is not None:
            self.created_ts = f.created_ts
        if f.org:
            self.has_org = True
        hour = int(ts // HOUR)
        if hour > self.ring_hour:
            self._advance(hour)
        if self.ring_hour - hour < 24:
            counts[RING + hour % 24] += 1
        self.hod_mask |= 1 << (hour % 24)
        minute = minute_of(ts)
        ahead = minute - self.mask_minute
        if ahead > 0:
            self.minute_mask = (self.minute_mask << ahead) & MINUTES_MASK if ahead < 64 else 0
            self.mask_minute = minute
            ahead = 0
        if ahead > -64:
            self.minute_mask |= 1 << -ahead
        gap = ts - self.last_ts
        if gap >= 0:
            if n > 1:
                # Welford on log10 gaps: machines tick evenly, people come in bursts.
                x = math.log10(gap + 0.01)
                gap_n = self.gap_n = self.gap_n + 1
                delta = x - self.gap_mean
                mean = self.gap_mean = self.gap_mean + delta / gap_n
                self.gap_m2 += delta * (x - mean)
            self.last_ts = ts
        head = f.head_fp
        if head:
            # A template shows as a head or tail fingerprint that recurs within the last few
            # prompts (a question's own never does).
            tail = f.tail_fp
            recent = counts[RECENT:SIZE]
            if head in recent or tail in recent:
                counts[REPEATS] += 1
            at = RECENT + (2 * (counts[_PROMPTS] - 1)) % RECENT_SLOTS
            counts[at] = head
            counts[at + 1] = tail

    def _advance(self, hour: int) -> None:
        """Move the day window's newest slot to `hour`, zeroing the hours skipped."""
        counts = self.counts
        for h in range(max(self.ring_hour + 1, hour - 23), hour + 1):
            counts[RING + h % 24] = 0
        self.ring_hour = hour


def _native_class() -> type[StateReads] | None:
    """The native state class with the shared read side, if the extension is there."""
    native = native_module()
    if native is None or not hasattr(native, "AccountStateCore"):
        return None
    if native.STATE_LAYOUT != (N_FLAGS, RING, REPEATS, RECENT, SIZE):
        raise RuntimeError("stream_detector._native has another state layout: rebuild it")

    class NativeAccountState(native.AccountStateCore, StateReads):  # type: ignore[name-defined]
        __slots__ = ()

    return NativeAccountState


if TYPE_CHECKING:
    AccountState = StateReads
else:
    #: The class the detector uses: native when built, else the reference.
    AccountState = _native_class() or PyAccountState


class AccountStore:
    """Accounts by id, bounded: idle ones expire and the longest-idle go first past the cap.

    Python dicts keep insertion order; an account is moved to the end when it is touched, so
    the front of the dict is always the longest-idle account and expiry is O(expired).
    """

    __slots__ = ("_accounts", "idle_expiry_s", "max_accounts")

    def __init__(self, idle_expiry_s: float, max_accounts: int) -> None:
        self._accounts: dict[str, AccountState] = {}
        self.idle_expiry_s = idle_expiry_s
        self.max_accounts = max_accounts

    def get(self, account_id: str) -> AccountState | None:
        return self._accounts.get(account_id)

    def touch(self, account_id: str, state: AccountState) -> None:
        """Mark `account_id` most recently active (re-inserts it at the back)."""
        accounts = self._accounts
        accounts.pop(account_id, None)
        accounts[account_id] = state

    def put(self, account_id: str, state: AccountState) -> None:
        self._accounts[account_id] = state

    def expire(self, now: float) -> list[str]:
        """Drop accounts idle since before `now - idle_expiry_s`, and any beyond the cap."""
        accounts = self._accounts
        dropped: list[str] = []
        horizon = now - self.idle_expiry_s
        for account_id, state in accounts.items():
            if state.last_ts >= horizon and len(accounts) - len(dropped) <= self.max_accounts:
                break
            dropped.append(account_id)
        for account_id in dropped:
            del accounts[account_id]
        return dropped

    def __len__(self) -> int:
        return len(self._accounts)
