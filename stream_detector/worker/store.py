"""The Faust state table's local store, seen as plain bytes.

The engine writes the changelog itself (batched, see `engine`) and then applies the same
records to the local store exactly as Faust's own changelog recovery does
(`Store.apply_changelog_batch`, which also records the persisted offset in RocksDB). A
restarted worker therefore re-reads only the changelog written after its last flush, and a
standby replica on another worker stays warm by the usual Faust mechanism.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from faust.types import TP


class _Message:
    """The fields of a changelog message that `apply_changelog_batch` reads."""

    __slots__ = ("key", "offset", "partition", "tp", "value")

    def __init__(self, tp: TP, offset: int, key: bytes, value: bytes | None) -> None:
        self.tp = tp
        self.partition = tp.partition
        self.offset = offset
        self.key = key
        self.value = value


class _Change:
    """A changelog event as the stores see it during recovery."""

    __slots__ = ("key", "message", "value")

    def __init__(self, message: _Message) -> None:
        self.message = message
        self.key = message.key
        self.value = message.value


class StateStore:
    """Read and write-through access to a Faust table's store, keys and values as bytes."""

    def __init__(self, table: Any) -> None:
        self.table = table

    @property
    def topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Records of the partitions currently active on this worker."""
        for key, value in self.table.data.items():
            if value is not None:
                yield key, value

    def get(self, key: bytes) -> bytes | None:
        value = self.table.data.get(key)
        return None if value is None else bytes(value)

    def apply(
        self, partition: int, records: Iterable[tuple[bytes, bytes | None]], last_offset: int
    ) -> None:
        """Apply records just acknowledged by the changelog, up to `last_offset`."""
        tp = TP(self.topic, partition)
        self.table.apply_changelog_batch(
            _Change(_Message(tp, last_offset, key, value)) for key, value in records
        )
