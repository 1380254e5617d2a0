"""Scenarios: which populations a simulation holds and how many accounts each has at scale 1."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from random import Random

from stream_detector.simulation import benign, campaigns
from stream_detector.simulation.benign import Source
from stream_detector.simulation.traffic import Window
from stream_detector.simulation.world import World

Builder = Callable[[World, Window, int, Random], list[Source]]


@dataclass(frozen=True, slots=True)
class Population:
    """A kind of account: its builder, whether it attacks, and the least count that keeps its
    shape when scaled down (a hydra of two accounts is no hydra)."""

    name: str
    build: Builder
    attack: bool
    minimum: int
    summary: str


POPULATIONS: dict[str, Population] = {
    p.name: p
    for p in (
        Population("chat", benign.chat, False, 20, "ordinary chat users"),
        Population("eval_harness", benign.eval_harness, False, 1, "benchmark suites at T=0"),
        Population("batch_jobs", benign.batch_jobs, False, 1, "batch classification jobs"),
        Population("enterprise", benign.enterprise, False, 6, "org staff sharing IP and card"),
        Population("agentic_users", benign.agentic_users, False, 5, "developers with agents"),
        Population("cgnat", benign.cgnat, False, 10, "mobile users behind one CGNAT pool"),
        Population("new_users", benign.new_users, False, 5, "accounts created in the window"),
        Population("classroom", benign.classroom, False, 8, "a class on one assignment"),
        Population("sdk_crowd", benign.sdk_crowd, False, 10, "users of one SDK release"),
        Population("app_vendor", benign.app_vendor, False, 10, "customers of one app"),
        Population(
            "content_platform", benign.content_platform, False, 1, "long-form writing SaaS, 24/7"
        ),
        Population("harvest", campaigns.harvest, True, 1, "per-account reasoning harvesters"),
        Population("hydra", campaigns.hydra, True, 8, "load-balanced clusters, shared cards"),
        Population("multipath", campaigns.multipath, True, 6, "accounts over many access paths"),
        Population("pivot", campaigns.pivot, True, 1, "agentic harvest pivoting to a new model"),
        Population("reseller", campaigns.reseller, True, 6, "low-and-slow reseller networks"),
        Population("swarm", campaigns.swarm, True, 40, "throwaway-account spike via routers"),
    )
}

BENIGN = {
    "chat": 1100, "eval_harness": 6, "batch_jobs": 3, "enterprise": 120, "agentic_users": 160,
    "cgnat": 150, "new_users": 120, "classroom": 35, "sdk_crowd": 450, "app_vendor": 260,
    "content_platform": 3,
}  # fmt: skip
CAMPAIGNS = {"harvest": 5, "hydra": 80, "multipath": 24, "pivot": 6, "reseller": 36, "swarm": 400}
#: The benign background of the single-campaign scenarios: every look-alike, fewer of each.
BACKGROUND = {name: max(POPULATIONS[name].minimum, round(n * 0.3)) for name, n in BENIGN.items()}


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    counts: dict[str, int]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "default",
            "every benign population and every campaign; ~3,000 accounts, benign far ahead",
            {**BENIGN, **CAMPAIGNS},
        ),
        Scenario("benign", "only the benign populations (false-positive studies)", BENIGN),
        Scenario(
            "harvest",
            "12 per-account harvesters over a lighter benign background",
            {**BACKGROUND, "harvest": 12},
        ),
        Scenario(
            "hydra",
            "4 hydra clusters of 40 accounts over the background",
            {**BACKGROUND, "hydra": 160},
        ),
        Scenario(
            "multipath",
            "60 accounts on varied access paths over the background",
            {**BACKGROUND, "multipath": 60},
        ),
        Scenario(
            "pivot",
            "2 agentic campaigns pivoting to the new model over the background",
            {**BACKGROUND, "pivot": 12},
        ),
        Scenario(
            "reseller",
            "~100 low-and-slow reseller accounts over the background",
            {**BACKGROUND, "reseller": 100},
        ),
        Scenario(
            "swarm",
            "4,000 throwaway accounts, ~16,000 calls in about an hour, over the background",
            {**BACKGROUND, "swarm": 4000},
        ),
    )
}


def scaled(population: str, count: int, scale: float) -> int:
    """Accounts of a population at `scale`, never below its minimum (unless absent)."""
    if count <= 0:
        return 0
    return max(POPULATIONS[population].minimum, round(count * scale))


def build(
    scenario: Scenario, seed: int, scale: float, window: Window
) -> tuple[World, list[Source]]:
    """Create the accounts of a scenario and their event sources, deterministically."""
    world = World(seed)
    sources: list[Source] = []
    for name, count in scenario.counts.items():
        rng = Random(f"{seed}:{name}")
        sources += POPULATIONS[name].build(world, window, scaled(name, count, scale), rng)
    return world, sources


def describe() -> str:
    """Scenario and population list for `--help`."""
    lines = ["scenarios:"]
    lines += [f"  {s.name:<10} {s.description}" for s in SCENARIOS.values()]
    lines.append("populations (benign / campaign):")
    for p in POPULATIONS.values():
        kind = "campaign" if p.attack else "benign"
        lines.append(f"  {p.name:<14} {kind:<8} {p.summary}")
    return "\n".join(lines)
