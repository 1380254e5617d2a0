"""Distillation campaigns, shaped after the publicly documented ones.

Every campaign draws its phrasing from the text pools with its own RNG (several languages and
wordings per seed) and its behaviour from ranges, so no single string, number or key gives it
away: what stays is the behaviour (harvesting reasoning at volume, long outputs near the
ceiling, round-the-clock or lock-step timing, fresh accounts, keys shared across accounts).
"""

from __future__ import annotations

from collections.abc import Iterator
from random import Random

from stream_detector.simulation import text
from stream_detector.simulation.benign import DAY, HOUR, Event, Source, _sub
from stream_detector.simulation.text import between
from stream_detector.simulation.traffic import Window, call, lognormal, status
from stream_detector.simulation.world import (
    MODELS,
    NEW_MODEL,
    Account,
    Place,
    World,
    hex_digest,
    sdk_agent,
)


class Harvest:
    """What a campaign asks and how: its templates, capabilities and request shape."""

    def __init__(self, r: Random, pool: tuple[str, ...], k: tuple[int, int]) -> None:
        self.templates = r.sample(pool, min(len(pool), between(r, *k)))
        names = tuple(text.CAPABILITIES)
        self.capabilities = r.sample(names[:4], between(r, 1, 3))
        if r.random() < 0.3:
            self.capabilities.append("sensitive")
        self.max_tokens = r.choice((8192, 16000, 32000))
        self.temperature = r.choice((None, 0.7, 1.0))
        self.thinking_p = r.uniform(0.5, 1.0)
        self.model = r.choices(MODELS, weights=(3, 0, 7))[0]

    def prompt(self, r: Random) -> str:
        question = text.CAPABILITIES[r.choice(self.capabilities)](r)
        return text.fill(r, r.choice(self.templates), question)

    def event(self, acct: Account, r: Random, ts: float, prompt: str, code: int) -> Event:
        """One harvesting call: long output near the requested ceiling."""
        ceiling = self.max_tokens
        out = ceiling if r.random() < 0.4 else int(ceiling * r.uniform(0.7, 1.0))
        return call(
            acct,
            r,
            ts,
            model=self.model,
            prompt=prompt,
            output_tokens=out,
            max_tokens=ceiling,
            temperature=self.temperature,
            thinking=r.random() < self.thinking_p,
            code=code,
        )


def _retrying(
    r: Random, acct: Account, harvest: Harvest, times: Iterator[float], p429: float
) -> Source:
    """Send a harvesting prompt at each time; a 429 is retried after a short back-off."""
    last = 0.0
    for planned in times:
        t = max(planned, last)  # a retry may have pushed the schedule back
        prompt = harvest.prompt(r)
        code = status(r, p429)
        yield harvest.event(acct, r, t, prompt, code)
        while code == 429 and r.random() < 0.8:
            t += r.uniform(1, 15)
            code = status(r, p429)
            yield harvest.event(acct, r, t, prompt, code)
        last = t


def _steady(r: Random, start: float, end: float, per_hour: float) -> Iterator[float]:
    """Round-the-clock Poisson arrivals, no diurnal dip."""
    t = start
    while True:
        t += r.expovariate(per_hour / HOUR)
        if t >= end:
            return
        yield t


