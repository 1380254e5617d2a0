"""Lock-step timing: the minute mask of an account's state, and comparing masks to chance."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_detector import state as sm
from stream_detector.features import parse_features
from stream_detector.native import native_module
from stream_detector.timing import LIMITS, MASK, MASK_MINUTES, compare, lockstep, minute_of

from .builders import T0, event, lines

STATES = [sm.PyAccountState, sm.AccountState]


def fold(cls: type[sm.StateReads], times: list[float]) -> sm.StateReads:
    state = cls(times[0])
    for i, ts in enumerate(times):
        (f,) = [parse_features(line) for line in lines([event(i, "a", ts)]).splitlines()]
        state.apply(f, f.flags)
    return state


@pytest.mark.parametrize("cls", STATES, ids=["python", "native"])
def test_the_mask_holds_the_minutes_of_the_last_hour(cls: type[sm.StateReads]) -> None:
    start = T0 + 30.0
    state = fold(cls, [start, start + 130.0, start + 10 * 60.0, start + 10 * 60.0 + 5.0])
    assert state.mask_minute == minute_of(start) + 10
    assert state.minute_mask == 1 | 1 << 8 | 1 << 10
    # An event up to 63 minutes older than the newest lands in its minute; older ones do not.
    state = fold(cls, [start, start + 70 * 60.0, start + 20 * 60.0, start - 3600.0])
    assert state.minute_mask == 1 | 1 << 50
    # A pause of an hour or more leaves only the new call.
    state = fold(cls, [start, start + 60.0, start + 65 * 60.0])
    assert state.minute_mask == 1


@dataclass
class Timed:
    minute_mask: int
    mask_minute: int


def masks(calls: list[list[int]], end: int = 10_000) -> list[tuple[str, Timed]]:
    """Members whose calls fell in the given minutes before `end`."""
    out = []
    for k, minutes in enumerate(calls):
        mask = 0
        for minute in minutes:
            mask |= 1 << (end - minute)
        out.append((f"m{k}", Timed(mask & MASK, end)))
    return out


def test_accounts_firing_in_the_same_minutes_are_in_step() -> None:
    every_17 = [9_999 - 17 * i for i in range(4)]
    # A minute of jitter still counts; the stranger's calls fall elsewhere.
    members = [[m + k % 2 for m in every_17] for k in range(6)]
    lock, in_step = lockstep(masks([*members, [9_995, 9_978, 9_960, 9_943]]))
    assert lock is not None and lock > 0.7
    assert in_step == {f"m{k}" for k in range(6)}


def test_accounts_calling_at_their_own_times_are_not() -> None:
    rng = random.Random(7)
    calls = [sorted(rng.sample(range(9_940, 10_001), 4)) for _ in range(8)]
    lock, in_step = lockstep(masks(calls))
    assert lock is not None and lock < 0.3
    assert in_step == set()


def test_people_active_in_the_same_burst_are_not_in_step() -> None:
    """A class in its 22-minute lesson, each student calling four times when they please:
    their calls coincide by the burst alone (against the whole hour's density, they would
    look in step), so chance is the burst's."""
    for seed in range(5):
        rng = random.Random(seed)
        lock, in_step = lockstep(masks([rng.sample(range(9_979, 10_001), 4) for _ in range(10)]))
        assert lock is None or lock < 0.3
        assert in_step == set()


def test_taking_turns_is_not_lock_step() -> None:
    """Round-robin accounts (a hydra's load balancing) call one after another, not together."""
    calls = [[10_000 - 12 * i - 2 * k for i in range(5)] for k in range(6)]
    lock, in_step = lockstep(masks(calls))
    assert lock is not None and lock < 0.3 and in_step == set()


def test_busy_accounts_say_nothing() -> None:
    """Calls every minute coincide with anyone's by chance: too dense to compare."""
    assert lockstep(masks([list(range(9_950, 10_001)) for _ in range(5)])) == (None, set())


def test_snapshots_an_hour_apart_are_not_compared() -> None:
    calls = [[10_000 - 10 * i for i in range(5)] for _ in range(3)]
    early = masks(calls)
    late = [(f"{m}-later", Timed(t.minute_mask, t.mask_minute + 50)) for m, t in early]
    assert lockstep([*early, *late])[0] is not None
    assert lockstep([early[0], *late[:2]]) == (None, set())


minutes = st.lists(st.integers(min_value=0, max_value=MASK_MINUTES - 1), max_size=20)


@given(st.lists(minutes, min_size=1, max_size=12), st.integers(-5_000, 5_000))
def test_lock_step_is_bounded_and_the_same_at_any_time(calls: list[list[int]], shift: int) -> None:
    lock, in_step = lockstep(masks([[10_000 - m for m in c] for c in calls]))
    assert lock is None or -1.5 <= lock <= 1.0 + 1e-9
    assert in_step <= {f"m{k}" for k in range(len(calls))}
    moved = masks([[10_000 + shift - m for m in c] for c in calls], end=10_000 + shift)
    assert lockstep(moved) == (lock, in_step)


sparse_masks = st.builds(
    lambda bits: sum(1 << b for b in bits),
    st.sets(st.integers(0, MASK_MINUTES - 1), max_size=14),
)


@given(
    st.lists(
        st.tuples(sparse_masks, st.integers(10_000 - 70, 10_000 + 70)), min_size=3, max_size=16
    )
)
def test_the_native_comparison_gives_the_same_floats(timed: list[tuple[int, int]]) -> None:
    native = native_module()
    assert native is not None, "the extension is not built"
    assert native.compare(timed, LIMITS) == compare(timed, LIMITS)
