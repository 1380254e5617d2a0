"""`stream-detector simulate`: determinism, order, validity, ground truth, gzip."""

from __future__ import annotations

import argparse
import gzip
from collections import Counter
from pathlib import Path
from random import Random

import orjson
import pytest

from stream_detector import simulate
from stream_detector.events import parse_event
from stream_detector.simulation.scenarios import POPULATIONS, SCENARIOS, build, scaled
from stream_detector.simulation.traffic import Window
from stream_detector.simulation.world import NEW_MODEL
from stream_detector.simulation.writer import MAX_DELAY_S, truth_path

SMALL = ["--scale", "0.05", "--hours", "12"]


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    simulate.register(parser.add_subparsers())
    args = parser.parse_args(["simulate", *argv])
    code: int = args.func(args)
    return code


def read_lines(path: Path) -> list[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return fh.read().splitlines()


def read_truth(path: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    accounts, campaigns = {}, {}
    for line in path.read_bytes().splitlines():
        row = orjson.loads(line)
        if "account_id" in row:
            accounts[row["account_id"]] = row
        else:
            campaigns[row["campaign"]] = row
    return accounts, campaigns


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "traffic.jsonl"
    assert run(*SMALL, "--seed", "7", "-o", str(path)) == 0
    return path


def test_same_seed_gives_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.jsonl.gz" for name in ("a", "b", "c")]
    for path, seed in zip(paths, ("3", "3", "4"), strict=True):
        assert run(*SMALL, "--hours", "4", "--seed", seed, "-o", str(path)) == 0
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b
    assert a != c
    assert truth_path(paths[0]).read_bytes() == truth_path(paths[1]).read_bytes()


def test_every_event_is_valid_and_only_deliberate_duplicates_repeat(traffic: Path) -> None:
    lines = read_lines(traffic)
    assert len(lines) > 5000
    by_id: dict[str, bytes] = {}
    repeats = 0
    for line in lines:
        event = parse_event(line)
        if event.event_id in by_id:
            assert by_id[event.event_id] == line  # a redelivery is byte-identical
            repeats += 1
        by_id[event.event_id] = line
    assert 0 < repeats < 0.01 * len(lines)


def test_events_are_in_event_time_order_within_the_gateway_delay(traffic: Path) -> None:
    latest = 0.0
    late = 0
    for line in read_lines(traffic):
        ts = parse_event(line).ts
        assert ts >= latest - MAX_DELAY_S - 0.01
        late += ts < latest
        latest = max(latest, ts)
    assert late > 0  # some gateway disorder is there on purpose


def test_truth_matches_the_events(traffic: Path) -> None:
    accounts, campaigns = read_truth(truth_path(traffic))
    first: dict[str, float] = {}
    for line in read_lines(traffic):
        event = parse_event(line)
        first[event.account_id] = min(first.get(event.account_id, event.ts), event.ts)
    assert set(first) == set(accounts)
    for account, row in accounts.items():
        assert row["first_ts"] == pytest.approx(first[account], abs=1e-3)
        assert row["attack"] == (row["campaign"] is not None)
        assert POPULATIONS[row["population"]].attack == row["attack"]
    members = Counter(row["campaign"] for row in accounts.values() if row["campaign"])
    assert {c: row["accounts"] for c, row in campaigns.items()} == dict(members)
    for campaign, row in campaigns.items():
        starts = [r["first_ts"] for r in accounts.values() if r["campaign"] == campaign]
        assert row["start_ts"] == min(starts)
    populations = {row["population"] for row in accounts.values()}
    assert populations == set(POPULATIONS)
    attack = sum(row["attack"] for row in accounts.values())
    assert len(accounts) - attack > attack


def test_no_one_calls_the_new_model_before_its_release(traffic: Path) -> None:
    events = [parse_event(line) for line in read_lines(traffic)]
    start = min(e.ts for e in events)
    release = start + 0.55 * 12 * 3600
    users = [e.ts for e in events if e.model == NEW_MODEL]
    assert users
    assert min(users) >= release


def test_gzip_output_and_truth_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl.gz"
    assert run(*SMALL, "--hours", "3", "--no-prompts", "-o", str(path)) == 0
    lines = read_lines(path)
    assert lines
    assert all(parse_event(line).prompt is None for line in lines)
    assert (tmp_path / "out.truth.jsonl").exists()


def test_truth_path_naming() -> None:
    assert truth_path(Path("d/x.jsonl.gz")) == Path("d/x.truth.jsonl")
    assert truth_path(Path("x.jsonl")) == Path("x.truth.jsonl")
    assert truth_path(Path("x.gz")) == Path("x.truth.jsonl")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_scenario_builds_its_populations(name: str) -> None:
    scenario = SCENARIOS[name]
    window = Window(1.8e9, 1.8e9 + 48 * 3600, 1.8e9 + 26 * 3600)
    world, sources = build(scenario, seed=1, scale=0.05, window=window)
    counts = Counter(a.population for a in world.accounts)
    assert counts == {p: scaled(p, n, 0.05) for p, n in scenario.counts.items()}
    assert sources
    if name == "benign":
        assert not any(a.attack for a in world.accounts)
    elif name != "default":
        assert counts[name] > 0


def test_hydra_members_share_cards_and_stay_low_per_account(traffic: Path) -> None:
    accounts, _ = read_truth(truth_path(traffic))
    hydra = {a for a, row in accounts.items() if row["population"] == "hydra"}
    cards: Counter[str] = Counter()
    per_account: Counter[str] = Counter()
    for line in read_lines(traffic):
        event = parse_event(line)
        if event.account_id in hydra:
            per_account[event.account_id] += 1
            if event.payment_fingerprint:
                cards[event.payment_fingerprint] += 1
    assert len(cards) < len(hydra)
    assert max(per_account.values()) < 30 * 12  # under a per-account rate of 30/h


def test_a_bad_start_time_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for start in ("yesterday", "2026-11-02T00:00:00"):
        assert run("--start", start, "-o", str(tmp_path / "x.jsonl")) == 2
        assert "RFC 3339" in capsys.readouterr().err


def test_template_choice_varies_with_the_seed() -> None:
    from stream_detector.simulation.campaigns import Harvest
    from stream_detector.simulation.text import COT_ELICIT

    picks = {tuple(Harvest(Random(seed), COT_ELICIT, (3, 5)).templates) for seed in range(20)}
    assert len(picks) > 15