def harvest(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """Per-account reasoning harvesters: fresh accounts, 24/7, chain-of-thought at volume."""
    sources = []
    for i in range(n):
        r = _sub(rng)
        begin = window.at(r.uniform(0, 0.3))
        acct = world.account(
            r,
            "harvest",
            begin - r.uniform(1, 48) * HOUR,
            campaign=f"harvest-{i + 1}",
            places=world.datacenter(r, between(r, 1, 3)),
            user_agent=sdk_agent(r),
            payment=hex_digest(r),
        )
        plan = Harvest(r, text.COT_ELICIT, (3, 5))
        times = _steady(r, begin, window.end, r.uniform(120, 300))
        sources.append(_retrying(r, acct, plan, times, r.uniform(0.03, 0.12)))
    return sources


def _groups(n: int, size: int, minimum: int) -> list[int]:
    """Split `n` accounts into groups of about `size` (each at least `minimum`)."""
    count = max(1, round(n / size))
    base = max(minimum, n // count)
    return [base + (1 if i < n - base * count else 0) for i in range(count)]


def hydra(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """Hydra clusters: fresh accounts sharing cards, cloud prefixes and one client, fed in
    rotation by a load balancer so each stays under per-account thresholds."""
    sources = []
    for c, size in enumerate(_groups(n, 40, 8)):
        r = _sub(rng)
        begin = window.at(r.uniform(0.02, 0.25))
        created = begin - r.uniform(6, 72) * HOUR
        cards = [hex_digest(r) for _ in range(max(2, size // 8))]
        infra = [p for _ in range(between(r, 2, 3)) for p in world.datacenter(r, 4)]
        clients = [sdk_agent(r) for _ in range(between(r, 1, 2))]
        members = [
            world.account(
                r,
                "hydra",
                created + r.uniform(0, 2 * HOUR),
                campaign=f"hydra-{c + 1}",
                payment=cards[i % len(cards)],
                places=infra,
                user_agent=r.choice(clients),
            )
            for i in range(size)
        ]
        plan = Harvest(r, text.COT_ELICIT, (2, 4))
        per_account = r.uniform(10, 18)
        sources.append(_balanced(r, window, begin, members, plan, per_account))
    return sources


def _balanced(
    r: Random,
    window: Window,
    begin: float,
    members: list[Account],
    plan: Harvest,
    per_account: float,
) -> Source:
    """One dispatcher: accounts join over 20 minutes and take turns in shuffled rounds."""
    joins = sorted((begin + r.uniform(0, 1200), i) for i in range(len(members)))
    gap = HOUR / (per_account * len(members))
    t = begin
    joined: list[Account] = []
    order: list[Account] = []
    while t < window.end:
        while joins and joins[0][0] <= t:
            joined.append(members[joins.pop(0)[1]])
        if not order:
            order = list(joined)
            r.shuffle(order)
        if order:
            acct = order.pop()
            yield plan.event(acct, r, t, plan.prompt(r), status(r, 0.002))
        t += gap * r.uniform(0.8, 1.2) * (len(members) / max(1, len(joined)))


def multipath(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """Varied accounts over several access paths (cloud SDK, routers, residential proxies,
    relays): different IPs and clients, but shared templates, cards and system prompt."""
    sources: list[Source] = []
    for c, size in enumerate(_groups(n, 24, 6)):
        r = _sub(rng)
        begin = window.at(r.uniform(0.02, 0.3))
        cards = [hex_digest(r) for _ in range(3)]
        system_hash = hex_digest(r, 16)
        plan = Harvest(r, text.COT_ELICIT, (3, 4))
        for _ in range(size):
            a = _sub(r)
            path = a.choice(("cloud", "router", "proxy", "relay"))
            places: list[Place]
            if path == "cloud":
                ua, places = sdk_agent(a), world.datacenter(a, 2)
            elif path == "router":
                ua, places = world.router(a)
            elif path == "proxy":
                ua = a.choice(("axios/1.7.7", "node-fetch/2.7.0", "undici/6.19.8"))
                places = [p for _ in range(3) for p in world.home(a)[0]]
            else:
                ua, places = "one-api/v0.6.11", world.datacenter(a, 1)
            acct = world.account(
                a,
                "multipath",
                begin - a.uniform(0.5, 10) * DAY,
                campaign=f"multipath-{c + 1}",
                payment=a.choice(cards) if a.random() < 0.8 else hex_digest(a),
                places=places,
                user_agent=ua,
                system_hash=system_hash if path in ("cloud", "proxy") else None,
            )
            times = _steady(a, begin + a.uniform(0, 1800), window.end, a.uniform(20, 45))
            sources.append(_retrying(a, acct, plan, times, 0.02))
    return sources


def pivot(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """High-volume agentic coding harvest that moves to the new model within hours of release."""
    sources: list[Source] = []
    for c, size in enumerate(_groups(n, 6, 1)):
        r = _sub(rng)
        begin = window.start + r.uniform(0, HOUR)
        cards = [hex_digest(r) for _ in range(2)]
        switch = window.release_ts + r.uniform(0.5, 3) * HOUR
        ua = r.choice(("claude-cli/2.0.{m} (external, sdk-py)", "agent-runner/0.3.{m}"))
        for _ in range(size):
            a = _sub(r)
            acct = world.account(
                a,
                "pivot",
                begin - a.uniform(1, 4) * DAY,
                campaign=f"pivot-{c + 1}",
                payment=a.choice(cards),
                places=world.datacenter(a, 2),
                user_agent=ua.format(m=between(a, 0, 20)),
            )
            sources.append(_agent_farm(a, acct, window, begin, switch))
    return sources


def _agent_farm(r: Random, acct: Account, window: Window, begin: float, switch: float) -> Source:
    """Parallel synthetic agent loops, round the clock; faster and on the new model after
    `switch`."""
    tools = between(r, 25, 60)
    old_model = r.choice(MODELS[::2])
    loops = [[0, 0] for _ in range(between(r, 2, 4))]  # [step, context tokens]
    per_hour = r.uniform(80, 140)
    t = begin
    while True:
        t += r.expovariate((per_hour * (1.5 if t >= switch else 1.0)) / HOUR)
        if t >= window.end:
            return
        loop = r.choice(loops)
        if loop[0] == 0 or loop[0] > between(r, 10, 40):
            loop[0], loop[1] = 0, between(r, 4000, 9000)
            prompt = text.fill(r, r.choice(text.AGENT_CAMPAIGN))
        else:
            prompt = text.tool_output(r)
        code = status(r, 0.05)
        model = NEW_MODEL if t >= switch and r.random() < 0.95 else old_model
        yield call(
            acct,
            r,
            t,
            model=model,
            prompt=prompt,
            context_tokens=loop[1],
            output_tokens=int(lognormal(r, 1800, 0.6)),
            max_tokens=32000,
            thinking=True,
            tools=tools,
            tool_calls=between(r, 1, 6),
            turns=1 + 2 * loop[0],
            code=code,
        )
        loop[0] += 1
        loop[1] += between(r, 1500, 6000)


def reseller(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """Low-and-slow reseller networks: many aged-a-little accounts at a few calls an hour,
    round the clock, through residential proxies, half of it their customers' real chat."""
    sources: list[Source] = []
    for c, size in enumerate(_groups(n, 36, 6)):
        r = _sub(rng)
        begin = window.at(r.uniform(0, 0.1))
        cards = [hex_digest(r) for _ in range(max(1, size // 6))]
        sdk = f"anthropic-sdk-python/{world.sdk_version} (CPython 3.12; Linux x86_64)"
        plan = Harvest(r, text.COT_ELICIT, (2, 4))
        chat_templates = tuple(r.sample(text.CHAT, 12))
        for i in range(size):
            a = _sub(r)
            places = [p for _ in range(between(a, 4, 8)) for p in world.home(a)[0]]
            acct = world.account(
                a,
                "reseller",
                begin - a.uniform(3, 30) * DAY,
                campaign=f"reseller-{c + 1}",
                payment=cards[i % len(cards)],
                places=places,
                user_agent=sdk if a.random() < 0.7 else "new-api/v0.4.9",
            )
            sources.append(_resell(a, acct, window, begin, plan, chat_templates))
    return sources


def _resell(
    r: Random,
    acct: Account,
    window: Window,
    begin: float,
    plan: Harvest,
    chat_templates: tuple[str, ...],
) -> Source:
    share = r.uniform(0.3, 0.5)  # harvesting share; the rest passes customers' chat through
    for t in _steady(r, begin + r.uniform(0, 900), window.end, r.uniform(4, 10)):
        if r.random() < share:
            yield plan.event(acct, r, t, plan.prompt(r), status(r, 0.01))
        else:
            yield call(
                acct,
                r,
                t,
                model=r.choice(MODELS),
                prompt=text.fill(r, r.choice(chat_templates)),
                output_tokens=int(lognormal(r, 300, 0.9)),
                max_tokens=r.choice((1024, 4096, 8192)),
                temperature=r.choice((None, 0.7)),
                thinking=False,
                turns=r.choice((1, 1, 3, 5)),
                code=status(r, 0.01),
            )


def swarm(world: World, window: Window, n: int, rng: Random) -> list[Source]:
    """A short spike (45-90 min) over thousands of throwaway accounts, a handful of requests
    each, through third-party routers: reasoning traces coerced in several languages, rubric
    grading."""
    r = _sub(rng)
    begin = window.at(r.uniform(0.45, 0.7))
    duration = r.uniform(0.75, 1.5) * HOUR
    coerce = r.sample(text.TRACE_COERCE, between(r, 6, 9))
    grade = r.sample(text.RUBRIC_GRADER, 3)
    cards = [hex_digest(r) for _ in range(max(2, n // 15))]
    bursts = [begin - r.uniform(0.5, 12) * HOUR for _ in range(max(1, n // 250))]
    sources = []
    for _ in range(n):
        a = _sub(r)
        ua, egress = world.router(a, a.choice((0, 0, 1, 2)))
        acct = world.account(
            a,
            "swarm",
            a.choice(bursts) + a.uniform(0, 1200),
            campaign="swarm-1",
            places=egress,
            user_agent=ua,
            payment=a.choice(cards) if a.random() < 0.8 else None,
        )
        sources.append(_throwaway(a, acct, window, begin, duration, coerce, grade))
    return sources


def _throwaway(
    r: Random,
    acct: Account,
    window: Window,
    begin: float,
    duration: float,
    coerce: list[str],
    grade: list[str],
) -> Source:
    t = begin + r.uniform(0, 0.6 * duration)
    max_tokens = r.choice((4096, 8192, 16000))
    for _ in range(between(r, 2, 7)):
        if t >= window.end:
            return
        question = text.CAPABILITIES[r.choice(("math", "coding", "logic", "science"))](r)
        template = r.choice(coerce) if r.random() < 0.6 else r.choice(grade)
        model = NEW_MODEL if t >= window.release_ts else r.choice(MODELS[::2])
        yield call(
            acct,
            r,
            t,
            model=model,
            prompt=text.fill(r, template, question),
            output_tokens=int(max_tokens * r.uniform(0.5, 1.0)),
            max_tokens=max_tokens,
            temperature=r.choice((None, 0.0, 1.0)),
            thinking=r.random() < 0.6,
            code=status(r, 0.02),
        )
        t += r.uniform(10, 300)
