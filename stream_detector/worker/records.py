"""The state table's record format (keys and values of the changelog), versioned.

Keys carry their partition, so one pass over a local store finds each partition's records
whatever the store (RocksDB keeps one database per partition, the memory store one dict):

- ``<p>|a|<account_id>`` → an account snapshot, prefixed with the source offset up to which
  it includes events (so a snapshot written by a flush that never reached its checkpoint is
  not fed those events a second time after a crash);
- ``<p>|c`` → the partition's checkpoint: the next source offset, the label positions, and
  the detector's model checkpoint. It is written last in each flush: it is the commit point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

#: Version byte of every value written here.
FORMAT_VERSION = 1
_OFFSET_BYTES = 8
_HEADER_LEN = 4


class RecordFormatError(ValueError):
    """A state record written by an incompatible version (or corrupted)."""


def account_key(partition: int, account_id: str) -> bytes:
    return b"%d|a|%s" % (partition, account_id.encode())


def checkpoint_key(partition: int) -> bytes:
    return b"%d|c" % partition


def split_key(key: bytes) -> tuple[int, str | None]:
    """(partition, account_id) of an account key, (partition, None) of a checkpoint key."""
    head, _, rest = key.partition(b"|")
    if not head.isdigit():
        raise RecordFormatError(f"not a state key: {key[:40]!r}")
    if rest == b"c":
        return int(head), None
    if rest[:2] != b"a|":
        raise RecordFormatError(f"not a state key: {key[:40]!r}")
    return int(head), rest[2:].decode()


def encode_account(offset: int, snapshot: bytes) -> bytes:
    return bytes((FORMAT_VERSION,)) + offset.to_bytes(_OFFSET_BYTES, "big") + snapshot


def decode_account(value: bytes) -> tuple[int, bytes]:
    """(source offset the snapshot includes events up to, snapshot)."""
    _check_version(value)
    return int.from_bytes(value[1 : 1 + _OFFSET_BYTES], "big"), value[1 + _OFFSET_BYTES :]


@dataclass
class Checkpoint:
    """What a partition's state is consistent with."""

    #: Next source offset to process (everything before it is in the state).
    offset: int
    #: Next offset to apply of each `extraction-labels` partition.
    labels: dict[int, int] = field(default_factory=dict)
    #: `Detector.export_model()` output.
    model: bytes = b""

    def encode(self) -> bytes:
        header = orjson.dumps(
            {"offset": self.offset, "labels": self.labels}, option=orjson.OPT_NON_STR_KEYS
        )
        return (
            bytes((FORMAT_VERSION,))
            + len(header).to_bytes(_HEADER_LEN, "big")
            + header
            + self.model
        )

    @classmethod
    def decode(cls, value: bytes) -> Checkpoint:
        _check_version(value)
        size = int.from_bytes(value[1 : 1 + _HEADER_LEN], "big")
        start = 1 + _HEADER_LEN
        try:
            header = orjson.loads(value[start : start + size])
            return cls(
                offset=int(header["offset"]),
                labels={int(k): int(v) for k, v in header["labels"].items()},
                model=value[start + size :],
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RecordFormatError(f"corrupt checkpoint: {exc}") from None


def _check_version(value: bytes) -> None:
    if not value or value[0] != FORMAT_VERSION:
        raise RecordFormatError(
            f"state record version {value[:1]!r}, this worker reads {FORMAT_VERSION}: "
            "start with a new STREAM_DETECTOR_APP_ID or run the matching version"
        )
