"""Lock-step timing: accounts that one scheduler drives call in the same minutes.

Every account keeps a 64-bit mask of the minutes it called in, over the 64 minutes up to its
newest call (`AccountState.minute_mask`: bit k is minute `mask_minute - k`), and its snapshot
carries the mask to the campaign stage. One actor's accounts on different cards, networks and
clients still fire together when one job drives them; people sharing a template, a network or
a card call when they please.

Two accounts are in lock-step when one's calls fall within a minute of the other's far more
often than chance (the share of minutes the other's calls cover), over the minutes both were
active in (people who start together, a class at its lesson, an office in its morning, then
call when they please, coincide by their burst alone). The comparison is scaled to chance:
busy accounts (a call every minute or two) coincide anyway and say nothing, so pairs that
dense are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from stream_detector.native import native_module

#: Minutes a mask covers (one bit each).
MASK_MINUTES = 64
MASK = (1 << MASK_MINUTES) - 1
#: Minutes two accounts must both have been active in to be compared (their masks' common
#: minutes, from the later first call to the earlier last one).
MIN_OVERLAP = 20
#: Calls each of a pair must have made in the common minutes.
MIN_CALLS = 3
#: Pairs whose calls would coincide at least this often by chance are not compared.
MAX_CHANCE = 0.6
#: Members of a group compared with one another (pairs grow with its square).
SAMPLE = 16
#: Excess over chance from which a pair counts as in step, and partners a member needs in step
#: with it (and at least half of those it was compared with) to count as in step itself.
IN_STEP = 0.7
PARTNERS = 3


class Limits(NamedTuple):
    """The thresholds above, as `compare` (and its native twin) take them."""

    mask_minutes: int
    min_overlap: int
    min_calls: int
    max_chance: float
    in_step: float
    partners: int


LIMITS = Limits(MASK_MINUTES, MIN_OVERLAP, MIN_CALLS, MAX_CHANCE, IN_STEP, PARTNERS)


class Timed(Protocol):
    """What `lockstep` reads of a snapshot (or an account state)."""

    minute_mask: int
    mask_minute: int


def minute_of(ts: float) -> int:
    """The absolute minute of event time `ts`."""
    return int(ts // 60.0)


def lockstep(members: Sequence[tuple[str, Timed]]) -> tuple[float | None, set[str]]:
    """(median excess of the members over chance, the members in step with the others) of
    sampled (id, snapshot) pairs; (None, empty) when too few can be compared."""
    ids: list[str] = []
    timed: list[tuple[int, int]] = []
    for member, snap in members:
        mask = snap.minute_mask
        if mask.bit_count() >= MIN_CALLS:
            ids.append(member)
            timed.append((mask, snap.mask_minute))
            if len(timed) == SAMPLE:
                break
    if len(timed) < 3:
        return None, set()
    lock, in_step = _compare(timed, LIMITS)
    return lock, {ids[i] for i in in_step}


def compare(timed: list[tuple[int, int]], limits: Limits) -> tuple[float | None, list[int]]:
    """(median excess over chance, indices of the members in step) of (mask, mask_minute)
    pairs: the reference of the native `compare` (same operations, same floats)."""
    n = len(timed)
    total = [0.0] * n
    count = [0] * n
    partners = [0] * n

    def add(i: int, calls: int, own: int, other: int, both: int, span: int) -> None:
        # `calls` against the other's, a minute either way (clocks and queues jitter), beyond
        # chance: the share of the `span`'s minutes that the other's calls cover so widened.
        widened = (other | other << 1 | other >> 1) & both
        chance = widened.bit_count() / span
        if chance <= limits.max_chance:
            hits = (calls & widened).bit_count()
            x = (hits / own - chance) / (1.0 - chance)
            total[i] += x
            count[i] += 1
            partners[i] += x >= limits.in_step

    for i, (mask_a, end_a) in enumerate(timed):
        for j in range(i + 1, n):
            mask_b, end_b = timed[j]
            # The minutes both masks cover: the mask's span up to the older newest call.
            ahead = end_b - end_a
            width = limits.mask_minutes - abs(ahead)
            if width < limits.min_overlap:
                continue
            window = (1 << width) - 1
            if ahead >= 0:
                calls_a, calls_b = mask_a & window, (mask_b >> ahead) & window
            else:
                calls_a, calls_b = (mask_a >> -ahead) & window, mask_b & window
            if not calls_a or not calls_b:
                continue
            # Only the minutes both were active in, a minute either side: people active in the
            # same burst (a lesson, an office's morning) coincide far more often than their
            # density over the whole hour says, a scheduler's accounts all hour long.
            low = max((calls_a & -calls_a).bit_length(), (calls_b & -calls_b).bit_length()) - 2
            high = min(calls_a.bit_length(), calls_b.bit_length()) + 1
            low = low if low > 0 else 0
            high = high if high < width else width
            span = high - low
            if span < limits.min_overlap:
                continue
            both = ((1 << high) - 1) ^ ((1 << low) - 1)
            calls_a &= both
            calls_b &= both
            count_a, count_b = calls_a.bit_count(), calls_b.bit_count()
            if count_a < limits.min_calls or count_b < limits.min_calls:
                continue
            add(i, calls_a, count_a, calls_b, both, span)
            add(j, calls_b, count_b, calls_a, both, span)
    means = sorted(total[i] / count[i] for i in range(n) if count[i])
    if len(means) < 3:
        return None, []
    in_step = [
        i for i in range(n) if partners[i] >= limits.partners and partners[i] * 2 >= count[i]
    ]
    return means[len(means) // 2], in_step


def _native_compare() -> Callable[[list[tuple[int, int]], Limits], tuple[float | None, list[int]]]:
    """The compiled `compare` when built (see `stream_detector.native`), else the reference."""
    native = native_module()
    return compare if native is None or not hasattr(native, "compare") else native.compare


_compare = _native_compare()
