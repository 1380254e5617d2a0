"""Merge per-account sources into one event-time-ordered stream, as gateways deliver it.

A heap holds one pending event per source, so memory follows the number of sources, not of
events. Like real gateways, a small share of events is delivered twice (same `event_id`) or a
few seconds late; the rest is written in event-time order.
"""

from __future__ import annotations

import gzip
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import IO, Any

import orjson

from stream_detector.simulation.benign import Source
from stream_detector.simulation.world import World

#: Share of events delivered twice, and of events delivered late (by up to `MAX_DELAY_S`).
DUPLICATE_SHARE = 0.003
LATE_SHARE = 0.01
MAX_DELAY_S = 20.0
_FLUSH_LINES = 4096


@dataclass(slots=True)
class Written:
    """What the merge wrote, for the summary and the ground truth."""

    events: int = 0
    duplicates: int = 0
    late: int = 0
    bytes: int = 0
    #: account_id -> [first event time, events]
    seen: dict[str, list[float]] = field(default_factory=dict)


def truth_path(path: Path) -> Path:
    """`traffic.jsonl.gz` -> `traffic.truth.jsonl` beside it."""
    name = path.name
    for suffix in (".gz", ".jsonl"):
        name = name.removesuffix(suffix)
    return path.with_name(name + ".truth.jsonl")


def open_output(path: Path) -> IO[bytes]:
    """A binary file, gzip-compressed (reproducibly: no time stamp, no name) for `.gz`."""
    raw = path.open("wb")
    if path.suffix == ".gz":
        return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=5)  # type: ignore[return-value]
    return raw


def merge(
    sources: list[Source],
    out: IO[bytes],
    seed: int,
    progress: Callable[[Written, float], None] | None = None,
) -> Written:
    """Write every source's events to `out` as JSON Lines in delivery order."""
    gateway = Random(f"gateway:{seed}")
    heap: list[tuple[float, int, float, dict[str, Any], Source | None]] = []
    seq = 0
    for source in sources:
        first = next(source, None)
        if first is not None:
            heap.append((first[0], seq, first[0], first[1], source))
            seq += 1
    heapq.heapify(heap)
    done = Written()
    seen = done.seen
    buffer: list[bytes] = []
    dumps = orjson.dumps
    push, pop, rand = heapq.heappush, heapq.heappop, gateway.random
    while heap:
        key, _, ts, event, origin = pop(heap)
        if origin is not None:
            upcoming = next(origin, None)
            if upcoming is not None:
                push(heap, (upcoming[0], seq, upcoming[0], upcoming[1], origin))
                seq += 1
            if rand() < LATE_SHARE:
                push(heap, (key + gateway.uniform(0.5, MAX_DELAY_S), seq, ts, event, None))
                seq += 1
                done.late += 1
                continue
            if rand() < DUPLICATE_SHARE:
                push(heap, (key + gateway.uniform(0.2, MAX_DELAY_S), seq, ts, event, None))
                seq += 1
                done.duplicates += 1  # the copy is written when it leaves the heap
        line = dumps(event, option=orjson.OPT_APPEND_NEWLINE)
        buffer.append(line)
        done.bytes += len(line)
        account = seen.get(event["account_id"])
        if account is None:
            seen[event["account_id"]] = [ts, 1.0]
        else:
            account[0] = min(account[0], ts)
            account[1] += 1
        done.events += 1
        if len(buffer) >= _FLUSH_LINES:
            out.write(b"".join(buffer))
            buffer.clear()
            if progress is not None:
                progress(done, key)
    out.write(b"".join(buffer))
    return done


def write_truth(path: Path, world: World, written: Written) -> dict[str, list[str]]:
    """One line per account that sent traffic, then one per campaign; returns the campaigns."""
    members: dict[str, list[str]] = {}
    starts: dict[str, float] = {}
    population: dict[str, str] = {}
    with path.open("wb") as out:
        for acct in world.accounts:
            seen = written.seen.get(acct.account_id)
            if seen is None:
                continue
            out.write(
                orjson.dumps(
                    {
                        "account_id": acct.account_id,
                        "population": acct.population,
                        "campaign": acct.campaign,
                        "attack": acct.attack,
                        "first_ts": round(seen[0], 3),
                    },
                    option=orjson.OPT_APPEND_NEWLINE,
                )
            )
            if acct.campaign is not None:
                members.setdefault(acct.campaign, []).append(acct.account_id)
                starts[acct.campaign] = min(starts.get(acct.campaign, seen[0]), seen[0])
                population[acct.campaign] = acct.population
        for campaign in sorted(members, key=_natural):
            out.write(
                orjson.dumps(
                    {
                        "campaign": campaign,
                        "population": population[campaign],
                        "start_ts": round(starts[campaign], 3),
                        "accounts": len(members[campaign]),
                    },
                    option=orjson.OPT_APPEND_NEWLINE,
                )
            )
    return members


def _natural(campaign: str) -> tuple[str, int]:
    name, _, number = campaign.rpartition("-")
    return (name, int(number)) if number.isdigit() else (campaign, 0)
