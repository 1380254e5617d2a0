"""Memory of detector state: RSS for many distinct accounts, and for linked campaigns.

    python -m stream_detector.bench.memory [--accounts 1000000] [--linked 100000]

Accounts are fed through the real `Pipeline` (derive, state, scoring; linking in the campaign
stage) with two events each and prompt text; every account has its own card and one of many
network prefixes (so the link-key memory is exercised too). Then `--linked` accounts in
campaigns of 40 that share cards, prefixes and templates. RSS is read from /proc after each
phase.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

import orjson

from stream_detector.bench.machine import describe, rss_mib
from stream_detector.events import event_from_object
from stream_detector.pipeline import Pipeline

T0 = 1_767_225_600.0
WORDS = [
    "note",
    "landlord",
    "heating",
    "recipe",
    "trip",
    "budget",
    "poem",
    "email",
    "meeting",
    "garden",
    "bike",
    "tax",
]
HARVEST = "Solve step by step: what is {i} times 17, minus 3? Explain your reasoning."


def chat_prompt(i: int) -> str:
    """A different everyday request per account (people do not share templates)."""
    picked = [WORDS[(i >> (3 * k)) % len(WORDS)] for k in range(6)]
    return f"{' '.join(picked)} {i}: could you help me with this?"


def feed(detector: Pipeline, start: int, count: int, linked: bool) -> None:
    for i in range(start, start + count):
        group = i // 40
        for k in range(2):
            doc = {
                "event_id": f"e{i}-{k}",
                "ts": T0 + i * 0.01 + k,
                "account_id": f"acct-{i:08d}",
                "account_created_ts": T0 - (86400 if linked else 400 * 86400),
                "payment_fingerprint": f"card-{group if linked else i}",
                "ip": f"10.{(group if linked else i) // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                "user_agent": "python-httpx/0.27.0",
                "model": "model-a",
                "input_tokens": 120,
                "output_tokens": 1800 if linked else 400,
                "max_tokens": 2048,
                "thinking": linked,
                "prompt": HARVEST.format(i=i) if linked else chat_prompt(i),
            }
            detector.process(event_from_object(doc))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--linked", type=int, default=100_000)
    args = parser.parse_args()
    gc.collect()
    base, _ = rss_mib()
    detector = Pipeline()
    started = time.perf_counter()
    feed(detector, 0, args.accounts, linked=False)
    gc.collect()
    after_accounts, _ = rss_mib()
    print(
        f"{args.accounts:,} accounts fed in {time.perf_counter() - started:.0f} s", file=sys.stderr
    )
    feed(detector, args.accounts, args.linked, linked=True)
    gc.collect()
    after_linked, peak = rss_mib()
    print(
        orjson.dumps(
            {
                "accounts": detector.detector.accounts_tracked,
                "rss_start_mib": round(base),
                "rss_after_accounts_mib": round(after_accounts),
                "bytes_per_account": round((after_accounts - base) * 2**20 / args.accounts),
                "linked_accounts": args.linked,
                "campaigns": len(detector.stage.linker.campaigns),
                "key_groups": detector.stage.linker.groups_tracked,
                "rss_after_linked_mib": round(after_linked),
                "bytes_per_linked_account": round(
                    (after_linked - after_accounts) * 2**20 / max(args.linked, 1)
                ),
                "rss_peak_mib": round(peak),
                "machine": describe(),
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
    )


if __name__ == "__main__":
    main()
