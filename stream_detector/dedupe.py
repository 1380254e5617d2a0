"""Bounded memory of recently seen event ids, so a redelivered or replayed event counts once.

Two generations of 64-bit id digests (stable across processes, see `features.derive`): lookups
check both, inserts go to the current one, and the current one becomes the previous one when it
is full or older than the horizon (in event time). Memory is therefore at most two generations,
and any duplicate arriving within one generation's span of its original is caught.
"""

from __future__ import annotations


class Deduplicator:
    """Remembers up to 2 × `capacity` event ids over at least `horizon_s` of event time."""

    __slots__ = ("_current", "_previous", "_started", "capacity", "horizon_s")

    def __init__(self, capacity: int, horizon_s: float) -> None:
        self.capacity = capacity
        self.horizon_s = horizon_s
        self._current: set[int] = set()
        self._previous: set[int] = set()
        self._started = float("-inf")

    def seen(self, digest: int, ts: float) -> bool:
        """True if the event id with this 64-bit digest was seen; otherwise remember it."""
        if digest in self._current or digest in self._previous:
            return True
        current = self._current
        if len(current) >= self.capacity or ts - self._started > self.horizon_s:
            self._previous = current
            self._current = current = set()
            self._started = ts
        current.add(digest)
        return False
